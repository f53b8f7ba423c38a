"""A replay without --loop that has served its last record says so: one log line and /readyz.

Before, /readyz kept answering 200 (every empty step counted as a fresh publish) and nothing
told the operator the data had run out. The real `tickwire serve --replay` command.
"""

from __future__ import annotations

import concurrent.futures
import urllib.error
import urllib.request
from pathlib import Path

from _support import serve_process

QUOTES = (
    "timestamp,symbol,bid_price,bid_amount,ask_price,ask_amount\n"
    "1700000000000000000,A,1.00,1,1.01,1\n"
    "1700000000500000000,A,1.01,2,1.02,1\n"
)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_replay_end_is_one_log_line_and_readyz_503(tmp_path: Path) -> None:
    path = tmp_path / "quotes.csv"
    path.write_text(QUOTES)
    with (
        concurrent.futures.ThreadPoolExecutor(1) as pool,  # outer: joined after the process ends
        serve_process("--replay", str(path), "--speed", "100") as (proc, url),
    ):
        assert proc.stderr is not None
        # The log line is the event to wait for (the read ends when the process does).
        line = pool.submit(proc.stderr.readline).result(timeout=30)
        said = "INFO replay finished: all 2 ticks served, the data ends at 2023-11-14T22:13:20.5"
        assert said in line, line
        assert line.rstrip().endswith("(--loop starts over at the end)")
        base = url.replace("ws", "http", 1).removesuffix("/v1")
        assert _get(base + "/readyz") == (
            503,
            "not ready: replay finished, no more data (--loop starts over)\n",
        )
        assert _get(base + "/livez") == (200, "ok: alive\n")  # still serving, only not ready


def test_replay_paced_by_readers_is_ready_before_its_first_reader(tmp_path: Path) -> None:
    # Before: 503 "the market has not produced yet" until a client came, and a balancer that
    # waits for 200 never sent one. It starts with the first subscriber, so it is ready.
    path = tmp_path / "quotes.csv"
    path.write_text(QUOTES)
    with serve_process("--replay", str(path), "--speed", "0") as (_, url):
        base = url.replace("ws", "http", 1).removesuffix("/v1")
        assert _get(base + "/readyz") == (200, "ok: ready\n")
