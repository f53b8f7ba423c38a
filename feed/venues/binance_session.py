"""One Binance stream connection, sans-IO: SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS /
SET_PROPERTY / GET_PROPERTY with ids, raw or combined (`{"stream","data"}`) payloads, Binance's
limits (5 incoming messages a second, 1024 streams), and the books its depth streams need
(`Reply.books`, at the server's depth; refused in Binance's error shape when the server keeps
none). The payloads are the encoder's (`binance.py`), shared by every session.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from tickwire.simulators.universe import Universe

from ._common import (
    NS_PER_S,
    Close,
    Frame,
    HandshakeRefused,
    MessageRate,
    Reply,
    Shared,
    binance_names,
    describe,
)
from .binance_depth import DEPTH_CHANNELS, PARTIAL_CHANNELS, partial_depth
from .books import BOOKS_OFF, too_deep

TICK_TYPES = ("bookTicker", "trade", "aggTrade", "kline_1m", "miniTicker", "ticker", "avgPrice")
MAX_STREAMS = 1024
MAX_MESSAGES_PER_S = 5
# Streams named per second, on top: a SUBSCRIBE of 1024 streams costs 1024 of them, so requests
# within the message limit cannot keep the server busy re-indexing (Binance's limit is on
# messages; legitimate use, one subscribe of all 1024 streams a second, stays under it).
MAX_STREAMS_PER_S = 2 * MAX_STREAMS
LIFETIME_NS = 24 * 3600 * NS_PER_S  # a connection is only valid for 24 hours
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_STREAM = re.compile(r"^([a-z0-9]{1,32})@([A-Za-z0-9_]{1,20}(?:@100ms)?)$")
_MAX_ID = 2**64 - 1
STREAM_TYPES = TICK_TYPES + DEPTH_CHANNELS


def _error(code: int, msg: str, rid: int | None) -> Frame:
    return Frame(orjson.dumps({"error": {"code": code, "msg": msg}, "id": rid}))


def _result(result: Any, rid: int | None) -> Frame:
    return Frame(orjson.dumps({"result": result, "id": rid}))


class BinanceSession:
    """One Binance stream connection: its streams, raw or combined, and its request budget."""

    venue = "binance"
    binary = False

    def __init__(
        self,
        path: str,
        query: dict[str, list[str]],
        universe: Universe,
        now_ns: int,
        book_depth: int = 0,
    ) -> None:
        self.universe = universe
        self.book_depth = book_depth  # the server's (0: no books, no depth streams)
        self._books: dict[int, int] = {}  # symbol id -> depth booked (the server's)
        self._by_name = binance_names(universe)
        self.streams: dict[str, None] = {}  # subscription order, as LIST_SUBSCRIPTIONS shows it
        self._wanted: dict[int, set[str]] = {}  # symbol id -> stream types
        self._messages = MessageRate(MAX_MESSAGES_PER_S)
        self._streams_named = MessageRate(MAX_STREAMS_PER_S)
        self._expires = now_ns + LIFETIME_NS
        rest = path.removeprefix("/binance")
        if rest == "/stream" or rest == "/stream/":
            self.combined = True
            names = "/".join(query.get("streams", [])).split("/")
        elif rest == "/ws" or rest.startswith("/ws/"):
            self.combined = False
            names = rest[len("/ws/") :].split("/")
        else:
            raise HandshakeRefused(
                404, f"unknown Binance path {path!r}; use /binance/ws or /stream"
            )
        # A path segment without "@" names no stream: Binance opens the connection without
        # one (ccxt connects to `/ws/0`, `/ws/1`, ... and subscribes there).
        names = [n for n in names if "@" in n]
        bad = [n for n in names if self._parse(n) is None]
        if bad:
            raise HandshakeRefused(400, f"invalid stream name {describe(bad[0])}")
        if len(set(names)) > MAX_STREAMS:
            raise HandshakeRefused(400, f"at most {MAX_STREAMS} streams per connection")
        if (refused := self._no_book(names)) is not None:
            raise HandshakeRefused(400, refused)
        self._add(names)

    def _parse(self, name: Any) -> tuple[str, str] | None:
        if not isinstance(name, str):
            return None
        m = _STREAM.match(name)
        if m is None or m.group(2) not in STREAM_TYPES:
            return None
        return m.group(1), m.group(2)

    def _no_book(self, names: Sequence[str]) -> str | None:
        """Why these streams cannot be served by this server's books (None: they can)."""
        for n in names:
            kind = n.split("@", 1)[1]
            if kind not in DEPTH_CHANNELS:
                continue
            if not self.book_depth:
                return f"{n}: {BOOKS_OFF}"
            if kind in PARTIAL_CHANNELS and partial_depth(kind) > self.book_depth:
                return f"{n}: {too_deep(partial_depth(kind), self.book_depth)}"
        return None

    def _add(self, names: Sequence[str]) -> None:
        for n in names:
            self.streams[n] = None
        self._reindex()

    def _reindex(self) -> None:
        wanted: dict[int, set[str]] = {}
        for n in self.streams:
            sym, kind = n.split("@", 1)
            i = self._by_name.get(sym)  # a well-formed name of no symbol: accepted, silent
            if i is not None:
                wanted.setdefault(i, set()).add(kind)
        self._wanted = wanted
        self._syms = set(wanted)
        self._key = frozenset((s, frozenset(k)) for s, k in wanted.items())
        depth = self.book_depth
        self._books = {s: depth for s, k in wanted.items() if not k.isdisjoint(DEPTH_CHANNELS)}

    @property
    def symbols(self) -> frozenset[int]:
        return frozenset(self._syms)

    def opened(self, now_ns: int) -> Reply:
        return Reply(symbols=self.symbols, books=dict(self._books) if self._books else None)

    def receive(self, data: str | bytes, now_ns: int) -> Reply:
        """One client message in; Binance's answer out. Never raises for what a client sends."""
        if not self._messages.allow(now_ns):
            return Reply(close=Close(1008, "Too many requests"))
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return Reply([_error(3, f"Invalid JSON: {exc}", None)])
        if not isinstance(msg, dict):
            return Reply([_error(2, "Invalid request: expected a JSON object", None)])
        rid = msg.get("id")
        if rid is not None and (
            not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid <= _MAX_ID
        ):
            return Reply(
                [_error(2, "Invalid request: request ID must be an unsigned integer", None)]
            )
        method = msg.get("method")
        if method is None:
            return Reply([_error(2, "Invalid request: missing field `method`", rid)])
        if method not in METHODS:
            allowed = ", ".join(f"`{m}`" for m in METHODS)
            text = f"Invalid request: unknown variant {describe(method)}, expected one of {allowed}"
            return Reply([_error(2, text, rid)])
        params = msg.get("params", [])
        if not isinstance(params, list):
            return Reply([_error(2, "Invalid request: params must be an array", rid)])
        if method == "LIST_SUBSCRIPTIONS":
            return Reply([_result(list(self.streams), rid)])
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return self._property(method, params, rid)
        if not self._streams_named.allow(now_ns, len(params)):
            return Reply(close=Close(1008, "Too many requests"))
        if any(self._parse(p) is None for p in params):
            return Reply([_error(2, "Invalid request: invalid stream", rid)])
        books = self._books
        if method == "SUBSCRIBE":
            if len(set(self.streams) | set(params)) > MAX_STREAMS:
                text = f"Invalid request: at most {MAX_STREAMS} streams per connection"
                return Reply([_error(2, text, rid)])
            if (refused := self._no_book(params)) is not None:
                return Reply([_error(2, f"Invalid request: {refused}", rid)])
            self._add(params)
        else:
            for p in params:
                self.streams.pop(p, None)
            self._reindex()
        changed = dict(self._books) if self._books != books else None
        return Reply([_result(None, rid)], symbols=self.symbols, books=changed)

    def _property(self, method: str, params: list[Any], rid: int | None) -> Reply:
        if not params or params[0] != "combined":
            return Reply([_error(0, "Unknown property", rid)])
        if method == "GET_PROPERTY":
            return Reply([_result(self.combined, rid)])
        if len(params) != 2 or not isinstance(params[1], bool):
            return Reply([_error(1, "Invalid value type: expected Boolean", rid)])
        self.combined = params[1]
        return Reply([_result(None, rid)])

    def _wants(self, sym: int, channel: str) -> bool:
        return channel in self._wanted[sym]

    def deliver(self, shared: Shared) -> list[Frame]:
        """One frame per payload of this session's streams, in event order."""
        if not self._syms:
            return []
        return shared.memo((self.combined, self._key), lambda: self._build(shared))

    def _build(self, shared: Shared) -> list[Frame]:
        codec = "combined" if self.combined else "raw"
        return [Frame(shared.encoded(e, codec)) for e in shared.select(self._syms, self._wants)]

    def next_deadline(self) -> int | None:
        """The end of the connection's 24 hours."""
        return self._expires

    def timeout(self, now_ns: int) -> Reply:
        if now_ns < self._expires:
            return Reply()
        return Reply(close=Close(1000, "24 hour connection limit"))

    def overflow(self) -> Reply:
        """Binance drops a connection that cannot keep up."""
        return Reply(close=Close(1008, "slow reader"))

    def closed(self) -> None:
        """Nothing shared to give back."""
