"""Injected faults on a real server over loopback: the client library detects every data fault
the server says it injected; a bad spec is HTTP 400; the operator's `--faults`; disconnect,
maintenance and stall; the counts in `stats` and `/metrics`.

Virtual time (trio's MockClock with a small autojump threshold, as the scenario tests do): the
reorder hold, a stall and the closes cost no wall-clock seconds."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from _rawws import handshake
from trio.testing import MockClock
from trio_websocket import ConnectionClosed, open_websocket_url

from tickwire.feed import Batch, Gap, connect
from tickwire.feed.faults import parse_spec
from tickwire.feed.protocol import SUBPROTOCOL_JSON
from tickwire.feed.server.server import Server, ServerConfig

START_NS = 1_767_625_200_000_000_000  # 2026-01-05 15:00 UTC
FAULTS = "drop:0.1,dup:0.1,reorder:0.1"


async def _start(nursery: trio.Nursery, **config: Any) -> Server:
    config.setdefault("heartbeat_ms", 0)
    server = Server(ServerConfig(port=0, cadence_ms=20, **config), start_ns=START_NS)
    await nursery.start(server.run)
    return server


async def _drain(feed: Any, missed: list[int]) -> None:
    """Read the events already queued (after the data stopped), noting the seq gaps."""
    for _ in range(feed.queued):
        ev = await feed.__anext__()
        if isinstance(ev, Gap):
            missed.append(ev.missed_messages)


@pytest.mark.parametrize("encoding", ["json", "binary"])
async def test_client_detects_every_injected_data_fault(
    mock_clock: MockClock, encoding: str
) -> None:
    mock_clock.autojump_threshold = 0.005
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await _start(nursery)
            url = f"{server.url}?faults={FAULTS}&seed=3"
            missed: list[int] = []
            batches = 0
            async with connect(url, encoding=encoding, reconnect=False) as feed:  # type: ignore[arg-type]
                await feed.subscribe("*", snapshot=False)
                async for ev in feed:
                    if isinstance(ev, Gap):
                        assert ev.reason == "seq"
                        missed.append(ev.missed_messages)
                    elif isinstance(ev, Batch):
                        batches += 1
                        if batches == 500:
                            break
                await feed.unsubscribe("*")
                await trio.sleep(2)  # a message held back for a reorder goes out within 1 s
                stats = await feed.stats()
                await _drain(feed, missed)
                injected = stats["faults"]
                assert injected["spec"] == FAULTS
                for kind in ("drop", "dup", "reorder"):
                    assert injected.get(kind, 0) > 20, injected  # ~50 each: all were tried
                late, dups = feed.out_of_order["late"], feed.out_of_order["duplicate"]
                assert dups == injected["dup"]
                assert late == injected["reorder"]
                assert sum(missed) - late == injected["drop"]
                server_stats = stats["server"]["faults_injected"]
                assert {k: server_stats[k] for k in ("drop", "dup", "reorder")} == {
                    k: injected[k] for k in ("drop", "dup", "reorder")
                }
            nursery.cancel_scope.cancel()


async def test_bad_spec_is_400_with_the_reason(nursery: trio.Nursery) -> None:
    server = await _start(nursery)
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    with trio.fail_after(10):
        for path in ("/v1?faults=drop:2", "/binance/ws/btcusdt@trade?faults=lose:1"):
            reader, status, body = await handshake(port, path)
            await reader.stream.aclose()
            assert status == 400, body
            assert body.startswith(b"faults: ") and body.count(b"\n") == 1
        reader, status, body = await handshake(port, "/v1?faults=drop:0&seed=2")
        assert status == 101  # nothing asked for: the plain connection
        await reader.stream.aclose()


async def _first_messages(url: str, n: int) -> list[dict[str, Any]]:
    import orjson

    out = []
    async with open_websocket_url(url, subprotocols=[SUBPROTOCOL_JSON]) as ws:
        await ws.send_message(orjson.dumps({"op": "subscribe", "symbols": ["*"]}).decode())
        while len(out) < n:
            out.append(orjson.loads(await ws.get_message()))
    return out


async def test_operator_faults_per_path_and_query_wins(mock_clock: MockClock) -> None:
    mock_clock.autojump_threshold = 0.005
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await _start(nursery, faults=(("/v1", parse_spec("drop:1")),))
            # Everything dropped: the first data message never comes, but replies do.
            with trio.move_on_after(3) as scope:
                msgs = await _first_messages(server.url, 4)
            assert scope.cancelled_caught
            assert server.faults.counts["drop"] > 10
            msgs = await _first_messages(f"{server.url}?faults=dup:1&seed=1", 7)
            seqs = [m["seq"] for m in msgs if m["type"] == "ticks"]  # the snapshot is a reply
            assert seqs[:4] == [seqs[0], seqs[0], seqs[0] + 1, seqs[0] + 1]
            nursery.cancel_scope.cancel()


async def test_disconnect_resets_and_maintenance_closes_1012(mock_clock: MockClock) -> None:
    mock_clock.autojump_threshold = 0.005
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await _start(nursery, heartbeat_ms=500)
            t0 = trio.current_time()
            with pytest.raises(ConnectionClosed) as info:
                await _first_messages(f"{server.url}?faults=maintenance:5s", 10**9)
            assert info.value.reason.code == 1012
            assert 5 <= trio.current_time() - t0 < 6
            t0 = trio.current_time()
            with pytest.raises(ConnectionClosed) as info:
                await _first_messages(f"{server.url}?faults=disconnect:3s", 10**9)
            assert info.value.reason.code == 1006  # no close frame: TCP reset
            assert 3 <= trio.current_time() - t0 < 4
            assert server.faults.counts == {"maintenance": 1, "disconnect": 1}
            nursery.cancel_scope.cancel()


async def test_stall_silences_data_and_heartbeats(mock_clock: MockClock) -> None:
    mock_clock.autojump_threshold = 0.005
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await _start(nursery, heartbeat_ms=200)
            import orjson

            url = f"{server.url}?faults=stall:2s@3s"
            async with open_websocket_url(url, subprotocols=[SUBPROTOCOL_JSON]) as ws:
                t0 = trio.current_time()
                await ws.send_message(orjson.dumps({"op": "subscribe", "symbols": ["AAPL"]}))
                arrivals: list[tuple[float, int]] = []
                while trio.current_time() - t0 < 7.5:
                    msg = orjson.loads(await ws.get_message())
                    if "seq" in msg:
                        arrivals.append((trio.current_time() - t0, msg["seq"]))
            during = [t for t, _ in arrivals if 3.05 < t < 4.95]
            assert not during, during  # nothing at all in the stall, heartbeats neither
            assert any(3 > t > 2.5 for t, _ in arrivals) and any(t > 5 for t, _ in arrivals)
            seqs = [s for _, s in arrivals]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            assert server.faults.counts.get("stall") == 2  # at 3 s and at 6 s
            nursery.cancel_scope.cancel()


async def test_metrics_count_injected_faults(
    mock_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    mock_clock.autojump_threshold = 0.005
    caplog.set_level(logging.DEBUG, "tickwire.faults")
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await _start(nursery)
            await _first_messages(f"{server.url}?faults=dup:1&seed=1", 10)
            _, _, body = server.metrics.response(None)
            text = body.decode()
            dups = server.faults.counts["dup"]
            assert f'tickwire_faults_injected_total{{kind="dup"}} {float(dups)}' in text
            assert any(r.getMessage() == "fault injected: dup" for r in caplog.records)
            nursery.cancel_scope.cancel()


async def test_delay_holds_every_data_message_in_order(mock_clock: MockClock) -> None:
    mock_clock.autojump_threshold = 0.005
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            t0 = trio.current_time()
            server = await _start(nursery)  # event time START_NS at trio time t0
            url = f"{server.url}?faults=delay:300ms~100ms&seed=5"
            ages, seqs = [], []
            async with connect(url, encoding="binary", reconnect=False) as feed:
                await feed.subscribe("*", snapshot=False)
                async for ev in feed:
                    assert not isinstance(ev, Gap)
                    if isinstance(ev, Batch):
                        now_ns = START_NS + (trio.current_time() - t0) * 1e9
                        ages.append((now_ns - int(ev.ticks["ts"][-1])) / 1e9)
                        seqs.append(ev.seq)
                        if len(ages) == 200:
                            break
                stats = await feed.stats()
            assert seqs == sorted(seqs)
            assert min(ages) >= 0.2 and max(ages) <= 0.4 + 0.05  # the delay, +-jitter, + a step
            # In order: a message waits for the one before it too, which lifts the mean a bit.
            assert 0.29 < sum(ages) / len(ages) < 0.38
            assert stats["faults"]["delay"] >= 200
            nursery.cancel_scope.cancel()
