"""The client's stream state, sans-IO: server messages in as plain strings, events out.

No sockets and no trio: what `Feed` does with a message (count a seq jump, report a gap, hand a
reply to its request, remember the resume position) is decided here, as wsproto's tests pipe
bytes through a connection object.
"""

from __future__ import annotations

import sys

import orjson

from tickwire.feed import protocol as p
from tickwire.feed.client.events import Batch, Gap
from tickwire.feed.client.stream import StreamState

REFS = [{"symbol": "AAPL", "id": 0}, {"symbol": "MSFT", "id": 1}]


def _tick(symbol: str, seq: int) -> dict[str, object]:
    return {
        "symbol": symbol, "seq": seq, "ts": 1, "bid": 1.0, "ask": 1.01, "bid_size": 100,
        "ask_size": 100, "last": 1.0, "last_size": 0, "volume": 0, "flags": 0,
    }  # fmt: skip


def _msg(kind: str, seq: int, *ticks: dict[str, object], offset: int | None = None) -> str:
    msg: dict[str, object] = {"type": kind, "seq": seq, "ticks": list(ticks)}
    if offset is not None:
        msg["offset"] = offset
    return orjson.dumps(msg).decode()


def _stream() -> StreamState:
    s = StreamState()
    assert s.welcomed({"type": "welcome", "epoch": "run-1"}) is False
    s.learn(REFS)
    return s


def test_a_seq_jump_is_counted_as_conflated_and_a_repeat_dropped() -> None:
    s = _stream()
    events, reply = s.receive(_msg("snapshot", 1, _tick("AAPL", 5), _tick("MSFT", 2)))
    assert reply is None and [type(e) for e in events] == [Batch]
    events, _ = s.receive(_msg("ticks", 2, _tick("AAPL", 5), _tick("AAPL", 9), offset=42))
    (batch,) = events
    assert isinstance(batch, Batch)
    assert batch.conflated == 3 and batch.ticks["seq"].tolist() == [9]  # 6, 7, 8 skipped
    assert s.offset == 42


def test_a_missing_message_seq_is_a_seq_gap_before_the_data() -> None:
    s = _stream()
    s.receive(_msg("ticks", 1, _tick("AAPL", 1)))
    events, _ = s.receive('{"type":"heartbeat","seq":4,"ts":1}')
    assert events == [] and s.resync.wanted  # the feed resumes, or (nothing held) reports:
    assert s.resync.cancel() == Gap("seq", 0, (), missed_messages=2)
    events, _ = s.receive(_msg("ticks", 5, _tick("AAPL", 2)))
    assert [type(e) for e in events] == [Batch]


def test_a_reconnect_reports_its_gap_with_the_snapshot() -> None:
    s = _stream()
    s.receive(_msg("ticks", 1, _tick("AAPL", 1)))
    assert s.reconnected(restarted=False, downtime_s=1.5) is None
    assert s.resume_from(restarted=False) is True  # no offset seen yet: positions from now
    s.seq = 0  # a new connection
    events, _ = s.receive(_msg("snapshot", 1, _tick("AAPL", 4)))
    gap, batch = events
    assert gap == Gap("reconnected", 2, ("AAPL",), None, 1.5)
    assert isinstance(batch, Batch) and batch.conflated == 0  # counted as lost, in the gap


def test_a_recovered_ack_reports_the_gap_and_the_resume_names_the_run() -> None:
    s = _stream()
    s.receive(_msg("ticks", 1, _tick("AAPL", 1), offset=10))
    assert s.resume_from(restarted=False) == {"epoch": "run-1", "offset": 10}
    assert s.resume_from(restarted=True) is True  # another run's offsets mean nothing
    s.reconnected(restarted=False, downtime_s=0.25)
    events, reply = s.receive(
        '{"type":"ack","id":3,"symbols":["AAPL"],"recovered":true,"missed":7}'
    )
    assert events == [] and reply is not None and reply["id"] == 3
    assert s.recovered(reply) == Gap("reconnected", 0, (), None, 0.25, 7)
    assert s.recovered(reply) is None  # reported once


def test_a_gap_from_a_new_run_upstream_is_a_restart() -> None:
    s = _stream()
    s.receive(_msg("ticks", 1, _tick("AAPL", 8), offset=10))
    events, _ = s.receive('{"type":"gap","reason":"source","epoch":"run-2"}')
    assert events == [Gap("restarted", None, ())]
    assert s.epoch == "run-2" and s.offset is None
    events, _ = s.receive(_msg("snapshot", 2, _tick("AAPL", 1)))
    (batch,) = events
    assert isinstance(batch, Batch) and len(batch) == 1 and batch.conflated == 0  # afresh


def test_after_a_restart_the_new_runs_lower_seqs_are_delivered() -> None:
    """A restarted server's seqs start again: neither its snapshot nor the ticks after it are
    repeats of the old run's higher seqs, whichever way the restart is learnt."""
    for restart in ("reconnect", "gap"):
        s = _stream()
        s.receive(_msg("ticks", 1, _tick("AAPL", 900), _tick("MSFT", 700), offset=10))
        if restart == "reconnect":
            assert s.welcomed({"type": "welcome", "epoch": "run-2"}) is True
            assert s.reconnected(restarted=True, downtime_s=2.0) is not None
            s.seq = 0  # a new connection
        else:
            s.receive('{"type":"gap","reason":"source","epoch":"run-2"}')
        s.receive(_msg("snapshot", s.seq + 1, _tick("AAPL", 3)))
        events, _ = s.receive(_msg("ticks", s.seq + 1, _tick("AAPL", 4), _tick("MSFT", 2)))
        (batch,) = events
        assert isinstance(batch, Batch), restart
        assert batch.ticks["seq"].tolist() == [4, 2] and batch.conflated == 0, restart


def test_binary_frames_carry_the_offset() -> None:
    s = _stream()
    records = p.records_from_json([_tick("MSFT", 3)], s.index)
    frame = p.encode_binary(p.BinaryType.TICKS, 1, records, offset=99)
    events, reply = s.receive(frame)
    assert reply is None and s.offset == 99
    (batch,) = events
    assert isinstance(batch, Batch) and batch.symbols == ["MSFT"]


def test_the_stream_state_imports_no_trio() -> None:
    import subprocess

    code = "import sys, tickwire.feed.client.stream; print('trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
