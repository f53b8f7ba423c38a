"""A `/v1` connection's request state, sans-IO: request frames and a time we control in, actions
out. `receive` stands in for `FeedCore`'s dispatch for the ops this state answers alone; ping and
stats, which the core answers, only show here that the budget let them in."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tickwire.feed import protocol as p
from tickwire.feed.v1 import state as st

UNIVERSE = ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA"]
INDEX = {s: i for i, s in enumerate(UNIVERSE)}
SYMBOLS_BODY = json.dumps([{"symbol": s, "id": i} for s, i in INDEX.items()]).encode()


def state(limits: st.Limits | None = None, now_s: float = 0.0) -> st.ConnectionState:
    return st.ConnectionState(INDEX, SYMBOLS_BODY, limits or st.Limits(), now_s)


_OPS: dict[type, Any] = {
    p.Subscribe: st.ConnectionState.subscribe,
    p.Unsubscribe: st.ConnectionState.unsubscribe,
    p.Throttle: st.ConnectionState.throttle,
    p.Symbols: st.ConnectionState.symbols_reply,
    p.Ping: lambda s, r: [pong(r.id)],
    p.Stats: lambda s, r: [stats(r.id)],
}


def pong(rid: int | None) -> tuple[str, int | None]:
    return ("pong", rid)


def stats(rid: int | None) -> tuple[str, int | None]:
    return ("stats", rid)


def receive(s: st.ConnectionState, frame: str | bytes, now_s: float) -> list[Any]:
    """One frame through the budget, the parser and the op, as `FeedCore` does."""
    try:
        request = s.admit(frame, now_s)
        return list(_OPS[type(request)](s, request))
    except p.RequestError as err:
        return list(s.refused(err))


def req(**obj: Any) -> str:
    return json.dumps(obj)


def msg(action: st.Action) -> dict[str, Any]:
    assert isinstance(action, st.Reply)
    return json.loads(action.text)


def ids(*symbols: str) -> list[int]:
    return sorted(INDEX[s] for s in symbols)


def assert_error(actions: list[st.Action], code: str, **fields: Any) -> dict[str, Any]:
    assert len(actions) == 1, actions
    err = msg(actions[0])
    assert err["type"] == "error" and err["code"] == code, err
    for k, v in fields.items():
        assert err[k] == v
    return err


def subscribed(s: st.ConnectionState, *symbols: str, now_s: float = 0.0) -> None:
    actions = receive(s, req(op="subscribe", symbols=list(symbols), snapshot=False), now_s)
    assert msg(actions[-1])["type"] == "ack"


# --------------------------------------------------------------------------- subscribe


def test_subscribe_sets_then_acks_then_snapshots_in_that_order():
    s = state()
    actions = receive(s, req(op="subscribe", symbols=["MSFT", "AAPL"], id=1), 0.0)
    assert [type(a) for a in actions] == [st.SetSubscription, st.Reply, st.SendSnapshot]
    sub, ack, snap = actions
    assert sub.wildcard is False and sub.ids.tolist() == ids("AAPL", "MSFT")
    assert msg(ack) == {
        "type": "ack",
        "id": 1,
        "op": "subscribe",
        "symbols": ["MSFT", "AAPL"],
        "snapshot": True,
        "mode": "all",
    }
    assert snap.ids.tolist() == ids("AAPL", "MSFT")
    assert s.symbols() == ["MSFT", "AAPL"]


def test_a_second_subscribe_snapshots_only_new_symbols_and_acks_the_whole_subscription():
    s = state()
    subscribed(s, "AAPL", "MSFT")
    sub, ack, snap = receive(s, req(op="subscribe", symbols=["TSLA", "AAPL", "GOOG"]), 1.0)
    assert sub.ids.tolist() == ids("AAPL", "MSFT", "GOOG", "TSLA")
    assert msg(ack)["symbols"] == ["AAPL", "MSFT", "TSLA", "GOOG"]
    assert snap.ids.tolist() == ids("TSLA", "GOOG")
    # nothing new: no snapshot at all
    actions = receive(s, req(op="subscribe", symbols=["MSFT"]), 2.0)
    assert [type(a) for a in actions] == [st.SetSubscription, st.Reply]


def test_snapshot_false_sends_no_snapshot():
    s = state()
    actions = receive(s, req(op="subscribe", symbols=["GOOG"], snapshot=False, id=2), 0.0)
    assert [type(a) for a in actions] == [st.SetSubscription, st.Reply]
    assert msg(actions[1])["snapshot"] is False
    assert actions[0].ids.tolist() == ids("GOOG")


def test_wildcard_subscribe_snapshots_every_symbol_not_held():
    s = state()
    subscribed(s, "MSFT")
    sub, ack, snap = receive(s, req(op="subscribe", symbols=["*"]), 0.0)
    assert sub.wildcard is True and sub.ids.size == 0
    assert msg(ack)["symbols"] == ["*"]
    assert snap.ids.tolist() == ids("AAPL", "GOOG", "AMZN", "TSLA")
    # already on "*": neither "*" again nor an explicit symbol adds anything
    for symbols in (["*"], ["AAPL"]):
        actions = receive(s, req(op="subscribe", symbols=symbols), 0.0)
        assert [type(a) for a in actions] == [st.SetSubscription, st.Reply]
        assert actions[0].wildcard is True
        assert msg(actions[1])["symbols"] == ["*"]


def test_wildcard_from_nothing_snapshots_everything():
    *_, snap = receive(state(), req(op="subscribe", symbols=["*"]), 0.0)
    assert snap.ids.tolist() == list(range(len(UNIVERSE)))


def test_unsubscribe_one_symbol_while_on_wildcard():
    s = state()
    subscribed(s, "*")
    sub, ack = receive(s, req(op="unsubscribe", symbols=["GOOG"], id=5), 0.0)
    assert sub.wildcard is False
    assert sub.ids.tolist() == ids("AAPL", "MSFT", "AMZN", "TSLA")
    assert msg(ack) == {
        "type": "ack",
        "id": 5,
        "op": "unsubscribe",
        "symbols": ["AAPL", "MSFT", "AMZN", "TSLA"],
    }
    # and a new subscribe snapshots just the one that came back
    *_, snap = receive(s, req(op="subscribe", symbols=["GOOG"]), 0.0)
    assert snap.ids.tolist() == ids("GOOG")


def test_unsubscribe_explicit_and_wildcard():
    s = state()
    subscribed(s, "AAPL", "MSFT", "GOOG")
    sub, ack = receive(s, req(op="unsubscribe", symbols=["MSFT", "TSLA"]), 0.0)  # TSLA not held
    assert sub.ids.tolist() == ids("AAPL", "GOOG")
    assert msg(ack)["symbols"] == ["AAPL", "GOOG"]
    sub, ack = receive(s, req(op="unsubscribe", symbols=["*"]), 0.0)
    assert sub.wildcard is False and sub.ids.size == 0
    assert msg(ack)["symbols"] == []


@pytest.mark.parametrize("op", ["subscribe", "unsubscribe"])
@pytest.mark.parametrize("start", [["AAPL", "MSFT"], ["*"]])
def test_unknown_symbol_is_atomic_and_lists_the_offenders(op, start):
    s = state()
    subscribed(s, *start)
    before = (s.symbols(), s.wildcard, dict(s.subscribed))
    actions = receive(s, req(op=op, symbols=["GOOG", "NOPE", "AAPL", "ZZZ"], id=9), 0.0)
    err = assert_error(actions, "unknown_symbol", id=9, symbols=["NOPE", "ZZZ"])
    assert "NOPE" in err["message"]
    assert (s.symbols(), s.wildcard, dict(s.subscribed)) == before


def test_unknown_symbols_are_not_strikes():
    s = state(st.Limits(strike_limit=2))
    for i in range(10):
        actions = receive(s, req(op="subscribe", symbols=["NOPE"]), i * 0.001)
        assert_error(actions, "unknown_symbol")


def test_too_many_symbols_changes_nothing_and_lists_the_new_symbols():
    s = state(st.Limits(max_symbols=2, strike_limit=1))
    subscribed(s, "AAPL", "MSFT")  # exactly at the limit is fine
    for i in range(3):  # and not a strike: never closed
        actions = receive(s, req(op="subscribe", symbols=["MSFT", "GOOG", "TSLA"], id=i), 0.0)
        assert_error(actions, "too_many_symbols", id=i, symbols=["GOOG", "TSLA"])
    assert s.symbols() == ["AAPL", "MSFT"]
    # symbols already held do not count again
    assert [type(a) for a in receive(s, req(op="subscribe", symbols=["AAPL"]), 0.0)] == [
        st.SetSubscription,
        st.Reply,
    ]
    # "*" is always allowed
    actions = receive(s, req(op="subscribe", symbols=["*"]), 0.0)
    assert msg(actions[1])["symbols"] == ["*"]


def test_too_many_symbols_in_one_request():
    s = state(st.Limits(max_symbols=2))
    actions = receive(s, req(op="subscribe", symbols=["AAPL", "MSFT", "GOOG"]), 0.0)
    assert_error(actions, "too_many_symbols", symbols=["AAPL", "MSFT", "GOOG"])
    assert s.symbols() == []


# --------------------------------------------------------------------------- other ops


@pytest.mark.parametrize("ms", [0, 1, 250, 60_000])
def test_throttle_in_range(ms):
    s = state()
    subscribed(s, "AAPL")
    actions = receive(s, req(op="throttle", interval_ms=ms, id=3), 0.0)
    assert len(actions) == 2
    assert actions[0] == st.SetMode(latest=ms > 0)  # a throttle means the latest state
    assert msg(actions[1]) == {
        "type": "ack",
        "id": 3,
        "op": "throttle",
        "symbols": ["AAPL"],
        "interval_ms": ms,
    }
    assert s.throttle_ms == ms


@pytest.mark.parametrize("ms", [-1, 60_001, True, 1.5, "100", None])
def test_throttle_out_of_range_changes_nothing(ms):
    s = state()
    receive(s, req(op="throttle", interval_ms=100), 0.0)
    assert_error(receive(s, req(op="throttle", interval_ms=ms, id=4), 0.0), "bad_request", id=4)
    assert s.throttle_ms == 100


def test_symbols_ping_and_stats():
    s = state()
    (reply,) = receive(s, req(op="symbols", id=0), 0.0)
    assert msg(reply) == {"type": "symbols", "id": 0, "symbols": json.loads(SYMBOLS_BODY)}
    (reply,) = receive(s, req(op="symbols"), 0.0)
    assert msg(reply) == {"type": "symbols", "symbols": json.loads(SYMBOLS_BODY)}
    assert receive(s, req(op="ping", id=8), 0.0) == [pong(8)]
    assert receive(s, req(op="ping"), 0.0) == [pong(None)]
    assert receive(s, req(op="stats", id=-1), 0.0) == [stats(-1)]
    assert receive(s, req(op="stats"), 0.0) == [stats(None)]


def test_ids_are_echoed_and_omitted_when_absent():
    s = state()
    for frame in (req(op="subscribe", symbols=["AAPL"]), req(op="throttle", interval_ms=5)):
        assert all("id" not in msg(a) for a in receive(s, frame, 0.0) if isinstance(a, st.Reply))
    for bad in ("{", req(op="nope"), req(op="subscribe", symbols=["NOPE"])):
        assert "id" not in msg(receive(s, bad, 0.0)[0])
    for rid in (0, 7, -3):
        for frame in (
            req(op="subscribe", symbols=["MSFT"], id=rid),
            req(op="unsubscribe", symbols=["MSFT"], id=rid),
            req(op="throttle", interval_ms=5, id=rid),
            req(op="nope", id=rid),
            req(op="subscribe", symbols=["NOPE"], id=rid),
            req(op="subscribe", id=rid),
        ):
            replies = [msg(a) for a in receive(s, frame, 0.0) if isinstance(a, st.Reply)]
            assert [r["id"] for r in replies] == [rid]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{", "bad_json"),
        ("[1]", "bad_request"),
        (b'{"op":"ping"}', "bad_request"),
        (req(op="subscribe"), "bad_request"),
        (req(op="nope"), "unknown_op"),
    ],
)
def test_bad_requests_reply_with_an_error_and_change_nothing(frame, code):
    s = state()
    subscribed(s, "AAPL")
    assert_error(receive(s, frame, 0.0), code)
    assert s.symbols() == ["AAPL"]
    assert s.errors == 1 and s.requests == 2


# --------------------------------------------------------------------------- rate limit


def test_a_burst_beyond_the_limit_is_rate_limited_and_not_handled():
    s = state(st.Limits(rate_per_s=10.0, burst=5))
    for _ in range(5):
        assert receive(s, req(op="ping"), 100.0) == [pong(None)]
    actions = receive(s, req(op="subscribe", symbols=["AAPL"], id=6), 100.0)
    err = assert_error(actions, "rate_limited", id=6)
    assert "10" in err["message"]
    assert s.symbols() == []  # the request was not handled
    # a binary frame that is rate limited still gets its id back where it can be read
    assert_error(receive(s, b'{"op":"ping","id":2}', 100.0), "rate_limited", id=2)
    assert "id" not in msg(receive(s, "{", 100.0)[0])


def test_tokens_refill_with_time_up_to_the_burst():
    s = state(st.Limits(rate_per_s=10.0, burst=5), now_s=0.0)

    def allowed(now_s: float) -> int:
        n = 0
        while receive(s, req(op="ping"), now_s) == [pong(None)]:
            n += 1
        return n

    assert allowed(0.0) == 5
    assert allowed(0.05) == 0  # half a token
    assert allowed(0.1) == 1
    assert allowed(0.35) == 2  # 2.5 tokens
    assert allowed(1000.0) == 5  # never more than the burst
    assert allowed(999.0) == 0  # time going backwards refills nothing


def test_sustained_rate_at_the_limit_is_never_limited():
    s = state(st.Limits(rate_per_s=32.0, burst=1))
    for i in range(500):  # 1/32 s apart: exact in binary floating point
        assert receive(s, req(op="ping"), i / 32) == [pong(None)]
    assert_error(receive(s, req(op="ping"), 499 / 32), "rate_limited")


# --------------------------------------------------------------------------- strikes


def test_bad_requests_past_the_strike_limit_close_with_1008():
    s = state(st.Limits(strike_limit=3))
    for _ in range(3):
        assert_error(receive(s, "{", 0.0), "bad_json")
    reply, close = receive(s, req(op="nope", id=1), 0.0)
    assert msg(reply)["code"] == "unknown_op"
    assert close == st.Close(p.CloseCode.POLICY, close.reason)
    assert close.code == 1008 and close.reason


def test_strikes_decay_one_per_second():
    s = state(st.Limits(strike_limit=3))
    for _ in range(3):
        assert_error(receive(s, "{", 0.0), "bad_json")
    assert_error(receive(s, "{", 1.0), "bad_json")  # 3 - 1 + 1 = 3 strikes: still open
    assert [type(a) for a in receive(s, "{", 1.0)] == [st.Reply, st.Close]  # 4
    s = state(st.Limits(strike_limit=3))
    for t in range(100):  # one bad request a second forever is tolerated
        assert_error(receive(s, "[]", float(t)), "bad_request")
    for _ in range(3):
        assert_error(receive(s, "[]", 1000.0), "bad_request")  # fully decayed after a while


def test_rate_limited_requests_are_strikes():
    s = state(st.Limits(rate_per_s=1.0, burst=1, strike_limit=2))
    assert receive(s, req(op="ping"), 0.0) == [pong(None)]
    assert_error(receive(s, req(op="ping"), 0.0), "rate_limited")
    assert_error(receive(s, req(op="ping"), 0.0), "rate_limited")
    assert [type(a) for a in receive(s, req(op="ping"), 0.0)] == [st.Reply, st.Close]


def test_good_requests_do_not_strike():
    s = state(st.Limits(strike_limit=0, burst=1000))
    for i in range(100):
        actions = receive(s, req(op="subscribe", symbols=[UNIVERSE[i % 5]], id=i), 0.0)
        assert not any(isinstance(a, st.Close) for a in actions)
    assert [type(a) for a in receive(s, "{", 0.0)] == [st.Reply, st.Close]


def test_set_subscription_ids_are_sorted_intp():
    s = state()
    (sub, *_) = receive(s, req(op="subscribe", symbols=["TSLA", "AAPL", "GOOG"]), 0.0)
    assert sub.ids.dtype == np.intp
    assert sub.ids.tolist() == [0, 2, 4]


def test_mode_latest_and_back_and_a_throttle_keeps_latest():
    s = state()
    actions = receive(s, req(op="subscribe", symbols=["AAPL"], mode="latest"), 0.0)
    assert st.SetMode(True) in actions and msg(actions[2])["mode"] == "latest"
    receive(s, req(op="throttle", interval_ms=100), 0.0)
    actions = receive(s, req(op="subscribe", symbols=["AAPL"], mode="all"), 0.0)
    assert st.SetMode(True) in actions  # still throttled: the latest state all the same
    assert receive(s, req(op="throttle", interval_ms=0), 0.0)[0] == st.SetMode(False)
    assert not any(
        isinstance(a, st.SetMode) for a in receive(s, req(op="subscribe", symbols=["AAPL"]), 0.0)
    )


def test_a_resume_position_defers_the_ack_to_the_hub_and_snapshots_only_if_not_recovered():
    s = state()
    assert not s.resumable
    actions = receive(
        s,
        req(op="subscribe", symbols=["MSFT", "AAPL"], id=4, resume={"epoch": "e1", "offset": 7}),
        0.0,
    )
    assert [type(a) for a in actions] == [st.SetSubscription, st.Resume]
    resume = actions[1]
    assert (resume.epoch, resume.offset) == ("e1", 7) and s.resumable
    assert resume.snapshot_ids.tolist() == ids("AAPL", "MSFT")
    assert resume.ack == {
        "type": "ack",
        "id": 4,
        "op": "subscribe",
        "symbols": ["MSFT", "AAPL"],
        "snapshot": True,
        "mode": "all",
    }
    again = receive(
        s,
        req(op="subscribe", symbols=["AAPL"], snapshot=False, resume={"epoch": "e", "offset": 0}),
        0.0,
    )
    assert again[1].snapshot_ids is None


def test_resume_true_only_asks_for_positions():
    s = state()
    actions = receive(s, req(op="subscribe", symbols=["AAPL"], resume=True), 0.0)
    assert [type(a) for a in actions] == [st.SetSubscription, st.Reply, st.SendSnapshot]
    assert s.resumable
