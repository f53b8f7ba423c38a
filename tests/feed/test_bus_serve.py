"""`tickwire serve --bus`: a real redis-server, real producer and gateway processes, real clients.

Skips locally without redis-server or coredis, fails under CI=true (see tests/_redis.py).
No autojump_clock: Redis and the processes run on real time; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import trio
from _redis import Bus, RedisServer, require_redis
from _support import tickwire_cmd

require_redis()

from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect as ws_connect  # noqa: E402

from tickwire.feed import Batch, Gap, connect  # noqa: E402

TIMEOUT_S = 60  # generous: three Python processes start on a shared 2-core machine


@pytest.fixture
def redis(redis_tcp: RedisServer) -> RedisServer:
    return redis_tcp  # gateways reach it over TCP, as from other machines


def _ticks(url: str, symbols: list[str], n_messages: int) -> tuple[dict[str, Any], dict]:
    """A `websockets` client: the welcome and {(symbol, seq): tick} from `n_messages` messages."""
    got: dict[tuple[str, int], tuple[Any, ...]] = {}
    with ws_connect(url, subprotocols=["tickwire.v1"], open_timeout=20) as ws:
        welcome = json.loads(ws.recv(timeout=20))
        ws.send(json.dumps({"op": "subscribe", "symbols": symbols, "snapshot": False}))
        seen = 0
        while seen < n_messages:
            msg = json.loads(ws.recv(timeout=20))
            if msg["type"] == "ticks":
                seen += 1
                for t in msg["ticks"]:
                    got[(t["symbol"], t["seq"])] = (t["ts"], t["bid"], t["ask"], t["last"])
    return welcome, got


def _contiguous(got: dict[tuple[str, int], Any]) -> bool:
    """Per symbol, every seq between the first and the last one received (no update lost)."""
    by_sym: dict[str, list[int]] = {}
    for sym, seq in got:
        by_sym.setdefault(sym, []).append(seq)
    return all(max(s) - min(s) + 1 == len(s) for s in by_sym.values())


def test_two_gateways_serve_the_producers_stream(bus: Bus) -> None:
    producer = bus.producer()
    gw_a = bus.gateway("a")
    gw_b = bus.gateway("b")
    line = producer.ready_sync()
    assert "tickwire producer publishing 53 symbols" in line and "no WebSocket listener" in line
    gw_a.ready_sync()
    gw_b.ready_sync()
    assert "tickwire gateway " in gw_a.line and gw_a.url != gw_b.url
    symbols = ["AAPL", "MSFT", "SPY", "NVDA"]
    with ThreadPoolExecutor(2) as pool:  # both clients at once: the same stretch of market
        fa, fb = (pool.submit(_ticks, gw.url, symbols, 150) for gw in (gw_a, gw_b))
        (welcome_a, a), (welcome_b, b) = fa.result(timeout=TIMEOUT_S), fb.result(TIMEOUT_S)
    assert welcome_a["epoch"] == welcome_b["epoch"]  # the producer's: resumes work anywhere
    common = a.keys() & b.keys()
    assert len(common) > 50, (len(a), len(b), len(common))
    assert all(a[k] == b[k] for k in common)  # same seq, same ts, same prices: one market
    assert _contiguous(a) and _contiguous(b)
    assert producer.stop() == 0 and gw_a.stop() == 0 and gw_b.stop() == 0
    assert "Traceback" not in gw_a.logs() + producer.logs()


async def test_redis_killed_and_restarted_clients_stay_and_account_for_every_update(
    redis: RedisServer, bus: Bus
) -> None:
    producer = bus.producer()
    gateway = bus.gateway()
    events: list[object] = []
    with trio.fail_after(TIMEOUT_S):
        await producer.ready()
        await gateway.ready()
        async with connect(gateway.url, encoding="binary") as feed:
            await feed.subscribe(["AAPL", "MSFT", "SPY"])
            stats_down: dict[str, Any] = {}
            async for event in feed:
                events.append(event)
                batches = sum(isinstance(e, Batch) for e in events)
                if batches == 30 and not stats_down:
                    redis.kill()  # SIGKILL: every stream, every key is gone with it
                    with trio.move_on_after(10):
                        while not stats_down:  # the gateway notices within its read timeout
                            stats = await feed.stats()
                            if stats["server"]["bus"] == "down":
                                stats_down = stats
                            else:
                                await trio.sleep(0.05)
                    assert stats_down, "the gateway never said bus: down"
                    redis.start()  # empty, on the same port
                gaps = [e for e in events if isinstance(e, Gap)]
                after = events[events.index(gaps[0]) :] if gaps else []
                if sum(isinstance(e, Batch) for e in after) > 30:
                    break
            stats = await feed.stats()
            reconnects, lost = feed.reconnects, feed.lost
    assert stats_down, "the gateway never said bus: down"
    assert reconnects == 0  # clients stayed connected through the outage
    gaps = [e for e in events if isinstance(e, Gap)]
    assert len(gaps) == 1 and gaps[0].reason == "source", gaps
    gap = events.index(gaps[0])
    assert isinstance(events[gap + 1], Batch) and events[gap + 1].kind == "snapshot"
    # Every update accounted for: +1 per symbol before the gap and after the snapshot; the
    # jump at the snapshot is exactly what the Gap says was lost.
    last: dict[int, int] = {}
    jumps = 0
    for i, e in enumerate(events):
        if not isinstance(e, Batch):
            continue
        assert e.conflated == 0 or i == gap + 1
        for sym, seq in zip(e.ticks["sym"].tolist(), e.ticks["seq"].tolist(), strict=True):
            if sym in last and i != gap + 1:
                assert seq == last[sym] + 1, (i, sym, seq, last[sym])
            elif sym in last:
                jumps += seq - last[sym] - 1
            last[sym] = seq
    assert gaps[0].lost == jumps == lost and jumps > 0
    assert stats["server"]["bus"] == "up" and stats["server"]["bus_gaps"] >= 1
    assert gateway.logs().count("bus down") == 1  # once, not per retry
    assert producer.stop() == 0 and gateway.stop() == 0


@pytest.mark.slow  # three processes and 500 messages on '*': ~15 s on a shared machine
async def test_a_stalled_client_on_one_gateway_does_not_delay_another(bus: Bus) -> None:
    producer = bus.producer()
    gw_a = bus.gateway("a")
    gw_b = bus.gateway("b")
    with trio.fail_after(TIMEOUT_S):
        await producer.ready()
        await gw_a.ready()
        await gw_b.ready()
        stalled = await _stalled_wildcard_client(gw_a.url)
        try:
            async with connect(gw_b.url, encoding="binary") as feed:
                await feed.subscribe("*")
                ages_ms: list[float] = []
                async for event in feed:
                    if isinstance(event, Batch) and event.kind == "ticks":
                        ages_ms.append((_wall_ns() - int(event.ticks["ts"].max())) / 1e6)
                        if len(ages_ms) >= 500:
                            break
                stats_b = await feed.stats()
            stats_a = json.loads(await trio.to_thread.run_sync(_stats_over_ws, gw_a.url))
        finally:
            await stalled.aclose()
    ages_ms.sort()
    p50 = ages_ms[len(ages_ms) // 2]
    # A's fan-out to its stalled reader is A's business: B's clients get live data.
    assert p50 < 250, ages_ms[:: len(ages_ms) // 10]
    assert stats_b["ticks_conflated"] == 0
    assert stats_a["server"]["clients"] >= 1  # the stalled one is still there (within stall_ms)


async def _stalled_wildcard_client(url: str) -> trio.SocketStream:
    """A raw socket with a tiny buffer that subscribes to '*' and then never reads."""
    from _rawws import open_socket, text_frame, upgrade_request

    port = int(url.rsplit(":", 1)[1].split("/")[0])
    stream = await open_socket(port, rcvbuf=4096)
    await stream.send_all(upgrade_request(port=port))
    await stream.send_all(text_frame({"op": "subscribe", "symbols": ["*"], "snapshot": True}))
    return stream


def _stats_over_ws(url: str) -> str:
    with ws_connect(url, subprotocols=["tickwire.v1"], open_timeout=20) as ws:
        ws.recv(timeout=20)
        ws.send(json.dumps({"op": "stats", "id": 1}))
        while True:
            msg = ws.recv(timeout=20)
            if isinstance(msg, str) and '"stats"' in msg:
                return msg


def _wall_ns() -> int:
    return time.time_ns()


def test_workers_spread_clients_and_stop_with_1001(redis: RedisServer, procs: Any) -> None:
    sup = procs("sup", "--bus", redis.url, "--workers", "2", "--port", "0")
    line = sup.ready_sync()
    assert "with a producer and 2 gateways" in line, line
    gateways: dict[str, int] = {}
    sockets = []
    stack = contextlib.ExitStack()
    for _ in range(40):
        ws = stack.enter_context(ws_connect(sup.url, subprotocols=["tickwire.v1"], open_timeout=20))
        sockets.append(ws)
        json.loads(ws.recv(timeout=20))
        ws.send(json.dumps({"op": "stats", "id": 1}))
        stats = json.loads(ws.recv(timeout=20))
        gw = stats["server"]["gateway"]
        gateways[gw] = gateways.get(gw, 0) + 1
    assert len(gateways) == 2 and min(gateways.values()) >= 5, gateways  # SO_REUSEPORT spreads
    assert sup.stop(signal.SIGINT) == 0  # Ctrl+C: every worker closes its clients, exit 0
    for ws in sockets:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=20)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    stack.close()
    assert "Traceback" not in sup.logs()


async def test_a_killed_worker_is_restarted_and_its_clients_resume_on_the_other(
    redis: RedisServer, procs: Any
) -> None:
    sup = procs("sup", "--bus", redis.url, "--workers", "2", "--port", "0")
    events: list[object] = []
    with trio.fail_after(TIMEOUT_S):
        await sup.ready()
        async with connect(sup.url, encoding="binary", backoff_initial_s=0.05) as feed:
            await feed.subscribe(["AAPL", "MSFT", "SPY"])
            first = (await feed.stats())["server"]["gateway"]
            killed = False
            async for event in feed:
                events.append(event)
                n = sum(isinstance(e, Batch) for e in events)
                if n == 20 and not killed:
                    os.kill(int(first.rsplit(":", 1)[1]), signal.SIGKILL)
                    killed = True
                gaps = [e for e in events if isinstance(e, Gap)]
                if gaps and sum(isinstance(e, Batch) for e in events[events.index(gaps[0]) :]) > 20:
                    break
            second = (await feed.stats())["server"]["gateway"]
        while "restarting" not in sup.logs():  # the supervisor's line, after its backoff
            await trio.sleep(0.05)
    gaps = [e for e in events if isinstance(e, Gap)]
    assert second != first
    assert len(gaps) == 1 and gaps[0].reason == "reconnected", gaps
    assert gaps[0].recovered is not None and gaps[0].lost == 0  # resumed: exact, nothing lost
    last: dict[int, int] = {}
    for e in events:
        if isinstance(e, Batch):
            for sym, seq in zip(e.ticks["sym"].tolist(), e.ticks["seq"].tolist(), strict=True):
                if sym in last:
                    assert seq == last[sym] + 1, (sym, seq, last[sym])
                last[sym] = seq
    assert "worker gateway-" in sup.logs()
    assert sup.stop(signal.SIGTERM) == 0  # SIGTERM: the workers drain, the parent exits 0


def test_workers_without_a_bus_is_one_line(tmp_path: Path) -> None:
    out = subprocess.run(
        tickwire_cmd("serve", "--workers", "2"), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "redis-server --port 6379" in out.stderr and "drop --workers" in out.stderr


@pytest.mark.slow  # three producers one after the other: ~20 s
async def test_a_new_producer_is_a_new_epoch_and_another_universe_stops_the_gateway(
    bus: Bus,
) -> None:
    first = bus.producer("first")
    gateway = bus.gateway()
    events: list[object] = []
    with trio.fail_after(TIMEOUT_S):
        await first.ready()
        await gateway.ready()
        async with connect(gateway.url) as feed:
            await feed.subscribe(["AAPL", "MSFT"])
            epoch = feed.welcome["epoch"]
            async for event in feed:
                events.append(event)
                if len(events) == 10:
                    assert first.stop() == 0
                    second = bus.producer("second")
                    await second.ready()
                if any(isinstance(e, Gap) for e in events) and len(events) > 40:
                    break
            stats = await feed.stats()
        gaps = [e for e in events if isinstance(e, Gap)]
        assert [g.reason for g in gaps] == ["restarted"] and gaps[0].lost is None, gaps
        assert stats["server"]["epoch"] != epoch  # the new producer's: resumes restart there
        assert feed.reconnects == 0
        with ws_connect(gateway.url, subprotocols=["tickwire.v1"], open_timeout=20) as ws:
            ws.recv(timeout=20)
            assert second.stop() == 0
            third = bus.producer("third", "--symbols", "20")
            await third.ready()
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await trio.to_thread.run_sync(ws.recv, 20)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        code = await trio.to_thread.run_sync(gateway.p.wait, 20)
    assert code == 2
    errors = [line for line in gateway.logs().splitlines() if "error" in line]
    assert len(errors) == 1 and "another universe (20 symbols, was 53)" in errors[0], errors
    assert "Traceback" not in gateway.logs()


@pytest.mark.slow  # five restarts with backoff: ~25 s
def test_a_crash_looping_worker_is_given_up_on_in_one_line(
    redis: RedisServer, procs: Any, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as taken:  # a listener without SO_REUSEPORT: the gateways cannot bind
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        sup = procs("sup", "--bus", redis.url, "--workers", "1", "--port", port)
        assert sup.p.wait(timeout=120) == 2
    logs = sup.logs()
    assert logs.count("restarting in") == 4, logs
    last = logs.strip().splitlines()[-1]
    assert last.startswith("tickwire: error: worker gateway-1 exited 5 times in a row"), last
    assert logs.count("giving up") == 1 and "Traceback" not in logs
