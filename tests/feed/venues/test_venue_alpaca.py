"""The Alpaca dialect's core with plain messages: no sockets, no trio."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import msgpack
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.feed.venues import Close, Frame, HandshakeRefused, KeyLimit, Upgrade, route
from tickwire.feed.venues.alpaca import AlpacaEncoder, AlpacaSession
from tickwire.simulators.universe import Universe

from ._shapes import TRADE_BUY, TRADE_SELL, assert_shape, market_batches, records, trade_seqs

# Alpaca's documented examples (market data v2 real-time stream), as data.
DOC_TRADE = {
    "T": "t",
    "i": 96921,
    "S": "AAPL",
    "x": "D",
    "p": 126.55,
    "s": 1,
    "t": "2021-02-22T15:51:44.208123456Z",
    "c": ["@", "I"],
    "z": "C",
}
DOC_QUOTE = {
    "T": "q",
    "S": "AMD",
    "bx": "U",
    "bp": 87.66,
    "bs": 1,
    "ax": "Q",
    "ap": 87.68,
    "as": 4,
    "t": "2021-02-22T15:51:45.335689322Z",
    "c": ["R"],
    "z": "C",
}
DOC_BAR = {
    "T": "b",
    "S": "SPY",
    "o": 388.985,
    "h": 389.13,
    "l": 388.975,
    "c": 389.12,
    "v": 49378,
    "t": "2021-02-22T19:15:00Z",
    "n": 461,
    "vw": 389.062639,
}
DOC_SUBSCRIPTION = {
    "T": "subscription",
    "trades": ["AAPL"],
    "quotes": ["AMD", "CLDR"],
    "bars": ["*"],
    "updatedBars": [],
    "dailyBars": ["VOO"],
    "statuses": ["*"],
    "lulds": [],
    "corrections": ["AAPL"],
    "cancelErrors": ["AAPL"],
}
NOW = 1_700_000_000 * 10**9
U = Universe.default()


def session(tokens: tuple[str, ...] = (), msgpack_: bool = False, **kw: Any) -> AlpacaSession:
    headers = {"Content-Type": "application/msgpack"} if msgpack_ else {}
    return AlpacaSession("iex", headers, U, tokens, NOW, **kw)


def texts(frames: list[Frame]) -> list[Any]:
    return [msgpack.unpackb(f.data) if f.binary else orjson.loads(f.data) for f in frames]


def send(s: AlpacaSession, msg: Any, now: int = NOW) -> list[Any]:
    return texts(s.receive(orjson.dumps(msg).decode(), now).frames)


def authed(**kw: Any) -> AlpacaSession:
    s = session(**kw)
    s.opened(NOW)
    send(s, {"action": "auth", "key": "k", "secret": "s"})
    return s


def test_core_imports_no_trio() -> None:
    code = "import sys, tickwire.feed.venues; assert 'trio' not in sys.modules, 'trio imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_connect_auth_subscribe_flow() -> None:
    s = session()
    assert texts(s.opened(NOW).frames) == [[{"T": "success", "msg": "connected"}]]
    assert send(s, {"action": "subscribe", "trades": ["AAPL"]}) == [
        [{"T": "error", "code": 401, "msg": "not authenticated"}]
    ]
    assert send(s, {"action": "auth", "key": "k", "secret": "s"}) == [
        [{"T": "success", "msg": "authenticated"}]
    ]
    assert send(s, {"action": "auth", "key": "k", "secret": "s"}) == [
        [{"T": "error", "code": 403, "msg": "already authenticated"}]
    ]
    reply = s.receive(
        orjson.dumps({"action": "subscribe", "trades": ["AAPL"], "quotes": ["AMD", "CLDR"]}), NOW
    )
    [[sub]] = texts(reply.frames)
    assert_shape(sub, DOC_SUBSCRIPTION)
    assert sub["trades"] == ["AAPL"] and sub["quotes"] == ["AMD", "CLDR"]
    assert sub["corrections"] == sub["cancelErrors"] == ["AAPL"]  # follow trades, as at Alpaca
    assert reply.symbols == {U.index("AAPL"), U.index("AMD")}  # CLDR: no such symbol, silent
    [[sub]] = send(s, {"action": "unsubscribe", "quotes": ["AMD"]})
    assert sub["quotes"] == ["CLDR"]


def test_tokens_checked_as_key_or_secret() -> None:
    for key, secret, ok in [("tok", "x", True), ("x", "tok", True), ("x", "y", False)]:
        s = session(tokens=("other", "tok"))
        [[answer]] = send(s, {"action": "auth", "key": key, "secret": secret})
        assert (answer == {"T": "success", "msg": "authenticated"}) is ok
        if not ok:
            assert answer == {"T": "error", "code": 402, "msg": "auth failed"}


def test_header_auth() -> None:
    headers = {"APCA-API-KEY-ID": "tok", "APCA-API-SECRET-KEY": "x"}
    s = AlpacaSession("sip", headers, U, ("tok",), NOW)
    assert texts(s.opened(NOW).frames) == [
        [{"T": "success", "msg": "connected"}],
        [{"T": "success", "msg": "authenticated"}],
    ]
    assert s.next_deadline() is None


def test_auth_timeout_slow_client_and_codes() -> None:
    s = session()
    s.opened(NOW)
    deadline = s.next_deadline()
    assert deadline is not None and s.timeout(deadline - 1).frames == []
    reply = s.timeout(deadline)
    assert texts(reply.frames) == [[{"T": "error", "code": 404, "msg": "auth timeout"}]]
    assert reply.close is not None and reply.close.code == 1008
    slow = authed().overflow()
    assert texts(slow.frames) == [[{"T": "error", "code": 407, "msg": "slow client"}]]
    assert slow.close is not None
    s = authed(symbol_limit=2)
    assert send(s, {"action": "subscribe", "trades": ["AAPL", "MSFT", "NVDA"]}) == [
        [{"T": "error", "code": 405, "msg": "symbol limit exceeded"}]
    ]
    assert send(s, {"action": "subscribe", "orderbooks": ["AAPL"]}) == [
        [{"T": "error", "code": 410, "msg": "invalid subscribe action for this feed"}]
    ]
    assert send(s, {"action": "subscribe", "trades": "AAPL"})[0][0]["code"] == 400
    assert send(s, {"action": "listen"})[0][0]["code"] == 400
    assert texts(s.receive("{not json", NOW).frames)[0][0]["code"] == 400


def test_unknown_feed_refused() -> None:
    factory = route("/alpaca/v2/crypto")
    assert factory is not None
    try:
        factory(Upgrade("/alpaca/v2/crypto", "", {}, U, (), NOW))
    except HandshakeRefused as exc:
        assert exc.status == 404
    else:
        raise AssertionError("an unknown feed must be refused")


def test_golden_messages_from_a_real_market() -> None:
    u, batches = market_batches()
    enc, s = AlpacaEncoder(u), authed()
    send(s, {"action": "subscribe", "trades": ["*"], "quotes": ["AAPL"], "bars": ["*"]})
    seen: dict[str, list[Any]] = {"t": [], "q": [], "b": []}
    for batch, now in batches:
        for frame in s.deliver(enc.encode(batch, now)):
            assert not frame.binary
            for m in orjson.loads(frame.data):
                seen[m["T"]].append(m)
    assert_shape(seen["t"][0], DOC_TRADE)
    assert_shape(seen["q"][0], DOC_QUOTE)
    assert_shape(seen["b"][0], DOC_BAR)
    assert {m["S"] for m in seen["q"]} == {"AAPL"}
    assert len({m["S"] for m in seen["t"]}) > 10  # "*": every symbol
    for sym in {m["S"] for m in seen["t"]}:
        ids = [m["i"] for m in seen["t"] if m["S"] == sym]
        assert ids == trade_seqs(u, batches, sym)  # a trade's id is its record's seq
    assert all(q["bp"] < q["ap"] for q in seen["q"])


def test_bars_are_built_from_the_trades() -> None:
    t0 = NOW - NOW % (60 * 10**9)
    rows = [
        {"ts": t0 + 1, "seq": 1, "flags": TRADE_BUY, "last": 10.0, "last_size": 100, "volume": 100},
        {"ts": t0 + 2, "seq": 2, "flags": TRADE_SELL, "last": 9.5, "last_size": 300, "volume": 400},
        {"ts": t0 + 3, "seq": 3, "flags": 0},
        {"ts": t0 + 4, "seq": 4, "flags": TRADE_BUY, "last": 11.0, "last_size": 100, "volume": 500},
    ]
    enc, s = AlpacaEncoder(U), authed()
    send(s, {"action": "subscribe", "bars": ["AAPL"]})
    assert s.deliver(enc.encode(records(*rows), t0 + 59 * 10**9)) == []  # the minute is open
    [frame] = s.deliver(enc.encode(records(), t0 + 60 * 10**9))
    [bar] = orjson.loads(frame.data)
    assert bar == {
        "T": "b",
        "S": "AAPL",
        "o": 10.0,
        "h": 11.0,
        "l": 9.5,
        "c": 11.0,
        "v": 500,
        "t": _rfc(t0),
        "n": 3,
        "vw": round((1000 + 2850 + 1100) / 500, 6),
    }


def _rfc(ns: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 10**9))


def test_msgpack_framing_and_timestamps() -> None:
    u, batches = market_batches(seconds=3)
    enc, s = AlpacaEncoder(u), authed(msgpack_=True)
    reply = s.receive(msgpack.packb({"action": "subscribe", "trades": ["AAPL"]}), NOW)
    assert reply.frames[0].binary
    msgs = []
    for batch, now in batches:
        for frame in s.deliver(enc.encode(batch, now)):
            assert frame.binary
            msgs += msgpack.unpackb(frame.data)
    assert msgs and all(m["T"] == "t" for m in msgs)
    assert all(isinstance(m["t"], msgpack.Timestamp) for m in msgs)  # what alpaca-py decodes


def test_one_encoding_shared_by_sessions() -> None:
    u, batches = market_batches(seconds=2)
    enc = AlpacaEncoder(u)
    a, b = authed(), authed()
    for s in (a, b):
        send(s, {"action": "subscribe", "trades": ["AAPL"]})
    shared = enc.encode(*batches[0])
    fa, fb = a.deliver(shared), b.deliver(shared)
    assert fa and fa is fb  # same subscription: the same frames, built once
    entry = next(e for e in shared.select(None, lambda s, c: c == "trades"))
    assert shared.encoded(entry, "json") is shared.encoded(entry, "json")


requestish = st.one_of(
    st.text(max_size=50),
    st.binary(max_size=50),
    st.dictionaries(
        st.sampled_from(["action", "key", "secret", "trades", "quotes", "bars", "news", "x"]),
        st.one_of(
            st.sampled_from(["auth", "subscribe", "unsubscribe", "*", "AAPL"]),
            st.lists(st.one_of(st.text(max_size=40), st.integers(), st.none()), max_size=4),
            st.integers(),
            st.none(),
            st.floats(),
        ),
    ).map(json.dumps),
)
# json.dumps writes NaN and huge integers, which JSON parsers refuse: bad input too.


def _as_msgpack(message: str | bytes) -> str | bytes:
    if isinstance(message, str) and message.startswith("{"):
        try:
            return bytes(msgpack.packb(json.loads(message)))
        except (OverflowError, ValueError):  # not JSON, or an integer MessagePack cannot hold
            return message
    return message


@settings(deadline=None, max_examples=300)
@given(st.lists(requestish, max_size=5), st.booleans())
def test_any_input_gets_alpaca_replies_only(messages: list[str | bytes], binary: bool) -> None:
    s = session(msgpack_=binary)
    s.opened(NOW)
    if binary:  # the same requests as MessagePack, as the SDK sends them
        messages = [_as_msgpack(m) for m in messages]
    for m in messages:
        reply = s.receive(m, NOW)
        for frame in reply.frames:
            [answer] = msgpack.unpackb(frame.data) if frame.binary else orjson.loads(frame.data)
            assert answer["T"] in ("success", "subscription", "error")
            if answer["T"] == "error":
                assert answer["code"] in (400, 401, 402, 403, 405, 410)


# ----------------------------------------------------------------------------- 406


def auth(s: AlpacaSession, key: str = "k") -> tuple[list[Any], Close | None]:
    reply = s.receive(orjson.dumps({"action": "auth", "key": key, "secret": "s"}), NOW)
    return texts(reply.frames), reply.close


def test_connection_limit_per_key_and_feed() -> None:
    """As at Alpaca: one authenticated connection per key and feed; the `auth` of a second gets
    406, then the server closes. Other keys and other feeds count apart; `closed()` frees."""
    keys = KeyLimit(1)
    first = session(keys=keys)
    assert auth(first) == ([[{"T": "success", "msg": "authenticated"}]], None)
    second = session(keys=keys)
    second.opened(NOW)
    frames, close = auth(second)
    assert frames == [[{"T": "error", "code": 406, "msg": "connection limit exceeded"}]]
    assert close == Close(1008, "connection limit exceeded")
    assert not second.authenticated
    second.closed()  # it never held a slot: nothing to give back
    assert auth(session(keys=keys), key="other")[1] is None
    assert auth(AlpacaSession("sip", {}, U, (), NOW, keys=keys))[1] is None
    assert auth(session(keys=keys, tokens=("s",)), key="x")[0][0][0]["msg"] == "authenticated"
    assert keys.counts == {("iex", "k"): 1, ("iex", "other"): 1, ("sip", "k"): 1, ("iex", "x"): 1}
    first.closed()
    first.closed()  # however many times the connection layer says so, one release
    assert ("iex", "k") not in keys.counts
    assert auth(session(keys=keys))[1] is None  # the key is free again


def test_wrong_credentials_are_402_before_the_limit() -> None:
    keys = KeyLimit(1)
    auth(session(keys=keys, tokens=("s",)))
    frames, close = auth(session(keys=keys, tokens=("tok",)), key="k")
    assert frames == [[{"T": "error", "code": 402, "msg": "auth failed"}]] and close is None


def test_connection_limit_with_header_auth_and_raised_limits() -> None:
    keys = KeyLimit(1)
    headers = {"APCA-API-KEY-ID": "k", "APCA-API-SECRET-KEY": "s"}
    assert AlpacaSession("iex", headers, U, (), NOW, keys=keys).opened(NOW).close is None
    reply = AlpacaSession("iex", headers, U, (), NOW, keys=keys).opened(NOW)
    assert texts(reply.frames) == [
        [{"T": "success", "msg": "connected"}],
        [{"T": "error", "code": 406, "msg": "connection limit exceeded"}],
    ]
    assert reply.close is not None
    many = KeyLimit(3)  # --alpaca-connections-per-key 3
    closes = [auth(session(keys=many))[1] for _ in range(4)]
    assert closes == [None, None, None, Close(1008, "connection limit exceeded")]
    unlimited = KeyLimit(0)
    assert all(auth(session(keys=unlimited))[1] is None for _ in range(50))
    assert unlimited.counts[("iex", "k")] == 50
    with pytest.raises(ValueError, match="per_key"):
        KeyLimit(-1)


def test_an_empty_key_never_authenticates() -> None:
    for tokens in (("", "tok"), ("tok",)):
        for key, secret in [("", ""), ("", "x"), ("x", "")]:
            s = session(tokens=tokens)
            [[answer]] = send(s, {"action": "auth", "key": key, "secret": secret})
            assert answer == {"T": "error", "code": 402, "msg": "auth failed"}, (tokens, key)
