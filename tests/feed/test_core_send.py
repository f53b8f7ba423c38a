"""The `/v1` core's data frames: binary readers of one take share its records' bytes."""

from __future__ import annotations

import sys

import numpy as np
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from tests.feed.test_core import NAMES, Market, make_hub
from tickwire.feed import protocol as p
from tickwire.feed.hub.jsonbody import GATHER_BYTES
from tickwire.feed.v1 import state as st
from tickwire.feed.v1.core import FeedContext, FeedCore
from tickwire.feed.ws.frames import OP_BINARY, frame, joined
from tickwire.feed.ws.pump import send_now


def _readers(n: int) -> tuple[list[FeedCore], Market]:
    hub = make_hub()
    ctx = FeedContext(
        hub=hub,
        index={s: i for i, s in enumerate(NAMES)},
        symbols_body=b"[]",
        limits=st.Limits(),
        server_name="tickwire/test",
        heartbeat_ms=1000,
        stall_s=10.0,
        close_timeout_s=2.0,
        t0_s=0.0,
        wall0_ns=10**18,
        stats=lambda: {},
    )
    cores = []
    for _ in range(n):
        core = FeedCore(ctx, lambda: None, binary=True, now=0.0)
        core.start(0.0)
        ws = Connection(ConnectionType.CLIENT)
        sub = '{"op":"subscribe","symbols":["*"],"snapshot":false}'
        core.receive_data(ws.send(TextMessage(sub)), 0.0)
        core.sent(len(core.outbox), 0.0)  # welcome and ack
        cores.append(core)
    return cores, Market(hub)


def test_binary_readers_of_one_large_take_send_one_copy_of_its_records() -> None:
    # Before, each reader encoded the take itself (records.tobytes(), then the frame around
    # it): three copies of up to 64 KiB per reader and message.
    (a, b), market = _readers(2)
    market.publish([k % len(NAMES) for k in range(GATHER_BYTES // 64 + 8)])
    out_a, out_b = a.take_out(0.0), b.take_out(0.0)
    assert isinstance(out_a, list) and isinstance(out_b, list)
    assert out_a[1] is out_b[1]  # the same bytes object, made once for both
    records = a.ctx.hub.history.entry(a.ctx.hub.history.stop() - 1).records
    want = frame(p.encode_binary(p.BinaryType.TICKS, 1, records), OP_BINARY)
    assert joined(out_a) == want and joined(out_b) == want  # the same frames as ever


def test_a_small_binary_take_goes_as_one_bytes_object_with_the_same_frame() -> None:
    (a,), market = _readers(1)
    market.publish([0, 1, 2])
    out = a.take_out(0.0)
    assert isinstance(out, bytes)
    records = a.ctx.hub.history.entry(a.ctx.hub.history.stop() - 1).records
    assert out == frame(p.encode_binary(p.BinaryType.TICKS, 1, records), OP_BINARY)
    assert np.frombuffer(out[-records.nbytes :], records.dtype)["sym"].tolist() == [0, 1, 2]


def _resumable(core: FeedCore) -> None:
    """The reader asks for stream positions (`resume: true`): its header carries the offset."""
    sub = '{"op":"subscribe","symbols":["*"],"snapshot":false,"resume":true}'
    core.receive_data(Connection(ConnectionType.CLIENT).send(TextMessage(sub)), 0.0)
    core.sent(len(core.outbox), 0.0)


def test_readers_of_one_take_each_send_their_seq_and_offset_in_the_same_frame() -> None:
    """Readers at different seqs, with and without offsets, small and large takes: each frame
    is `encode_binary`'s with the reader's own seq, though they share all but its seq."""
    cores, market = _readers(3)
    _resumable(cores[2])
    cores[1].seq = 255  # its next seq needs another byte
    hub = cores[0].ctx.hub
    for syms in ([0, 1, 2], [k % len(NAMES) for k in range(GATHER_BYTES // 64 + 8)]):
        market.publish(syms)
        records = hub.history.entry(hub.history.stop() - 1).records
        for core in cores:
            out = core.take_out(0.0)
            assert out is not None
            offset = hub.history.head if core is cores[2] else None
            want = p.encode_binary(p.BinaryType.TICKS, core.seq, records, offset)
            assert joined(out) == frame(want, OP_BINARY)
            core.wrote(out, len(joined(out)), 0.0)


def test_a_binary_message_in_step_costs_few_calls() -> None:
    """What the send path does for each message of a `*` reader in step (take, frame, wrote,
    whether more waits, its next deadline), counted in calls: each costs ~0.1 us, and at 100
    readers of a 1 ms market the path runs 100k times a second. It made 43 calls before."""
    cores, market = _readers(2)
    market.publish([4])
    for core in cores:  # in step from here on
        out = core.take_out(0.0)
        assert out is not None
        core.wrote(out, len(joined(out)), 0.0)
    market.publish([0, 1, 2, 3])
    cores[0].take_out(0.0)  # the first reader makes what the take shares
    calls = []

    def count(frame: object, event: str, arg: object) -> None:
        if event in ("call", "c_call"):
            calls.append(event)

    sent = []

    class Socket:
        backlog = False

        def send_nowait(self, data: bytes) -> int:
            sent.append(data)
            return len(data)

        def flush_nowait(self) -> bool:
            return True

    sys.setprofile(count)
    try:
        send_now(cores[1], Socket(), 0.0)  # type: ignore[arg-type]
        cores[1].next_deadline(0.0)
    finally:
        sys.setprofile(None)
    assert len(sent) == 1 and sent[0].endswith(cores[1].ctx.hub.lvc[[0, 1, 2, 3]].tobytes())
    assert len(calls) <= 34, len(calls)
