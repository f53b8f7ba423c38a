"""`tickwire serve --bus URL --workers 2` keeps its workers for longer than a minute.

The supervised setup once drained and restarted every worker ~15 s after its start, forever
(the workers' parent-death signal was tied to a trio worker thread that trio retires when idle).
This runs the real thing: a redis-server, the `tickwire serve` supervisor, its producer and
gateways, and a `websockets` client on the shared port for 61 s. In the default run on purpose:
it is the test that catches that bug. And the other half of the contract: a supervisor killed
with SIGKILL leaves no worker behind. Skips locally without redis-server or coredis, fails
under CI=true (tests/_redis.py).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from _redis import RedisServer, require_redis, supervised

require_redis()

from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect as ws_connect  # noqa: E402

RUN_S = 61.0  # over a minute: the 10 s thread idle timeout + the 10 s drain, three times over
# Three liquid symbols: never 2 s of the market's event time without a tick. Event time, not the
# wall clock: a loaded machine delays delivery, and the stream still has no hole.
MAX_QUIET_NS = 2_000_000_000
WAIT_S = 30.0  # for any one message: a generous deadline (ticks come every few ms)


# Over the 120 s default: a minute of serving, plus four processes starting and stopping on a
# loaded machine.
@pytest.mark.timeout(300)
def test_supervised_workers_serve_one_client_for_over_a_minute_without_a_restart(
    redis_tcp: RedisServer, tmp_path: Path
) -> None:
    err_path = tmp_path / "sup.log"
    args = ("--bus", redis_tcp.url, "--workers", "2", "--port", "0")
    with supervised(err_path, *args) as (sup, line):
        assert "with a producer and 2 gateways" in line, (line, err_path.read_text())
        url = line.split(" on ", 1)[1].split()[0]
        last_seq: dict[str, int] = {}
        other: list[dict[str, object]] = []
        batches, quiet_ns, last_ts = 0, 0, 0
        with ws_connect(url, subprotocols=["tickwire.v1"], open_timeout=20) as ws:
            welcome = json.loads(ws.recv(timeout=WAIT_S))
            ws.send(json.dumps({"op": "stats", "id": 1}))
            gateway = json.loads(ws.recv(timeout=WAIT_S))["server"]["gateway"]
            ws.send(json.dumps({"op": "subscribe", "symbols": ["AAPL", "MSFT", "SPY"]}))
            start = time.monotonic()
            while (now := time.monotonic()) - start < RUN_S:
                try:
                    msg = json.loads(ws.recv(timeout=WAIT_S))
                except ConnectionClosed as exc:
                    pytest.fail(f"closed after {now - start:.1f} s: {exc}\n{err_path.read_text()}")
                if msg["type"] in ("ticks", "snapshot"):
                    batches += msg["type"] == "ticks"
                    newest = max(t["ts"] for t in msg["ticks"])
                    if last_ts and msg["type"] == "ticks":
                        quiet_ns = max(quiet_ns, newest - last_ts)
                    last_ts = max(last_ts, newest)
                    for t in msg["ticks"]:
                        prev = last_seq.get(t["symbol"])
                        assert prev is None or t["seq"] == prev + 1, (t, prev)  # nothing lost
                        last_seq[t["symbol"]] = t["seq"]
                elif msg["type"] not in ("ack", "heartbeat"):
                    other.append(msg)  # a gap (a new producer epoch), an error, a drain notice
            ws.send(json.dumps({"op": "stats", "id": 2}))
            stats = json.loads(ws.recv(timeout=WAIT_S))
            while stats.get("type") != "stats":  # ticks still flowing before the reply
                stats = json.loads(ws.recv(timeout=WAIT_S))
        logs = err_path.read_text()
        assert other == [], other
        assert stats["server"]["gateway"] == gateway  # the same worker process all along
        assert sorted(last_seq) == ["AAPL", "MSFT", "SPY"] and batches > 100, (last_seq, batches)
        assert quiet_ns < MAX_QUIET_NS, f"{quiet_ns / 1e9:.2f} s of event time without a tick"
        for word in ("restarting", "exited", "draining", "shutting down", "bus gap"):
            assert word not in logs, logs
        assert sup.poll() is None
        sup.send_signal(signal.SIGINT)
        assert sup.wait(timeout=60) == 0
        assert welcome["epoch"]  # the producer's, unchanged: no gap message came


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for its new parent to reap it counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_workers_stop_when_the_supervisor_is_killed(redis: RedisServer, tmp_path: Path) -> None:
    """SIGKILL leaves the supervisor no chance to stop its workers: each worker's lifeline (a
    pipe only the supervisor process held) closes, and the worker stops itself."""
    args = ("--bus", redis.url, "--workers", "1", "--port", "0", "--drain-s", "0")
    with supervised(tmp_path / "sup.log", *args, "--drain-min-s", "0") as (sup, line):
        assert "(pids: " in line, line
        pids = [int(w.split()[-1]) for w in line.split("(pids: ")[1].split(")")[0].split(", ")]
        assert len(pids) == 2 and not any(_gone(p) for p in pids)
        sup.kill()
        sup.wait()
        deadline = time.monotonic() + 30
        while not all(_gone(p) for p in pids):  # they are not our children: nothing to wait on
            assert time.monotonic() < deadline, [p for p in pids if not _gone(p)]
            time.sleep(0.05)
