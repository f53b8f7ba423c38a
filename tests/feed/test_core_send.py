"""The `/v1` core's data frames: binary readers of one take share its records' bytes."""

from __future__ import annotations

import numpy as np
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from tests.feed.test_core import NAMES, Market, make_hub
from tickwire.feed import protocol as p
from tickwire.feed.hub.jsonbody import GATHER_BYTES
from tickwire.feed.v1 import state as st
from tickwire.feed.v1.core import FeedContext, FeedCore
from tickwire.feed.ws.frames import OP_BINARY, frame, joined


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
