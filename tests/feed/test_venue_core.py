"""The venue connection core, sans-IO: sessions' frames through the WebSocket layer, market data
read from the hub through the venue's stream (encoded once, framing shared across connections),
bounded backlogs and the venue's overflow, session deadlines, Binance's server pings, Alpaca's
per-key connection count."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import trio

from tickwire.feed.hub.hub import Hub
from tickwire.feed.v1.core import ServerCounters
from tickwire.feed.venues import Upgrade, route
from tickwire.feed.venues.session import VenueContext, VenueCore
from tickwire.feed.ws.websocket import State
from tickwire.simulators import Market, Universe

T0_NS = 1_700_000_000_000_000_000


def context(buffer_bytes: int = 4 << 20, **kw: Any) -> VenueContext:
    universe = Universe.default()
    return VenueContext(
        universe=universe,
        tokens=(),
        stall_s=10.0,
        close_timeout_s=2.0,
        t0_s=0.0,
        wall0_ns=T0_NS,
        counters=ServerCounters(),
        hub=Hub(universe, Market(universe, seed=1, start_ns=T0_NS).snapshot()),
        buffer_bytes=buffer_bytes,
        **kw,
    )


def open_core(ctx: VenueContext, path: str, query: str = "") -> tuple[VenueCore, list[int]]:
    factory = route(path)
    assert factory is not None
    session = factory(Upgrade(path, query, {}, ctx.universe, ctx.tokens, T0_NS, ctx.services))
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
    return client_frame(0x1, text.encode())


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A client's final frame, masked with a zero key."""
    assert len(payload) < 126
    return bytes((0x80 | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload


def drain(core: VenueCore, now: float) -> bytes:
    """Everything the core queued, as if the socket took it all."""
    data = bytes(core.outbox)
    core.sent(len(data), now)
    return data


def test_frames_are_framed_once_and_shared_by_connections_and_sent_in_order() -> None:
    ctx = context()
    stream = "aapl@trade/aapl@bookTicker"
    a, woken_a = open_core(ctx, "/binance/stream", f"streams={stream}")
    b, woken_b = open_core(ctx, "/binance/stream", f"streams={stream}")
    market = Market(ctx.universe, seed=1, start_ns=T0_NS)
    now_ns = T0_NS
    venue = ctx.fanout.stream("binance")
    while not venue.readers[a].frames:
        now_ns += 50_000_000
        ctx.hub.publish(market.step(now_ns), on_grid=True)
    assert woken_a == woken_b == [1]  # woken once, when data first waited
    # Encoded once for the venue, framed once: both hold the same bytes objects.
    pairs = zip(venue.readers[a].frames, venue.readers[b].frames, strict=True)
    assert all(x is y for x, y in pairs)
    data_a = a.take_data(1.0)
    assert venue.readers[b].frames  # b has not read them yet
    data_b = b.take_data(1.0)
    assert data_a is not None and data_b == data_a
    assert a.take_data(1.0) is None and b.take_data(1.0) is None
    msgs = texts(data_a)
    assert msgs and {m["stream"] for m in msgs} <= {"aapl@trade", "aapl@bookTicker"}
    assert ctx.fanout.frames_delivered == 2 * len(msgs)


def test_the_venue_encodes_every_update_once_however_many_read_it() -> None:
    """The venue's subscriber takes every update from the hub as it is published (never the
    latest state, however long its connections wait), encoded once: a late reader gets the
    same bytes, every trade in order."""
    ctx = context()
    a, _ = open_core(ctx, "/binance/ws/aapl@trade")
    b, _ = open_core(ctx, "/binance/ws/aapl@trade")
    market = Market(ctx.universe, seed=1, start_ns=T0_NS)
    steps = [market.step(T0_NS + k * 500_000_000) for k in range(1, 11)]  # 5 s: past the lag
    for batch in steps:
        ctx.hub.publish(batch, on_grid=True)
    data_a = a.take_data(6.0)
    data_b = b.take_data(6.0)
    assert data_a is not None and data_a == data_b
    trades = [m["t"] for m in texts(data_a)]  # type: ignore[index]
    aapl = ctx.universe.index("AAPL")
    want = sum(int(((s["sym"] == aapl) & (s["flags"] & 1 > 0)).sum()) for s in steps)
    assert len(trades) == want > 0 and trades == sorted(trades)


def test_full_backlog_is_the_sessions_overflow_alpaca_407_then_close() -> None:
    ctx = context(buffer_bytes=2048)
    core, _ = open_core(ctx, "/alpaca/v2/iex")
    fast, _ = open_core(ctx, "/alpaca/v2/iex")  # it reads all along
    for msg in (
        {"action": "auth", "key": "k", "secret": "s"},
        {"action": "subscribe", "trades": ["*"], "quotes": ["*"]},
    ):
        core.receive_data(client_text(json.dumps(msg)), 0.0)
    core.sent(len(core.outbox), 0.0)  # the replies went out; it never takes data
    fast.sent(len(fast.outbox), 0.0)
    market = Market(ctx.universe, seed=1, start_ns=T0_NS)
    now_ns = T0_NS
    while core.state is not State.CLOSING:
        now_ns += 50_000_000
        ctx.hub.publish(market.step(now_ns), on_grid=True)
        fast.take_data(0.0)
    assert core.close_code == 1008 and core.take_data(1.0) is None
    sent = frames(bytes(core.outbox))
    assert json.loads(sent[-2][1]) == [{"T": "error", "code": 407, "msg": "slow client"}]
    assert sent[-1][0] == 0x8 and struct.unpack("!H", sent[-1][1][:2])[0] == 1008
    assert fast.state is State.IDLE
    core.detach()
    fast.detach()
    assert len(ctx.fanout) == 0 and ctx.fanout.stream("alpaca").sub is None


def test_session_deadline_drives_the_timer() -> None:
    ctx = context()
    core, _ = open_core(ctx, "/coinbase")
    deadline = core.next_deadline(0.0)
    assert 4.9 < deadline < 5.1 and math.isfinite(deadline)  # Coinbase: subscribe within 5 s
    core.timer(deadline)
    assert core.state is State.CLOSING and core.close_code == 1008


# ----------------------------------------------------------------------------- Binance pings

PING, PONG = 0x9, 0xA


def test_binance_connections_are_pinged_and_a_silent_client_is_closed() -> None:
    """As at Binance: a ping every 20 s; a pong echoing it answers it and every older ping; a
    ping unanswered for a minute closes the connection. Other venues are not pinged."""
    ctx = context()
    core, _ = open_core(ctx, "/binance/ws/aapl@trade")
    assert core.next_deadline(0.0) == 20.0
    core.timer(19.9)
    assert not core.outbox
    core.timer(20.0)
    assert frames(drain(core, 20.0)) == [(PING, b"1")]
    assert core.next_deadline(20.0) == 40.0
    core.receive_data(client_frame(PONG, b"1"), 21.0)
    for t in (40.0, 60.0, 80.0):  # pings 2, 3, 4; only the last is answered, late
        core.timer(t)
        assert frames(drain(core, t)) == [(PING, str(int(t) // 20).encode())]
    core.receive_data(client_frame(PONG, b"unsolicited"), 81.0)  # answers nothing
    assert core.next_deadline(81.0) == 100.0
    core.receive_data(client_frame(PONG, b"4"), 99.0)  # answers 2, 3 and 4: ping 2 was 60 s old
    core.timer(100.0)
    assert frames(drain(core, 100.0)) == [(PING, b"5")] and core.state is State.IDLE
    for t in (120.0, 140.0):
        core.timer(t)
        drain(core, t)
    core.timer(160.0)  # ping 5 unanswered for 60 s: no ping 8, a close
    assert core.state is State.CLOSING and core.close_code == 1008
    assert [op for op, _ in frames(drain(core, 160.0))] == [0x8]  # a close frame, no ping
    assert core.close_reason == "no pong within 60 s"
    for path in ("/coinbase", "/alpaca/v2/iex"):
        other, _ = open_core(ctx, path)
        assert other.keepalive is None


async def test_binance_pings_on_the_core_deadline_alone(autojump_clock: trio.abc.Clock) -> None:
    """The shell's loop, on a fake clock: sleep to `next_deadline`, run `timer`. Pings come every
    `binance_ping_s` of that clock and nothing else is needed; a client that stops answering is
    closed one minute after its first unanswered ping."""
    t0 = trio.current_time()
    ctx = context(binance_ping_s=20.0)
    ctx.t0_s = t0
    factory = route("/binance/ws")
    assert factory is not None
    core = VenueCore(
        ctx, factory(Upgrade("/binance/ws", "", {}, ctx.universe, (), T0_NS)), lambda: None, t0
    )
    core.start(t0)
    pings: list[tuple[float, bytes]] = []
    while core.state is State.IDLE:
        await trio.sleep_until(core.next_deadline(trio.current_time()))
        now = trio.current_time()
        core.timer(now)
        for opcode, payload in frames(drain(core, now)):
            if opcode == PING:
                pings.append((now - t0, payload))
                if len(pings) <= 3:  # the client answers the first three pings only
                    core.receive_data(client_frame(PONG, payload), now)
    assert pings == [(20.0 * i, str(i).encode()) for i in range(1, 7)]
    assert trio.current_time() - t0 == 4 * 20.0 + 60.0  # ping 4 at 80 s, unanswered at 140 s
    assert core.close_code == 1008


# ----------------------------------------------------------------------------- Alpaca's 406


def test_alpaca_key_slot_is_released_however_the_connection_ends() -> None:
    """The count lives in the context; `detach` (the shell's one way out) gives it back after a
    clean close, a lost connection, or a close the server decided (a slow reader's 407)."""
    ctx = context(alpaca_connections_per_key=1)
    keys = ctx.services.alpaca_keys

    def authed() -> VenueCore:
        core, _ = open_core(ctx, "/alpaca/v2/iex")
        core.receive_data(client_text('{"action":"auth","key":"k","secret":"s"}'), 0.0)
        return core

    first = authed()
    assert keys.counts == {("iex", "k"): 1}
    second = authed()
    assert texts(drain(second, 0.0))[-1] == [
        {"T": "error", "code": 406, "msg": "connection limit exceeded"}
    ]
    assert second.state is State.CLOSING
    second.detach()
    assert keys.counts == {("iex", "k"): 1}  # the refused one held nothing
    for end in ("lost", "peer close", "slow reader"):
        if end == "lost":
            first.receive_data(b"", 1.0)
        elif end == "peer close":
            first.receive_data(client_frame(0x8, struct.pack("!H", 1000)), 1.0)
        else:
            first.session.overflow()
            first.close(1008, "slow client", 1.0)
        first.detach()
        assert keys.counts == {}, end
        first = authed()
        assert keys.counts == {("iex", "k"): 1}, end


def test_a_connection_with_nothing_to_read_is_not_woken_and_holds_nothing() -> None:
    """A venue connection whose session wants nothing (Binance with no streams) is not woken
    by the venue's batches and holds nothing of them."""
    ctx = context()
    idle, woken_idle = open_core(ctx, "/binance/ws")
    busy, woken_busy = open_core(ctx, "/binance/ws/aapl@bookTicker")
    market = Market(ctx.universe, seed=1, start_ns=T0_NS)
    venue = ctx.fanout.stream("binance")
    for k in range(1, 30):
        ctx.hub.publish(market.step(T0_NS + k * 50_000_000), on_grid=True)
        busy.take_data(k / 20)
        assert not venue.readers[idle].frames and not venue.readers[busy].frames
    assert woken_idle == [] and len(woken_busy) > 0
    assert idle.take_data(2.0) is None
