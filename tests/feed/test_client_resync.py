"""The client library resynchronises a live connection after a connection-seq jump.

A dropped message leaves a jump in the connection `seq`: the client resumes from the last data
it applied (same connection), sets aside what comes before the server's answer, and reports a
`Gap` whose `recovered` counts the replayed updates (or None: a snapshot follows instead).
End to end with injected `drop`/`dup`/`reorder` faults against a fault-free client on the same
server; sans-IO for the parts a real server makes hard to time (the ack, a snapshot instead).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
import trio
from trio.testing import MockClock

from tickwire.feed import Batch, Gap, connect
from tickwire.feed.client.stream import StreamState
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators import TICK_DTYPE

START_NS = 1_767_625_200_000_000_000  # 2026-01-05 15:00 UTC


async def _updates(
    url: str, encoding: str, out: list[tuple[int, int]], gaps: list[Gap]
) -> dict[str, Any]:
    """Every (symbol id, seq) a `*` subscriber of every update receives, in order."""
    async with connect(url, encoding=encoding, reconnect=False) as feed:  # type: ignore[arg-type]
        await feed.subscribe("*", snapshot=False)
        async for ev in feed:
            if isinstance(ev, Gap):
                gaps.append(ev)
            elif isinstance(ev, Batch):
                out += zip(ev.ticks["sym"].tolist(), ev.ticks["seq"].tolist(), strict=True)
                if len(out) >= 20_000:
                    break
        return await feed.stats()


@pytest.mark.parametrize("encoding", ["json", "binary"])
async def test_after_dropped_messages_the_client_has_every_update_in_order(
    mock_clock: MockClock, encoding: str
) -> None:
    mock_clock.autojump_threshold = 0.005
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            server = Server(ServerConfig(port=0, cadence_ms=20, heartbeat_ms=0), start_ns=START_NS)
            await nursery.start(server.run)
            clean: list[tuple[int, int]] = []
            faulty: list[tuple[int, int]] = []
            gaps: list[Gap] = []
            stats: dict[str, Any] = {}
            done = trio.Event(), trio.Event()

            async def run(url: str, out: list[tuple[int, int]], k: int, g: list[Gap]) -> None:
                stats[url] = await _updates(url, encoding, out, g)
                done[k].set()

            url = f"{server.url}?faults=drop:0.05,dup:0.05,reorder:0.05&seed=4"
            nursery.start_soon(run, server.url, clean, 0, [])
            nursery.start_soon(run, url, faulty, 1, gaps)
            await done[0].wait()
            await done[1].wait()
            nursery.cancel_scope.cancel()
    injected = stats[url]["faults"]
    assert injected["drop"] > 10, injected
    assert gaps and all(g.reason == "seq" and g.recovered is not None for g in gaps), gaps[:3]
    assert sum(g.recovered or 0 for g in gaps) > 0
    # The same updates in the same order as the fault-free client: none lost, none repeated.
    n = min(len(clean), len(faulty))
    first = clean.index(faulty[0])  # the two subscriptions started a few records apart
    n = min(len(clean) - first, len(faulty))
    assert n > 10_000
    assert faulty[:n] == clean[first : first + n]


def _ticks(seq: int, offset: int, *pairs: tuple[int, int]) -> str:
    ticks = [{"symbol": f"S{s}", "seq": q, "ts": 1, "bid": 1.0, "ask": 1.01, "bid_size": 1,
              "ask_size": 1, "last": 1.0, "last_size": 1, "volume": 1, "side": None, "flags": 0}
             for s, q in pairs]  # fmt: skip
    return orjson.dumps({"type": "ticks", "seq": seq, "offset": offset, "ticks": ticks}).decode()


def _stream() -> StreamState:
    st = StreamState()
    st.learn([{"symbol": f"S{i}", "id": i} for i in range(3)])
    st.welcomed({"epoch": "e1"})
    return st


def _held(events: list[Any]) -> list[tuple[int, int]]:
    return [(int(r["sym"]), int(r["seq"])) for e in events if isinstance(e, Batch) for r in e.ticks]


def test_a_jump_asks_to_resume_from_the_last_data_applied_and_the_ack_is_the_gap() -> None:
    st = _stream()
    events, _ = st.receive(_ticks(1, 10, (0, 5)))
    assert _held(events) == [(0, 5)] and not st.resync.wanted
    events, _ = st.receive(_ticks(3, 14, (1, 7)))  # seq 2 never came
    assert events == [] and st.resync.wanted  # set aside: the replay carries it again
    request = st.resync.request(["*"], st.epoch, st.offset)
    assert request["resume"] == {"epoch": "e1", "offset": 10} and "id" not in request
    assert st.receive(_ticks(4, 15, (2, 1)))[0] == []  # still before the ack
    ack = {"type": "ack", "op": "subscribe", "symbols": ["*"], "recovered": True, "missed": 3}
    events, reply = st.receive(orjson.dumps(ack).decode())
    assert reply is None
    assert events == [Gap("seq", 0, (), 1, 0.0, 3)]
    events, _ = st.receive(_ticks(5, 15, (0, 6), (1, 7), (2, 1)))  # the replay, in order
    assert _held(events) == [(0, 6), (1, 7), (2, 1)]
    assert not any(isinstance(e, Gap) for e in events)
    assert st.offset == 15


def test_a_resume_past_the_history_is_a_gap_then_a_snapshot() -> None:
    st = _stream()
    st.receive(_ticks(1, 10, (0, 5)))
    st.receive(_ticks(3, 14, (1, 7)))
    st.resync.request(["S0", "S1"], st.epoch, st.offset)
    ack = {"type": "ack", "op": "subscribe", "symbols": ["S0", "S1"], "recovered": False}
    events, _ = st.receive(orjson.dumps(ack).decode())
    assert events == [Gap("seq", None, (), 1, 0.0, None)]
    snap = _ticks(4, 20, (0, 9), (1, 8)).replace('"ticks","seq"', '"snapshot","seq"')
    events, _ = st.receive(snap)
    assert _held(events) == [(0, 9), (1, 8)] and st.offset == 20


def test_an_ack_with_an_id_is_a_reply_not_the_resume() -> None:
    st = _stream()
    st.receive(_ticks(1, 10, (0, 5)))
    st.receive(_ticks(3, 14, (1, 7)))
    st.resync.request(["*"], st.epoch, st.offset)
    ack = {"type": "ack", "id": 4, "op": "subscribe", "symbols": ["*"], "recovered": True,
           "missed": 1}  # fmt: skip
    events, reply = st.receive(orjson.dumps(ack).decode())
    assert events == [] and reply == ack and st.resync.waiting


def test_no_resume_without_a_subscription_reports_the_gap_at_once() -> None:
    st = _stream()
    st.receive(orjson.dumps({"type": "heartbeat", "seq": 1, "ts": 1}).decode())
    st.receive(orjson.dumps({"type": "heartbeat", "seq": 4, "ts": 2}).decode())
    assert st.resync.wanted
    assert st.resync.cancel() == Gap("seq", 0, (), missed_messages=2)
    assert not st.resync.waiting
    assert np.dtype(TICK_DTYPE).names is not None


def test_a_resume_on_a_live_connection_snapshots_the_held_symbols_too() -> None:
    """The server's side: a resume that fails must give the held symbols' state back."""
    from tickwire.feed import protocol as p
    from tickwire.feed.v1 import state as st

    index = {"AAPL": 0, "MSFT": 1, "GOOG": 2}
    s = st.ConnectionState(index, b"[]", st.Limits(), 0.0)
    s.subscribe(p.parse_request('{"op":"subscribe","symbols":["AAPL","MSFT"]}'))
    again = p.parse_request(
        '{"op":"subscribe","symbols":["AAPL","MSFT","GOOG"],"resume":{"epoch":"e","offset":3}}'
    )
    resume = s.subscribe(again)[-1]
    assert isinstance(resume, st.Resume)
    assert resume.snapshot_ids is not None and resume.snapshot_ids.tolist() == [0, 1, 2]
    wild = st.ConnectionState(index, b"[]", st.Limits(), 0.0)
    wild.subscribe(p.parse_request('{"op":"subscribe","symbols":["*"]}'))
    resume = wild.subscribe(
        p.parse_request('{"op":"subscribe","symbols":["*"],"resume":{"epoch":"e","offset":3}}')
    )[-1]
    assert isinstance(resume, st.Resume)
    assert resume.snapshot_ids is not None and resume.snapshot_ids.tolist() == [0, 1, 2]


def test_a_refused_resume_reports_the_gap_and_reads_on() -> None:
    st = _stream()
    st.receive(_ticks(1, 10, (0, 5)))
    st.receive(_ticks(3, 14, (1, 7)))
    st.resync.request(["*"], st.epoch, st.offset)
    error = {"type": "error", "code": "rate_limited", "message": "too many requests"}
    events, reply = st.receive(orjson.dumps(error).decode())
    assert events == [Gap("seq", 0, (), missed_messages=1)] and reply is None
    events, _ = st.receive(_ticks(4, 15, (2, 1)))  # no longer set aside
    assert _held(events) == [(2, 1)]
