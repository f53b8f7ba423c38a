"""Alpaca `lulds` with plain messages (no sockets, no trio): the encoder's `T:l` messages, the
bands as they stand at subscribe, and the crypto stream, which has neither `lulds` nor
`statuses`, matching none of them."""

from __future__ import annotations

from typing import Any

import msgpack
import orjson

from tickwire.feed.venues import Upgrade, route
from tickwire.feed.venues.alpaca import AlpacaEncoder, AlpacaSession
from tickwire.feed.venues.alpaca_crypto import AlpacaCryptoEncoder, AlpacaCryptoSession
from tickwire.simulators.universe import Universe

U = Universe.default()
AAPL, MSFT = U.index("AAPL"), U.index("MSFT")
TS = 1_700_000_000 * 10**9 + 5


def _said(frames: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in frames:
        out += msgpack.unpackb(f.data) if f.binary else orjson.loads(f.data)
    return out


def _session(binary: bool, current: Any, banded: Any = tuple) -> AlpacaSession:
    headers = {"Content-Type": "application/msgpack"} if binary else {}
    s = AlpacaSession("sip", headers, U, (), 0, current=current, banded=banded)
    s.opened(0)
    auth = {"action": "auth", "key": "k", "secret": "s"}
    s.receive(msgpack.packb(auth) if binary else orjson.dumps(auth), 1)
    return s


def test_band_changes_are_t_l_messages_and_a_clear_is_none() -> None:
    enc = AlpacaEncoder(U)
    shared = enc.encode_bands(
        [(TS, AAPL, (199.04, 180.09, ord("A"))), (TS + 1, MSFT, (float("nan"),) * 2 + (0,))],
        TS,
    )
    s = _session(False, None)
    s.receive('{"action":"subscribe","lulds":["*"]}', 2)
    got = _said(s.deliver(shared))
    assert got == [
        {
            "T": "l",
            "S": "AAPL",
            "u": 199.04,
            "d": 180.09,
            "i": "A",
            "t": "2023-11-14T22:13:20.000000005Z",
            "z": "C",
        }
    ]
    quiet = _session(False, None)
    quiet.receive('{"action":"subscribe","trades":["AAPL"],"statuses":["AAPL"]}', 2)
    assert quiet.deliver(shared) == []  # not subscribed to lulds: nothing


def test_subscribe_sends_the_bands_as_they_stand_of_the_symbols_it_adds() -> None:
    enc = AlpacaEncoder(U)
    bands = {AAPL: ((199.04, 180.09, ord("B")), TS)}
    asked: list[tuple[str, int, str]] = []

    def current(venue: str, sym: int, channel: str) -> bytes | None:
        asked.append((venue, sym, channel))
        band = bands.get(sym)
        return None if band is None else enc.current_band(sym, band, channel.split(":")[1])

    for binary in (False, True):
        s, asked[:] = _session(binary, current, bands.keys), []
        sub = {"action": "subscribe", "lulds": ["AAPL", "MSFT"]}
        reply = s.receive(msgpack.packb(sub) if binary else orjson.dumps(sub), 2)
        said = _said(reply.frames)
        assert [m["T"] for m in said] == ["subscription", "l"]
        assert said[1]["S"] == "AAPL" and (said[1]["u"], said[1]["i"]) == (199.04, "B")
        assert isinstance(said[1]["t"], msgpack.Timestamp if binary else str)
        codec = "lulds:msgpack" if binary else "lulds:json"
        assert asked == [("alpaca", AAPL, codec)]  # only the symbols with bands are asked
        again = s.receive(msgpack.packb(sub) if binary else orjson.dumps(sub), 3)
        assert [m["T"] for m in _said(again.frames)] == ["subscription"]  # nothing new
    star = _session(False, current, bands.keys)
    asked[:] = []
    said = _said(star.receive('{"action":"subscribe","lulds":["*"]}', 2).frames)
    assert [m["T"] for m in said] == ["subscription", "l"] and len(asked) == 1


def test_crypto_sessions_match_no_status_nor_band() -> None:
    crypto = Universe.crypto_pairs()
    enc = AlpacaCryptoEncoder(crypto)
    shared = enc.encode_statuses([(TS, 0, 1, 1)], TS)
    bands = enc.encode_bands([(TS, 0, (2.0, 1.0, ord("A")))], TS)
    path = "/alpaca/v1beta3/crypto/us"
    factory = route(path)
    assert factory is not None
    s = factory(Upgrade(path, "", {}, crypto, (), 0))
    assert isinstance(s, AlpacaCryptoSession)
    s.opened(0)
    s.receive('{"action":"auth","key":"k","secret":"s"}', 1)
    s.receive('{"action":"subscribe","trades":["*"],"quotes":["*"],"bars":["*"]}', 2)
    assert s.deliver(shared) == [] and s.deliver(bands) == []
