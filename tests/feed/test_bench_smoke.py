"""`tickwire bench --quick --json` runs every row and prints numbers (speed is never asserted);
the same run writes its markdown table into a README between markers (`--update-readme`)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
from _support import tickwire_cmd

from tickwire.feed.bench._markdown import BEGIN, END

pytest.importorskip("picows")
pytest.importorskip("websockets")

# Every row family of issue 6, by the start of its rows' names.
FAMILIES = (
    "generator, 500 symbols",
    "generator, 5000 symbols",
    "market step with books (20 levels), default universe",
    "book level updates generated, 500 symbols",
    "encode 50 ticks, JSON",
    "encode 50 ticks, binary",
    "decode 50 ticks, JSON",
    "decode 50 ticks, binary",
    "fan-out N=2 '*', JSON",
    "fan-out N=2 10 sym each, JSON",
    "fan-out N=2 '*', binary",
    "fan-out N=2 '*', JSON, every update: server CPU/tick",  # beside mode latest
    "fan-out N=2 '*', binary, every update: latency p99",
    "venue Binance N=2 10 sym each: server CPU/msg",
    "venue REST GET Binance ticker/price, 1 client: requests/s",
    "bus latency N=2 '*', default universe: p50",
    "bus producer, 500 symbols: CPU per published tick",
    "idle bus CPU (Redis + producer + 2 gateways), no client",
    "bus takeover, active producer SIGKILLed: standby writing",
    "RSS per idle subscribed connection",
    "RSS per idle subscribed connection, 10k symbols",
    "RSS growth, one stalled '*' subscriber",
    "handshake p50, no other client",
    "handshake p99, no other client",
    "handshake p50, 20 clients on '*'",
    "handshake p99, 20 clients on '*'",
    "idle server CPU",
    "tail AAPL --count 1, process start to exit",
    "dashboard",
    "dashboard default watchlist, real server: data age p99",
    "every update, N=20 '*' in the hub, JSON",
    "fault injection, N=20 '*' on /v1 JSON",
    "history memory per minute, default",
    "history memory per minute, 5000 symbols",
    "resume 2 s missed",
    "replay at speed 0 from Parquet",
    "replay: load a Tardis incremental_book_L2 CSV",
    "raw send() calls/s",
    "raw loopback bytes/s",
    "tickwire best msgs/s vs raw send()",
    "tickwire best bytes/s vs raw loopback",
)


@pytest.mark.timeout(150)
def test_bench_quick_prints_every_row(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# before\n{BEGIN}\nlast run's figures\n{END}\nafter\n")
    out = subprocess.run(
        tickwire_cmd("bench", "--quick", "--json", "--update-readme", str(readme)),
        capture_output=True,
        text=True,
        timeout=140,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    rows = report["rows"]
    text = readme.read_text()
    assert text.startswith(f"# before\n{BEGIN}\nMeasured by `tickwire bench --quick` on ")
    assert text.endswith(f"{END}\nafter\n") and "last run's figures" not in text
    table = [line for line in text.splitlines() if line.startswith("| ")][1:]  # no header
    assert [line.split(" | ")[0].removeprefix("| ") for line in table] == [
        r["name"].replace("|", "\\|") for r in rows
    ]
    names = [r["name"] for r in rows]
    for family in FAMILIES:
        assert any(name.startswith(family) for name in names), (family, names)
    for r in rows:
        if r["status"] == "n/a":  # only for code not built yet, e.g. no dashboard installed
            assert any(w in r["note"] for w in ("not built", "not installed", "not in --quick")), r
            continue
        assert r["status"] == "ok", r
        assert math.isfinite(r["value"]), r
        if r["baseline"]:
            assert math.isfinite(r["baseline_value"]), r
            # a ratio exists unless the baseline is at or below zero or within its noise
            noise = max(0.0, r["baseline_noise"])
            assert math.isfinite(r["ratio"]) or r["baseline_value"] <= noise, r
    for needed in (": ticks/s", ": server CPU/msg", ": latency p99"):
        assert any(n.startswith("fan-out") and needed in n for n in names), needed
    assert report["notes"], "the notes say what the load clients cost"
