"""Kraken's WebSocket API v2 over the simulated market: `/kraken/v2`.

`KrakenSession` is one connection: the `status` message on connect, then requests
`{"method", "params", "req_id"}` answered as Kraken answers them: `subscribe`/`unsubscribe`
(one acknowledgement per symbol: `{"method", "result": {channel, symbol, ...}, "success": true,
"time_in", "time_out", "req_id"}`, or `{"error", "success": false, "symbol", ...}`), `ping`
(`pong`), and the `heartbeat` channel, once a second without other messages while subscribed.
Data is `{"channel", "type": "snapshot"|"update", "data": [...]}` (`kraken_encoder.py`):
`ticker` (a snapshot at subscribe unless `snapshot: false`; updates on trades, or on best bid
and offer changes with `event_trigger: bbo`) and `trade` (a snapshot of the last trade with
`snapshot: true`) and `book` (`depth` 10, 25, 100, 500 or 1000 levels a side, a snapshot then
updates, each with Kraken's CRC32 `checksum`: `kraken_book.py`; on a server with books, else
an error saying how to start one). Symbols are `BASE/QUOTE` (`BTC/USD`, `AAPL/USD`).

The channels are a table (`CHANNELS`): each names the parameters it takes and picks the
encoder's entries a subscription receives. Sans-IO: no trio, no sockets, no clock of
its own (times come in as `now_ns`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tickwire.simulators.universe import Universe

from ._common import NS_PER_S, Clock, Close, Frame, MessageRate, Reply, Shared, describe
from .books import BOOKS_OFF
from .kraken_book import BOOK, DEFAULT_DEPTH, DEPTHS, booking_depth
from .kraken_encoder import TICKER, TICKER_BBO, TRADE, kraken_names

API_VERSION = "v2"
VERSION = "2.0.10"  # the API version Kraken's status message reports
HEARTBEAT_NS = NS_PER_S  # Kraken: about once a second, when nothing else was sent
# Kraken documents no message rate for its WebSocket API (its limits are on trading); tickwire
# allows 50 requests a second, and 5000 symbols named a second, then closes with 1008.
MAX_MESSAGES_PER_S = 50
MAX_SYMBOLS_PER_S = 5000
MAX_REQ_ID = 2**63 - 1
_connections = itertools.count(1)  # connection ids, unique per server process


@dataclass(frozen=True, slots=True)
class Channel:
    """One subscribable channel: its parameters, what a subscription to it receives, and the
    result fields its acknowledgement echoes."""

    params: frozenset[str]  # besides channel, symbol and req_id
    snapshot: bool  # whether a subscribe gets a snapshot unless told otherwise
    entry: Callable[[dict[str, Any]], str]  # parameters -> the encoder's entry channel
    echo: Callable[[dict[str, Any]], dict[str, Any]]  # parameters -> extra result fields


def _ticker_entry(params: dict[str, Any]) -> str:
    return TICKER_BBO if params.get("event_trigger") == "bbo" else TICKER


CHANNELS: dict[str, Channel] = {
    "ticker": Channel(
        frozenset({"event_trigger", "snapshot"}),
        True,
        _ticker_entry,
        lambda p: {"event_trigger": p.get("event_trigger", "trades")},
    ),
    "trade": Channel(frozenset({"snapshot"}), False, lambda p: TRADE, lambda p: {}),
    # the entry depends on the server's depth too: `KrakenSession._entry`
    BOOK: Channel(
        frozenset({"depth", "snapshot"}),
        True,
        lambda p: BOOK,
        lambda p: {"depth": p.get("depth", DEFAULT_DEPTH)},
    ),
}
NOT_YET = ("ohlc", "level3", "instrument")  # Kraken's, without simulated data yet
PRIVATE = ("executions", "balances")  # need a token from Kraken's REST API


class KrakenSession:
    """One Kraken v2 connection: its subscriptions, by channel and symbol."""

    venue = "kraken"
    binary = False

    def __init__(
        self,
        universe: Universe,
        now_ns: int,
        *,
        current: Callable[[str, int, str], bytes | None] | None = None,
        book_depth: int = 0,
    ) -> None:
        """`book_depth`: the server's order book depth in ticks a side (0: it keeps none)."""
        self.universe = universe
        self.book_depth = book_depth
        self._names = kraken_names(universe)
        self._current = current  # (venue, symbol id, channel): the snapshot at subscribe
        self.subs: dict[tuple[str, str], str] = {}  # (channel, symbol) -> entry channel
        self._wanted: dict[int, frozenset[str]] = {}  # symbol id -> entry channels
        self._key: frozenset[tuple[int, frozenset[str]]] = frozenset()
        self._clock = Clock()
        self._sent_ns = now_ns  # when the last message went out (for the heartbeat)
        self._messages = MessageRate(MAX_MESSAGES_PER_S)
        self._symbols_named = MessageRate(MAX_SYMBOLS_PER_S)

    @property
    def symbols(self) -> frozenset[int]:
        return frozenset(self._wanted)

    def opened(self, now_ns: int) -> Reply:
        """Kraken's status message."""
        self._sent_ns = now_ns
        status = {
            "api_version": API_VERSION,
            "connection_id": next(_connections),
            "system": "online",
            "version": VERSION,
        }
        return _reply({"channel": "status", "type": "update", "data": [status]})

    # ------------------------------------------------------------------ requests

    def receive(self, data: str | bytes, now_ns: int) -> Reply:
        """One client message in; Kraken's answer out. Never raises for what a client sends."""
        if not self._messages.allow(now_ns):
            return Reply(close=Close(1008, "too many requests"))
        self._sent_ns = now_ns
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._error(None, None, "Malformed request: not JSON", now_ns)
        if not isinstance(msg, dict):
            return self._error(None, None, "Malformed request: not a JSON object", now_ns)
        method, req_id = msg.get("method"), msg.get("req_id")
        if req_id is not None and not (
            isinstance(req_id, int) and not isinstance(req_id, bool) and 0 <= req_id <= MAX_REQ_ID
        ):
            return self._error(method, None, "EGeneral:Invalid arguments:req_id", now_ns)
        if method == "ping":
            return _reply(self._stamped({"method": "pong"}, req_id, now_ns))
        if method not in ("subscribe", "unsubscribe"):
            return self._error(method, req_id, f"Method not found: {describe(method)}", now_ns)
        params = msg.get("params")
        if not isinstance(params, dict):
            return self._error(method, req_id, "EGeneral:Invalid arguments:params", now_ns)
        return self._subscribe(method, params, req_id, now_ns)

    def _subscribe(
        self, method: str, params: dict[str, Any], req_id: int | None, now_ns: int
    ) -> Reply:
        name = params.get("channel")
        if not isinstance(name, str) or (channel := CHANNELS.get(name)) is None:
            why = (
                f"Channel {name} not supported by the simulated market yet"
                if name in NOT_YET or name in PRIVATE
                else f"Channel not found: {describe(name)}"
            )
            return self._error(method, req_id, why, now_ns)
        symbols = params.get("symbol")
        if (
            not isinstance(symbols, list)
            or not symbols
            or not all(isinstance(s, str) and 0 < len(s) <= 32 for s in symbols)
        ):
            return self._error(method, req_id, "EGeneral:Invalid arguments:symbol", now_ns)
        unknown = sorted(set(params) - channel.params - {"channel", "symbol"})
        if unknown:
            return self._error(method, req_id, f"EGeneral:Invalid arguments:{unknown[0]}", now_ns)
        if not _valid_params(params):
            return self._error(method, req_id, "EGeneral:Invalid arguments:params", now_ns)
        refused = self._book_error(params) if name == BOOK and method == "subscribe" else None
        if refused is not None:
            return self._error(method, req_id, refused, now_ns)
        if not self._symbols_named.allow(now_ns, len(symbols)):
            return Reply(close=Close(1008, "too many symbols a second"))
        reply = Reply()
        for symbol in dict.fromkeys(symbols):
            reply.frames += self._one(method, name, channel, symbol, params, req_id, now_ns)
        self._reindex()
        reply.symbols = self.symbols
        if name == BOOK:
            reply.books = {
                self._names[symbol]: int(entry.partition(":")[2])
                for (ch, symbol), entry in self.subs.items()
                if ch == BOOK
            }
        return reply

    def _book_error(self, params: dict[str, Any]) -> str | None:
        """Why a `book` subscribe is refused, or None."""
        depth = params.get("depth", DEFAULT_DEPTH)
        if type(depth) is not int or depth not in DEPTHS:
            allowed = ", ".join(map(str, DEPTHS))
            return (
                f"EGeneral:Invalid arguments:depth must be one of {allowed}, got {describe(depth)}"
            )
        if not self.book_depth:
            return BOOKS_OFF
        if params.get("snapshot", True) is not True:
            return "EGeneral:Invalid arguments:snapshot: the simulated book always starts with one"
        return None

    def _entry(self, name: str, channel: Channel, params: dict[str, Any]) -> str:
        """The encoder's entry channel a subscription receives."""
        if name == BOOK:
            depth = params.get("depth", DEFAULT_DEPTH)
            return f"{BOOK}:{booking_depth(depth, self.book_depth)}"
        return channel.entry(params)

    def _one(
        self,
        method: str,
        name: str,
        channel: Channel,
        symbol: str,
        params: dict[str, Any],
        req_id: int | None,
        now_ns: int,
    ) -> list[Frame]:
        """One symbol's acknowledgement (or error), and its snapshot after a subscribe."""
        sym = self._names.get(symbol)
        key = (name, symbol)
        if sym is None:
            why = f"Currency pair not supported {symbol}"
            return self._error(method, req_id, why, now_ns, symbol).frames
        result = {"channel": name, "symbol": symbol, **channel.echo(params)}
        if method == "unsubscribe":
            if self.subs.pop(key, None) is None:
                return self._error(method, req_id, "Subscription Not Found", now_ns, symbol).frames
            return _reply(self._stamped(_result(method, result), req_id, now_ns)).frames
        if key in self.subs:
            return self._error(method, req_id, "Already subscribed", now_ns, symbol).frames
        self.subs[key] = self._entry(name, channel, params)
        snapshot = params.get("snapshot", channel.snapshot)
        result["snapshot"] = snapshot
        frames = _reply(self._stamped(_result(method, result), req_id, now_ns)).frames
        if snapshot and self._current is not None:
            message = self._current(self.venue, sym, self.subs[key])
            if message is not None:
                frames.append(Frame(message))
        return frames

    def _reindex(self) -> None:
        wanted: dict[int, set[str]] = {}
        for (_, symbol), entry in self.subs.items():
            wanted.setdefault(self._names[symbol], set()).add(entry)
        self._wanted = {s: frozenset(e) for s, e in wanted.items()}
        self._key = frozenset(self._wanted.items())

    def _stamped(self, body: dict[str, Any], req_id: int | None, now_ns: int) -> dict[str, Any]:
        stamp = self._clock.us(now_ns)
        body["time_in"] = body["time_out"] = stamp
        if req_id is not None:
            body["req_id"] = req_id
        return body

    def _error(
        self, method: Any, req_id: int | None, error: str, now_ns: int, symbol: str | None = None
    ) -> Reply:
        body: dict[str, Any] = {"error": error}
        if isinstance(method, str):
            body["method"] = method
        body["success"] = False
        if symbol is not None:
            body["symbol"] = symbol
        return _reply(self._stamped(body, req_id, now_ns))

    # ------------------------------------------------------------------ data and time

    def _wants(self, sym: int, channel: str) -> bool:
        return channel in self._wanted[sym]

    def deliver(self, shared: Shared) -> list[Frame]:
        """One frame per message of this session's subscriptions, in event order."""
        if not self._wanted:
            return []
        frames = shared.memo(self._key, lambda: self._build(shared))
        if frames:
            self._sent_ns = max(self._sent_ns, shared.now_ns)
        return frames

    def _build(self, shared: Shared) -> list[Frame]:
        syms = set(self._wanted)
        return [Frame(shared.encoded(e, "json")) for e in shared.select(syms, self._wants)]

    def next_deadline(self) -> int | None:
        """The next heartbeat, while subscribed to anything."""
        return self._sent_ns + HEARTBEAT_NS if self._wanted else None

    def timeout(self, now_ns: int) -> Reply:
        if not self._wanted or now_ns < self._sent_ns + HEARTBEAT_NS:
            return Reply()
        self._sent_ns = now_ns
        return Reply([_HEARTBEAT])

    def overflow(self) -> Reply:
        """Kraken drops a connection that cannot keep up."""
        return Reply(close=Close(1008, "slow reader"))

    def closed(self) -> None:
        """Nothing shared to give back."""


_HEARTBEAT = Frame(orjson.dumps({"channel": "heartbeat"}))


def _reply(body: dict[str, Any]) -> Reply:
    return Reply([Frame(orjson.dumps(body))])


def _result(method: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"method": method, "result": result, "success": True}


def _valid_params(params: dict[str, Any]) -> bool:
    """The optional parameters' types and values, as Kraken takes them."""
    if "snapshot" in params and not isinstance(params["snapshot"], bool):
        return False
    return params.get("event_trigger", "trades") in ("trades", "bbo")
