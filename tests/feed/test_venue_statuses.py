"""A scenario's trading status changes on the venues' delivery path: each venue's hub stream
reads the server's `StatusLog` (the one `/v1` reads) and puts its changes in stream order with
its takes; Alpaca's `statuses` channel carries them, the other venues skip them. Sans-IO."""

from __future__ import annotations

import json

import numpy as np

from tests.feed.test_venue_core import T0_NS, client_text, context, drain, open_core, texts
from tickwire.feed.v1.status import Change, StatusLog
from tickwire.feed.venues.session import VenueContext, VenueCore
from tickwire.feed.venues.stream import in_order
from tickwire.simulators import Market
from tickwire.simulators.scenario import STATUS_DTYPE
from tickwire.simulators.ticks import TICK_DTYPE as TICK


def _change(offset: int, status: int = 1) -> Change:
    return Change(offset, 0, status, 1, T0_NS + offset, b"")


def _statuses(ts: int, sym: int, status: int) -> np.ndarray:
    rec = np.zeros(1, STATUS_DTYPE)
    rec["ts"], rec["sym"], rec["status"], rec["reason"] = ts, sym, status, 1
    return rec


def test_in_order_cuts_a_take_where_a_change_falls_among_its_records() -> None:
    first = np.zeros(4, TICK)  # offsets 0..3
    second = np.zeros(3, TICK)  # offsets 4..6
    at0, at2, at2b, at4, at7 = (_change(o) for o in (0, 2, 2, 4, 7))
    pieces = in_order([(first, 4), (second, 7)], [at0, at2, at2b, at4, at7])
    shapes = [[c.offset for c in p] if isinstance(p, list) else len(p) for p in pieces]
    # A change at offset o sits after every record before o; changes at one offset stay together.
    assert shapes == [[0], 2, [2, 2], 2, [4], 3, [7]]
    assert in_order([(first, 4)], []) == [first]  # no change: the take as it is, uncut
    assert in_order([], [at7]) == [[at7]]  # a change with no record after it still goes out


def _alpaca(ctx: VenueContext, key: str, subscribe: str) -> tuple[VenueCore, list[int]]:
    """An authenticated Alpaca connection (its own key: one connection per key) with `subscribe`."""
    core, woken = open_core(ctx, "/alpaca/v2/iex")
    core.receive_data(client_text(json.dumps({"action": "auth", "key": key, "secret": "s"})), 0.0)
    core.receive_data(client_text(subscribe), 0.0)
    drain(core, 0.0)  # connected, authenticated, the subscription
    return core, woken


def test_alpaca_statuses_come_from_the_hub_stream_in_order_with_the_trades() -> None:
    ctx = context()
    names = np.array(ctx.universe.symbols, dtype=object)
    ctx.statuses = log = StatusLog(names)
    aapl = ctx.universe.index("AAPL")
    sub = '{"action":"subscribe","trades":["AAPL"],"statuses":["AAPL"]}'
    core, woken = _alpaca(ctx, "a", sub)
    quiet, _ = _alpaca(ctx, "b", '{"action":"subscribe","trades":["AAPL"]}')  # no statuses
    binance, _ = open_core(ctx, "/binance/ws/aapl@trade")
    market = Market(ctx.universe, seed=1, start_ns=T0_NS)
    now_ns = T0_NS
    while not woken:
        now_ns += 100_000_000
        ctx.hub.publish(market.step(now_ns), on_grid=True)
    # The halt at the head: no record follows it, yet the stream reads it (the log wakes it).
    log.publish(_statuses(now_ns + 1, aapl, 1), ctx.hub.history.head)
    data = core.take_data(1.0)
    assert data is not None
    got = [m for batch in texts(data) for m in batch]  # type: ignore[attr-defined]
    assert [m["T"] for m in got][-1] == "s" and {m["T"] for m in got[:-1]} == {"t"}
    assert (got[-1]["S"], got[-1]["sc"], got[-1]["rc"]) == ("AAPL", "H", "T12")
    # Those not subscribed to statuses, and the venues without them, get trades only.
    quiet_msgs = [m for batch in texts(quiet.take_data(1.0) or b"") for m in batch]  # type: ignore[attr-defined]
    assert quiet_msgs and {m["T"] for m in quiet_msgs} == {"t"}
    assert all(m["e"] == "trade" for m in texts(binance.take_data(1.0) or b""))  # type: ignore[index]
    # A connection joining now starts from now: the halt before it is not replayed.
    late, _ = _alpaca(ctx, "c", sub)
    log.publish(_statuses(now_ns + 2, aapl, 0), ctx.hub.history.head)
    for c in (core, late):
        msgs = [m for batch in texts(c.take_data(2.0) or b"") for m in batch]  # type: ignore[attr-defined]
        assert [(m["T"], m["sc"]) for m in msgs] == [("s", "T")]
