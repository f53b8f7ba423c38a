"""Alpaca market data v2 (stocks) over the simulated market: `/alpaca/v2/{iex,sip,test}`.

`AlpacaEncoder` (in `_alpaca_encoder.py`, re-exported here) turns each batch of tick records into
Alpaca trades, quotes and minute bars, a scenario's halts into trading statuses and its LULD
bands into `lulds` messages, encoded once per codec and shared by every Alpaca session. A `lulds`
subscription also gets each newly named symbol's bands as they stand, after its `subscription`.
`AlpacaSession` is one connection's state: `connected`, `auth` (against the server's tokens with
`hmac.compare_digest`), `subscribe`/`unsubscribe`, Alpaca's error objects, and Alpaca's limit of
authenticated connections per key and feed (406; the count is the server's `KeyLimit`, given
back in `closed()`). Against key guessing, a connection is closed after `MAX_AUTH_FAILURES`
failed auths, and an address with many failures (the server's `AuthFailures`) waits before
its next auth is answered (the session holds it until `next_deadline`). Sans-IO: no trio, no
sockets, no clock of its own.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from typing import Any

import msgpack
import orjson

from tickwire.simulators.universe import Universe

from ._alpaca_encoder import EXCHANGE as EXCHANGE
from ._alpaca_encoder import AlpacaEncoder as AlpacaEncoder
from ._authguard import AuthFailures
from ._common import (
    NS_PER_S,
    Close,
    Frame,
    HandshakeRefused,
    KeyLimit,
    MessageRate,
    Reply,
    Shared,
)

FEEDS = ("iex", "sip", "test")
AUTH_TIMEOUT_NS = 10 * NS_PER_S
MAX_AUTH_FAILURES = 3  # failed auths on one connection: the last is answered 402, then closed
# Alpaca documents no message rate for its stream; tickwire allows 10 a second (an SDK sends
# auth and a subscribe or two), then closes with 1008, as Binance does past its 5.
MAX_MESSAGES_PER_S = 10
# Symbols named per second: a subscribe of 5000 symbols costs 5000, so subscribe storms within
# the message limit cannot keep the server busy ("*" costs one).
MAX_SYMBOLS_PER_S = 5000
# statuses: a scenario's halts; lulds: its LULD bands
DATA_CHANNELS = ("trades", "quotes", "bars", "statuses", "lulds")
# Stock channels a client may name; the simulated market never produces their events, so a
# subscription to them is acknowledged and stays silent. corrections/cancelErrors follow trades.
SILENT_CHANNELS = ("updatedBars", "dailyBars")
MIRRORED = ("corrections", "cancelErrors")
ALL_CHANNELS = DATA_CHANNELS + SILENT_CHANNELS + MIRRORED
OTHER_FEED_CHANNELS = ("orderbooks", "news")  # exist on other Alpaca feeds: code 410 here
_CODE_MSG = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    410: "invalid subscribe action for this feed",
}


def error(code: int) -> dict[str, Any]:
    """Alpaca's error object for `code` (400, 401, ... 410), with Alpaca's message."""
    return {"T": "error", "code": code, "msg": _CODE_MSG[code]}


def _frozen(ids: set[int] | None) -> frozenset[int] | None:
    return None if ids is None else frozenset(ids)


def frames_of(items: Sequence[Any], binary: bool) -> Frame:
    """One Alpaca frame: a JSON array or a MessagePack array of `items` (dicts or bytes)."""
    parts = [
        it if isinstance(it, bytes) else (msgpack.packb(it) if binary else orjson.dumps(it))
        for it in items
    ]
    if binary:
        n = len(parts)
        head = (
            bytes([0x90 | n])
            if n < 16
            else (b"\xdc" + n.to_bytes(2, "big") if n < 65536 else b"\xdd" + n.to_bytes(4, "big"))
        )
        return Frame(head + b"".join(parts), True)
    return Frame(b"[" + b",".join(parts) + b"]", False)


class AlpacaSession:
    """One Alpaca connection: authentication, subscriptions, and which messages it receives.
    The class attributes are its feed's paths and channels (`alpaca_crypto` has others)."""

    venue = "alpaca"
    feeds: tuple[str, ...] = FEEDS
    data_channels: tuple[str, ...] = DATA_CHANNELS
    all_channels: tuple[str, ...] = ALL_CHANNELS
    mirrored: tuple[str, ...] = MIRRORED
    other_feed_channels: tuple[str, ...] = OTHER_FEED_CHANNELS

    def __init__(
        self,
        feed: str,
        headers: Mapping[str, str],
        universe: Universe,
        tokens: Sequence[str],
        now_ns: int,
        *,
        symbol_limit: int | None = None,
        keys: KeyLimit | None = None,
        failures: AuthFailures | None = None,
        peer: str = "",
        current: Callable[[str, int, str], bytes | None] | None = None,
        banded: Callable[[], Collection[int]] = tuple,
    ) -> None:
        if feed not in self.feeds:
            raise HandshakeRefused(404, f"unknown Alpaca feed {feed!r}; use one of {self.feeds}")
        lower = {k.lower(): v for k, v in headers.items()}
        self.feed = feed
        self.binary = "msgpack" in lower.get("content-type", "").lower()
        self.universe = universe
        self._tokens = tuple(tokens)
        self._limit = symbol_limit
        self.authenticated = False
        self._deadline: int | None = now_ns + AUTH_TIMEOUT_NS
        self.subs: dict[str, dict[str, None]] = {c: {} for c in self.all_channels}
        self._ids: dict[str, set[int] | None] = {c: set() for c in self.data_channels}  # None: *
        self._symbols: set[int] | None = set()
        self._key: Hashable = ()
        self._keys = keys
        self._held: tuple[str, str] | None = None  # (feed, key) counted in `keys` while open
        key, secret = lower.get("apca-api-key-id"), lower.get("apca-api-secret-key")
        self._header_key = key
        self._messages = MessageRate(MAX_MESSAGES_PER_S)
        self._failures = failures
        self._peer = peer
        self._failed = 0  # failed auths on this connection
        self._held_auth: tuple[Any, int] | None = None  # (auth message, when to answer it)
        self._symbols_named = MessageRate(MAX_SYMBOLS_PER_S)
        self._header_auth = key is not None and secret is not None and self._valid(key, secret)
        self._current = current  # (venue, symbol id, channel) -> its message now: `lulds`
        self._banded = banded  # the symbol ids with LULD bands now

    # ------------------------------------------------------------------ requests

    def opened(self, now_ns: int) -> Reply:
        """Alpaca's welcome; with valid APCA-API-* headers, also `authenticated`."""
        reply = Reply([self._frame({"T": "success", "msg": "connected"})])
        if self._header_key is not None and not self._header_auth:
            self._failed += 1  # wrong APCA-API-* headers: the client may still send `auth`
            if self._failures is not None:
                self._failures.failed(self._peer, now_ns)
        if self._header_auth:
            authenticated = self._authenticate(self._header_key)
            reply.frames += authenticated.frames
            reply.close = authenticated.close
        return reply

    def receive(self, data: str | bytes, now_ns: int) -> Reply:
        """One client message in; Alpaca's answer out. Never raises for what a client sends."""
        if not self._messages.allow(now_ns):
            return Reply(close=Close(1008, "too many requests"))
        msg = self._decode(data)
        if not isinstance(msg, dict) or not isinstance(msg.get("action"), str):
            return self._error(400)
        action = msg["action"]
        if action == "auth":
            if self.authenticated:
                return self._error(403)
            if self._held_auth is not None:  # one auth at a time: a second one is a guess
                return self._auth_failed(now_ns)
            due = now_ns if self._failures is None else self._failures.due(self._peer, now_ns)
            if due > now_ns:  # this address failed often: answer later (`timeout`)
                self._held_auth = (msg, due)
                return Reply()
            return self._auth(msg, now_ns)
        if action in ("subscribe", "unsubscribe"):
            if not self.authenticated:
                return self._error(401)
            named = sum(len(v) for v in msg.values() if isinstance(v, list))
            if not self._symbols_named.allow(now_ns, named):
                return Reply(close=Close(1008, "too many symbols a second"))
            return self._subscribe(msg, action == "subscribe")
        return self._error(400)

    def _auth(self, msg: dict[str, Any], now_ns: int) -> Reply:
        if not self._valid(msg.get("key"), msg.get("secret")):
            return self._auth_failed(now_ns)
        return self._authenticate(msg.get("key"))

    def _auth_failed(self, now_ns: int) -> Reply:
        """402; the connection's `MAX_AUTH_FAILURES`-th also closes it."""
        self._failed += 1
        if self._failures is not None:
            self._failures.failed(self._peer, now_ns)
        reply = self._error(402)
        if self._failed >= MAX_AUTH_FAILURES:
            reply.close = Close(1008, "auth failed")
        return reply

    def _decode(self, data: str | bytes) -> Any:
        try:
            if isinstance(data, bytes) and self.binary:
                return msgpack.unpackb(data, strict_map_key=False)
            return orjson.loads(data)
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            return None

    def _valid(self, key: Any, secret: Any) -> bool:
        """Any credentials pass when the server has no tokens; else `key` or `secret` is one."""
        if not self._tokens:
            return True
        given = [v.encode() for v in (key, secret) if isinstance(v, str) and v]  # "" never
        return any(hmac.compare_digest(g, t.encode()) for g in given for t in self._tokens)

    def _authenticate(self, key: Any) -> Reply:
        """`authenticated`, or Alpaca's 406 and a close when the key is at its connection limit
        on this feed (Alpaca answers the `auth` of a second connection so; SDKs then close)."""
        if self._keys is not None:
            slot = (self.feed, key if isinstance(key, str) else "")
            if not self._keys.acquire(slot):
                return Reply(
                    [self._frame(error(406))], close=Close(1008, "connection limit exceeded")
                )
            self._held = slot
        self.authenticated = True
        self._deadline = None
        return Reply([self._frame({"T": "success", "msg": "authenticated"})])

    def closed(self) -> None:
        """The connection has ended: its key's connection slot is free again."""
        if self._held is not None and self._keys is not None:
            self._keys.release(self._held)
        self._held = None

    def _subscribe(self, msg: dict[str, Any], add: bool) -> Reply:
        wanted: dict[str, list[str]] = {}
        for key, value in msg.items():
            if key == "action":
                continue
            if key in self.other_feed_channels:
                return self._error(410)
            if key not in self.all_channels or key in self.mirrored:
                return self._error(400)
            if not isinstance(value, list) or not all(
                isinstance(s, str) and 0 < len(s) <= 32 for s in value
            ):
                return self._error(400)
            wanted[key] = value
        subs = {c: dict(v) for c, v in self.subs.items()}
        for channel, symbols in wanted.items():
            for s in symbols:
                if add:
                    subs[channel][s] = None
                else:
                    subs[channel].pop(s, None)
        for mirror in self.mirrored:
            subs[mirror] = dict(subs["trades"])
        distinct = {s for c in self.all_channels for s in subs[c] if s != "*"}
        if add and self._limit is not None and len(distinct) > self._limit:
            return self._error(405)
        self.subs = subs
        had = self._ids.get("lulds", set())
        ids = self._resolve()
        reply = Reply([self._frame({"T": "subscription", **{c: list(subs[c]) for c in subs}})])
        reply.symbols = ids
        if add and "lulds" in self._ids:
            reply.frames += self._bands_now(had, self._ids["lulds"])
        return reply

    def _bands_now(self, had: set[int] | None, has: set[int] | None) -> list[Frame]:
        """The `lulds` messages of the symbols in `has` and not in `had` (None: all) that
        have bands now, in one frame (none without)."""
        if self._current is None or had is None:
            return []
        new = sorted(s for s in self._banded() if (has is None or s in has) and s not in had)
        codec = "lulds:msgpack" if self.binary else "lulds:json"
        items = [m for s in new if (m := self._current(self.venue, s, codec)) is not None]
        return [frames_of(items, self.binary)] if items else []

    def _ids_of(self, names: Mapping[str, None]) -> set[int] | None:
        """The symbol ids a channel's names stand for; None: every symbol ("*")."""
        if "*" in names:
            return None
        index = self.universe
        return {index.index(s) for s in names if s in index}

    def _resolve(self) -> frozenset[int]:
        union: set[int] = set()
        wild = False
        for channel in self.data_channels:
            found = self._ids[channel] = self._ids_of(self.subs[channel])
            if found is None:
                wild = True
            else:
                union |= found
        self._symbols = None if wild else union
        ids = self._ids
        self._key = (self.venue, self.binary, *(_frozen(ids[c]) for c in self.data_channels))
        return frozenset(range(len(self.universe))) if wild else frozenset(union)

    def _frame(self, message: dict[str, Any]) -> Frame:
        return frames_of([message], self.binary)

    def _error(self, code: int) -> Reply:
        return Reply([self._frame(error(code))])

    # ------------------------------------------------------------------ data and time

    @property
    def symbols(self) -> frozenset[int]:
        """Symbol ids this session receives data for."""
        if self._symbols is None:
            return frozenset(range(len(self.universe)))
        return frozenset(self._symbols)

    def _wants(self, sym: int, channel: str) -> bool:
        ids = self._ids.get(channel, ())  # a channel it has not (crypto's statuses): nothing
        return ids is None or sym in ids

    def deliver(self, shared: Shared) -> list[Frame]:
        """This session's messages of one encoded batch: one Alpaca array, or nothing."""
        if not self.authenticated or self._symbols == set():
            return []
        return shared.memo(self._key, lambda: self._build(shared))

    def _build(self, shared: Shared) -> list[Frame]:
        codec = "msgpack" if self.binary else "json"
        items = [shared.encoded(e, codec) for e in shared.select(self._symbols, self._wants)]
        return [frames_of(items, self.binary)] if items else []

    def next_deadline(self) -> int | None:
        """When `timeout` must be called (a held auth's answer, the auth deadline), or None."""
        if self._held_auth is not None:
            due = self._held_auth[1]
            return due if self._deadline is None else min(due, self._deadline)
        return self._deadline

    def timeout(self, now_ns: int) -> Reply:
        held = self._held_auth
        if held is not None and now_ns >= held[1]:
            self._held_auth = None
            return self._auth(held[0], now_ns)
        if self._deadline is None or now_ns < self._deadline:
            return Reply()
        self._deadline = None
        return Reply([self._frame(error(404))], close=Close(1008, "auth timeout"))

    def overflow(self) -> Reply:
        """The connection cannot keep up: Alpaca's 407, then close."""
        return Reply([self._frame(error(407))], close=Close(1008, "slow client"))
