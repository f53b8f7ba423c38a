"""The venue connection core, sans-IO: sessions' frames through the WebSocket layer, shared
framing across connections, bounded buffers and the venue's overflow, session deadlines."""

from __future__ import annotations

import json
import math
import struct

from tickwire.feed._core import ServerCounters
from tickwire.feed._venue_core import VenueContext, VenueCore
from tickwire.feed._wscore import State
from tickwire.feed.venues import route
from tickwire.simulators import Market, Universe

T0_NS = 1_700_000_000_000_000_000


def context(buffer_bytes: int = 4 << 20) -> VenueContext:
    return VenueContext(
        universe=Universe.default(),
        tokens=(),
        stall_s=10.0,
        close_timeout_s=2.0,
        t0_s=0.0,
        wall0_ns=T0_NS,
        counters=ServerCounters(),
        buffer_bytes=buffer_bytes,
    )


def open_core(ctx: VenueContext, path: str, query: str = "") -> tuple[VenueCore, list[int]]:
    factory = route(path)
    assert factory is not None
    session = factory(path, query, {}, ctx.universe, ctx.tokens, T0_NS)
    woken: list[int] = []
    core = VenueCore(ctx, session, lambda: woken.append(1), 0.0)
    core.start(0.0)
    return core, woken


def frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked server frame in `data` (RFC 6455 5.2)."""
    out, i = [], 0
    while i < len(data):
        op, n = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if n == 126:
            n, i = struct.unpack_from("!H", data, i)[0], i + 2
        elif n == 127:
            n, i = struct.unpack_from("!Q", data, i)[0], i + 8
        out.append((op, data[i : i + n]))
        i += n
    return out


def texts(data: bytes) -> list[object]:
    return [json.loads(payload) for op, payload in frames(data) if op == 1]


def client_text(text: str) -> bytes:
    """A client's text frame, masked with a zero key (so the payload reads as is)."""
    payload = text.encode()
    assert len(payload) < 126
    return bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload


def test_frames_are_framed_once_and_shared_by_connections_and_sent_in_order() -> None:
    ctx = context()
    stream = "aapl@trade/aapl@bookTicker"
    a, woken_a = open_core(ctx, "/binance/stream", f"streams={stream}")
    b, _ = open_core(ctx, "/binance/stream", f"streams={stream}")
    market = Market(ctx.universe, seed=1, start_ns=T0_NS)
    now_ns = T0_NS
    while not a.pending:
        now_ns += 50_000_000
        ctx.fanout.publish(market.step(now_ns), now_ns, (now_ns - T0_NS) / 1e9)
    assert woken_a == [1]  # woken once, when data first waited
    assert all(x is y for x, y in zip(a.pending, b.pending, strict=True))  # the same bytes
    data = a.take_data(1.0)
    assert data is not None and a.take_data(1.0) is None
    msgs = texts(data)
    assert msgs and {m["stream"] for m in msgs} <= {"aapl@trade", "aapl@bookTicker"}
    assert ctx.fanout.frames_delivered == len(msgs)


def test_full_buffer_is_the_sessions_overflow_alpaca_407_then_close() -> None:
    ctx = context(buffer_bytes=2048)
    core, _ = open_core(ctx, "/alpaca/v2/iex")
    for msg in (
        {"action": "auth", "key": "k", "secret": "s"},
        {"action": "subscribe", "trades": ["*"], "quotes": ["*"]},
    ):
        core.receive_data(client_text(json.dumps(msg)), 0.0)
    core.sent(len(core.outbox), 0.0)  # the replies went out
    market = Market(ctx.universe, seed=1, start_ns=T0_NS)
    now_ns = T0_NS
    while core.state is not State.CLOSING:
        now_ns += 50_000_000
        ctx.fanout.publish(market.step(now_ns), now_ns, 0.0)
    assert not core.pending and core.close_code == 1008
    sent = frames(bytes(core.outbox))
    assert json.loads(sent[-2][1]) == [{"T": "error", "code": 407, "msg": "slow client"}]
    assert sent[-1][0] == 0x8 and struct.unpack("!H", sent[-1][1][:2])[0] == 1008
    core.detach()
    assert len(ctx.fanout) == 0


def test_session_deadline_drives_the_timer() -> None:
    ctx = context()
    core, _ = open_core(ctx, "/coinbase")
    deadline = core.next_deadline(0.0)
    assert 4.9 < deadline < 5.1 and math.isfinite(deadline)  # Coinbase: subscribe within 5 s
    core.timer(deadline)
    assert core.state is State.CLOSING and core.close_code == 1008
