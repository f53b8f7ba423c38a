"""The one transition table of each kind of connection, walked with plain bytes and no trio.

For `/v1` (`FeedCore`), the venues (`VenueCore`) and the bare WebSocket phase (the echo core):
every (state, event) pair the table lists goes where it says, every pair it does not list
raises `TransitionError`, and driving a real connection with a wsproto client's bytes passes
through every transition of the feed protocol's phase.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import Any, get_args

import pytest

from tests.feed.test_core import Peer, make_core
from tests.feed.test_venue_core import client_text, context, drain, open_core
from tickwire.feed import protocol as p
from tickwire.feed.v1 import state as st
from tickwire.feed.v1.core import EFFECTS, OPS, FeedCore
from tickwire.feed.venues import session as vs
from tickwire.feed.ws.websocket import (
    WIRE_TRANSITIONS,
    Event,
    Phase,
    State,
    TransitionError,
    Transitions,
    WebSocketCore,
)

# Each kind of connection: its table, its protocol phase's states and events.
KINDS: dict[str, tuple[Transitions, type[Enum], type[Enum]]] = {
    "v1": (st.TRANSITIONS, st.FeedPhase, st.FeedEvent),
    "venue": (vs.TRANSITIONS, vs.VenuePhase, vs.VenueEvent),
    "bare": (WIRE_TRANSITIONS, Phase, Phase),
}


def bare_core() -> WebSocketCore:
    return WebSocketCore(max_message=1024, stall_s=1.0, close_timeout_s=1.0, now=0.0)


def new_core(kind: str) -> WebSocketCore:
    if kind == "v1":
        return make_core()[0]
    if kind == "venue":
        return open_core(context(), "/binance/ws/aapl@trade")[0]
    return bare_core()


def pairs(kind: str) -> Iterator[tuple[Enum, Enum]]:
    """Every (state, event) pair of a kind: listed or not."""
    _, phases, events = KINDS[kind]
    for state in State:
        for event in Event:
            yield state, event
    if events is not Phase:
        for phase in phases:
            for ev in events:
                yield phase, ev


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_listed_transition_goes_where_the_table_says_and_no_other_is_allowed(kind):
    table = KINDS[kind][0]
    core = new_core(kind)
    assert core.TRANSITIONS is table
    seen = 0
    for state, event in pairs(kind):
        if isinstance(state, State):
            core.state = state
        else:
            core.phase = state
        if (state, event) in table:
            core.process_event(event)
            now = core.state if isinstance(state, State) else core.phase
            assert now is table[state, event]
            seen += 1
        else:
            with pytest.raises(TransitionError, match=f"{event.value} is not allowed"):
                core.process_event(event)
            assert (core.state if isinstance(state, State) else core.phase) is state
    assert seen == len(table)  # the table lists nothing but these states and events


@pytest.mark.parametrize("kind", list(KINDS))
def test_closed_and_done_are_final(kind):
    table = KINDS[kind][0]
    for (state, _event), new in table.items():
        if state in (State.CLOSED, st.FeedPhase.DONE, vs.VenuePhase.DONE):
            assert new is state


@pytest.fixture
def walked(monkeypatch: pytest.MonkeyPatch) -> set[tuple[Enum, Enum]]:
    """The (state, event) pairs the cores of this test went through."""
    seen: set[tuple[Enum, Enum]] = set()
    real = WebSocketCore.process_event

    def record(self: WebSocketCore, event: Enum) -> None:
        seen.add((self.state if isinstance(event, Event) else self.phase, event))
        real(self, event)

    monkeypatch.setattr(WebSocketCore, "process_event", record)
    return seen


def feed_phase_pairs() -> set[Any]:
    return {k for k in st.TRANSITIONS if isinstance(k[0], st.FeedPhase)}


def test_bytes_walk_every_transition_of_the_feed_phase(walked):
    core, market, peer = _opened()
    assert core.phase is st.FeedPhase.WELCOMED
    peer.request(op="unsubscribe", symbols=["*"])  # WELCOMED, holds none
    peer.request(op="subscribe", symbols=["S0"])  # WELCOMED -> SUBSCRIBED
    peer.request(op="subscribe", symbols=["S1"])  # SUBSCRIBED, holds
    assert core.phase is st.FeedPhase.SUBSCRIBED and core.ctx.subscribers == 1
    peer.flush()
    offset = core.sub.cursor
    market.publish([0, 1, 0])
    peer.flush()
    epoch = core.ctx.hub.epoch
    resume = {"epoch": epoch, "offset": offset}
    peer.request(op="subscribe", symbols=["S0"], resume=resume)  # SUBSCRIBED -> RESUMING
    assert core.phase is st.FeedPhase.RESUMING
    peer.request(op="subscribe", symbols=["S2"])  # RESUMING, holds
    peer.request(op="subscribe", symbols=["S0"], resume=resume)  # RESUMING, resumed again
    got = peer.flush()  # the replay: RESUMING -> SUBSCRIBED once the take reaches the head
    assert core.phase is st.FeedPhase.SUBSCRIBED
    assert [m["seq"] for m in got if isinstance(m, dict) and m.get("type") == "ticks"]
    peer.request(op="unsubscribe", symbols=["*"])  # SUBSCRIBED -> WELCOMED
    peer.request(op="subscribe", symbols=["S0"], resume=resume)
    peer.request(op="unsubscribe", symbols=["*"])  # RESUMING -> WELCOMED
    assert core.phase is st.FeedPhase.WELCOMED and core.ctx.subscribers == 0
    core.detach()  # WELCOMED -> DONE
    for start in ("subscribed", "resuming"):
        core, _, peer = _opened()
        here = {"epoch": core.ctx.hub.epoch, "offset": core.sub.cursor}
        peer.request(op="subscribe", symbols=["S0"], resume=here if start == "resuming" else False)
        assert core.phase is st.FeedPhase[start.upper()] and core.ctx.subscribers == 1
        core.detach()
        assert core.phase is st.FeedPhase.DONE and core.ctx.subscribers == 0
    refused, _ = make_core(start=False)  # refused at the connection cap: never welcomed
    refused.close(p.CloseCode.TRY_AGAIN_LATER, "full", 0.0)
    refused.detach()  # CONNECTED -> DONE
    assert feed_phase_pairs() <= walked, sorted(
        f"{s.value}+{e.value}" for s, e in feed_phase_pairs() - walked
    )


def test_a_request_out_of_phase_is_never_a_transition_error():
    """Requests after our close frame are not parsed: no phase event without a welcome."""
    core, _ = make_core(start=False)
    core.close(p.CloseCode.TRY_AGAIN_LATER, "full", 0.0)
    Peer(core).request(op="subscribe", symbols=["S0"])
    assert core.phase is st.FeedPhase.CONNECTED and core.state is State.CLOSING


def test_bytes_walk_every_transition_of_the_venue_phase(walked):
    ctx = context()
    core, _ = open_core(ctx, "/binance/ws")  # Binance without streams: OPEN, wants none
    assert core.phase is vs.VenuePhase.OPEN
    drain(core, 0.0)
    sub = '{"method":"SUBSCRIBE","params":["%s@trade"],"id":%d}'
    unsub = '{"method":"UNSUBSCRIBE","params":["%s@trade"],"id":%d}'
    sym = ctx.universe.symbols[0].lower()
    core.receive_data(client_text(unsub % (sym, 1)), 0.0)  # OPEN, wants none
    core.receive_data(client_text(sub % (sym, 2)), 0.0)  # OPEN -> STREAMING
    core.receive_data(client_text(sub % (sym, 3)), 0.0)  # STREAMING, wants
    assert core.phase is vs.VenuePhase.STREAMING
    core.receive_data(client_text(unsub % (sym, 4)), 0.0)  # STREAMING -> OPEN
    assert core.phase is vs.VenuePhase.OPEN
    core.detach()  # OPEN -> DONE
    streaming, _ = open_core(ctx, "/binance/ws/" + sym + "@trade")
    assert streaming.phase is vs.VenuePhase.STREAMING
    streaming.detach()  # STREAMING -> DONE
    refused = vs.VenueCore(ctx, streaming.session, lambda: None, 0.0)
    refused.detach()  # CONNECTED -> DONE
    venue = {k for k in vs.TRANSITIONS if isinstance(k[0], vs.VenuePhase)}
    assert venue <= walked, sorted(f"{s.value}+{e.value}" for s, e in venue - walked)


def _opened() -> tuple[FeedCore, Any, Peer]:
    core, market = make_core()
    peer = Peer(core)
    peer.flush()
    return core, market, peer


def test_every_request_op_and_every_action_has_its_one_entry_in_the_dispatch():
    """A request class added to `protocol.Request` without a method in `OPS` fails here, not on
    a client's first such request; so does an action without its effect."""
    assert set(get_args(p.Request)) == set(OPS)
    assert set(get_args(st.Action)) == set(EFFECTS)


def test_each_op_answers_through_the_dispatch_with_plain_bytes():
    _core, _market, peer = _opened()
    peer.request(op="ping", id=1)
    peer.request(op="symbols", id=2)
    peer.request(op="throttle", interval_ms=10, id=3)
    peer.request(op="subscribe", symbols=["S0"], snapshot=False, id=4)
    peer.request(op="unsubscribe", symbols=["S0"], id=5)
    peer.request(op="stats", id=6)
    got = [m for m in peer.flush() if isinstance(m, dict)]
    assert [(m["type"], m.get("op"), m["id"]) for m in got] == [
        ("pong", None, 1),
        ("symbols", None, 2),
        ("ack", "throttle", 3),
        ("ack", "subscribe", 4),
        ("ack", "unsubscribe", 5),
        ("stats", None, 6),
    ]
