"""Binance spot market streams over the simulated market: `/binance/ws`, `/binance/ws/<streams>`
and `/binance/stream?streams=a/b`.

`BinanceEncoder` turns each batch into `<symbol>@bookTicker`, `@trade`, `@aggTrade`, `@kline_1m`
(an update at most every 2 s of event time and the closed kline when the minute ends) and
`@miniTicker` (at most once per second of event time) payloads, decimals as strings, times in ms,
encoded once and shared. `BinanceSession` is one connection: SUBSCRIBE / UNSUBSCRIBE /
LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY with ids, raw or combined (`{"stream","data"}`)
payloads, and Binance's limits (5 incoming messages a second, 1024 streams). Sans-IO.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson

from tickwire.simulators.ticks import TickBatch, TickFlag
from tickwire.simulators.universe import Universe

from ._common import (
    NS_PER_MIN,
    NS_PER_MS,
    NS_PER_S,
    Close,
    Entry,
    Frame,
    HandshakeRefused,
    MessageRate,
    Reply,
    Shared,
    binance_name,
    binance_names,
    describe,
)
from ._sizes import BINANCE_PLACES, Sizes
from ._tape import Bar, Tape

STREAM_TYPES = ("bookTicker", "trade", "aggTrade", "kline_1m", "miniTicker")
MAX_STREAMS = 1024
MAX_MESSAGES_PER_S = 5
# Streams named per second, on top: a SUBSCRIBE of 1024 streams costs 1024 of them, so requests
# within the message limit cannot keep the server busy re-indexing (Binance's limit is on
# messages; legitimate use, one subscribe of all 1024 streams a second, stays under it).
MAX_STREAMS_PER_S = 2 * MAX_STREAMS
KLINE_EVERY_NS = 2 * NS_PER_S  # Binance pushes kline_1m updates every 2000 ms
MINI_EVERY_NS = NS_PER_S  # and the mini ticker every 1000 ms
LIFETIME_NS = 24 * 3600 * NS_PER_S  # a connection is only valid for 24 hours
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_STREAM = re.compile(r"^([a-z0-9]{1,32})@([A-Za-z0-9_]{1,20})$")
_TRADE, _SELL, _OPEN = int(TickFlag.TRADE), int(TickFlag.SELL), int(TickFlag.OPEN)
_MAX_ID = 2**64 - 1


def px(value: float) -> str:
    return f"{value:.8f}"


class BinanceEncoder:
    """Every batch's Binance payloads, built once for all Binance sessions."""

    venue = "binance"

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self._names = [binance_name(s) for s in universe.symbols]
        self._streams = [n.lower() for n in self._names]
        n = len(universe)
        self._tape = Tape(n)
        self._sizes = Sizes(universe)
        self._qtys = self._sizes.formats(BINANCE_PLACES)  # per symbol: units -> Binance quantity
        self._book: list[tuple[float, float, int, int] | None] = [None] * n
        self._next_kline = [0] * n
        self._next_mini = [0] * n
        self._codecs = {"raw": self._raw, "combined": self._combined}

    def _raw(self, shared: Shared, entry: Entry) -> bytes:
        return orjson.dumps(self._payload(entry))

    def _combined(self, shared: Shared, entry: Entry) -> bytes:
        stream = f"{self._streams[entry.message[0]]}@{entry.channel}"
        return b'{"stream":"%s","data":%s}' % (stream.encode(), shared.encoded(entry, "raw"))

    def _payload(self, entry: Entry) -> dict[str, Any]:
        """The Binance payload of an entry, built when a session first wants it."""
        kind, m = entry.channel, entry.message
        sym = m[0]
        name = self._names[sym]
        qty = self._qtys[sym]
        if kind == "bookTicker":
            _, seq, bid, bs, ask, asz = m
            return {
                "u": seq,
                "s": name,
                "b": px(bid),
                "B": qty(bs),
                "a": px(ask),
                "A": qty(asz),
            }
        if kind in ("trade", "aggTrade"):
            _, tid, price, size, ms, maker = m
            if kind == "trade":
                return {
                    "e": "trade",
                    "E": ms,
                    "s": name,
                    "t": tid,
                    "p": px(price),
                    "q": qty(size),
                    "T": ms,
                    "m": maker,
                    "M": True,
                }
            return {
                "e": "aggTrade",
                "E": ms,
                "s": name,
                "a": tid,
                "p": px(price),
                "q": qty(size),
                "f": tid,
                "l": tid,
                "T": ms,
                "m": maker,
                "M": True,
            }
        if kind == "kline_1m":
            return self._kline(*m)
        return self._mini(*m)

    def encode(self, batch: TickBatch, now_ns: int) -> Shared:
        """Binance payloads for `batch` (event order), then klines of minutes ended by `now_ns`.

        Only the running state is updated here; payloads are built when first asked for.
        """
        out = Shared(now_ns, self._codecs)
        tape, book, push = self._tape, self._book, out.items.append
        for ts, seq, bid, ask, last, vol, sym, fl, bs, asz, ls in batch.tolist():
            if ts >= tape.minute_ns + NS_PER_MIN:
                self._closed(out, tape.advance(ts), ts)
            tape.seen(sym, last, vol, ls if fl & _TRADE else 0, bool(fl & _OPEN))
            if fl & _TRADE:
                ms = ts // NS_PER_MS
                tape.trade(sym, ts, last, ls, not fl & _SELL, seq)  # the trade id: its seq
                trade = (sym, seq, last, ls, ms, bool(fl & _SELL))  # m: the buyer was the maker
                push((sym, "trade", trade))
                push((sym, "aggTrade", trade))
                if ts >= self._next_kline[sym]:
                    self._next_kline[sym] = ts + KLINE_EVERY_NS
                    bar = tape.bars[sym]
                    push((sym, "kline_1m", (sym, replace(bar), ms, False)))  # a copy: bars move on
                if ts >= self._next_mini[sym]:
                    self._next_mini[sym] = ts + MINI_EVERY_NS
                    stats = (tape.open[sym], tape.high[sym], tape.low[sym])
                    push((sym, "miniTicker", (sym, ms, last, tape.volume_24h(sym, vol), *stats)))
            quote = (bid, ask, bs, asz)
            if book[sym] != quote:
                book[sym] = quote
                push((sym, "bookTicker", (sym, seq, bid, bs, ask, asz)))
        self._closed(out, tape.advance(now_ns), now_ns)
        return out

    def current(self, record: Any, channel: str) -> bytes | None:
        """Binance sends nothing at subscribe: a stream starts with its next event."""
        return None

    def _closed(self, out: Shared, bars: list[Bar], now_ns: int) -> None:
        ms = now_ns // NS_PER_MS
        for b in bars:
            self._next_kline[b.sym] = 0  # the next minute's first trade reports at once
            out.add(b.sym, "kline_1m", (b.sym, b, ms, True))

    def _kline(self, sym: int, b: Bar, ms: int, closed: bool) -> dict[str, Any]:
        start = b.start_ns // NS_PER_MS
        name = self._names[sym]
        qty, notional = self._qtys[sym], self._sizes.notional
        k = {
            "t": start,
            "T": start + 59_999,
            "s": name,
            "i": "1m",
            "f": b.first_id,
            "L": b.last_id,
            "o": px(b.open),
            "c": px(b.close),
            "h": px(b.high),
            "l": px(b.low),
            "v": qty(b.volume),
            "n": b.count,
            "x": closed,
            "q": px(notional(sym, b.notional)),
            "V": qty(b.buy_volume),
            "Q": px(notional(sym, b.buy_notional)),
            "B": "0",
        }
        return {"e": "kline", "E": ms, "s": name, "k": k}

    def _mini(
        self, sym: int, ms: int, last: float, volume: int, open_: float, high: float, low: float
    ) -> dict[str, Any]:
        return {
            "e": "24hrMiniTicker",
            "E": ms,
            "s": self._names[sym],
            "c": px(last),
            "o": px(open_),
            "h": px(high),
            "l": px(low),
            "v": self._qtys[sym](volume),
            "q": px(
                self._sizes.notional(sym, volume * last)
            ),  # approximated at the last price: the session keeps no notional
        }


def _error(code: int, msg: str, rid: int | None) -> Frame:
    return Frame(orjson.dumps({"error": {"code": code, "msg": msg}, "id": rid}))


def _result(result: Any, rid: int | None) -> Frame:
    return Frame(orjson.dumps({"result": result, "id": rid}))


class BinanceSession:
    """One Binance stream connection: its streams, raw or combined, and its request budget."""

    venue = "binance"
    binary = False

    def __init__(
        self, path: str, query: dict[str, list[str]], universe: Universe, now_ns: int
    ) -> None:
        self.universe = universe
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
        names = [n for n in names if n]
        bad = [n for n in names if self._parse(n) is None]
        if bad:
            raise HandshakeRefused(400, f"invalid stream name {describe(bad[0])}")
        if len(set(names)) > MAX_STREAMS:
            raise HandshakeRefused(400, f"at most {MAX_STREAMS} streams per connection")
        self._add(names)

    def _parse(self, name: Any) -> tuple[str, str] | None:
        if not isinstance(name, str):
            return None
        m = _STREAM.match(name)
        if m is None or m.group(2) not in STREAM_TYPES:
            return None
        return m.group(1), m.group(2)

    def _add(self, names: Sequence[str]) -> None:
        for n in names:
            self.streams[n] = None
        self._reindex()

    def _reindex(self) -> None:
        wanted: dict[int, set[str]] = {}
        for n in self.streams:
            sym, kind = n.split("@")
            i = self._by_name.get(sym)  # a well-formed name of no symbol: accepted, silent
            if i is not None:
                wanted.setdefault(i, set()).add(kind)
        self._wanted = wanted
        self._syms = set(wanted)
        self._key = frozenset((s, frozenset(k)) for s, k in wanted.items())

    @property
    def symbols(self) -> frozenset[int]:
        return frozenset(self._syms)

    def opened(self, now_ns: int) -> Reply:
        return Reply(symbols=self.symbols)

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
        if method == "SUBSCRIBE":
            if len(set(self.streams) | set(params)) > MAX_STREAMS:
                text = f"Invalid request: at most {MAX_STREAMS} streams per connection"
                return Reply([_error(2, text, rid)])
            self._add(params)
        else:
            for p in params:
                self.streams.pop(p, None)
            self._reindex()
        return Reply([_result(None, rid)], symbols=self.symbols)

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
