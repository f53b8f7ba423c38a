"""The wire protocol's requests, sans-IO: client frames in, typed requests out.

Owns the limits a request is checked against, the close codes, one frozen class per op, the
`RequestError` tree whose `code` is the wire error code, and `parse_request`. Never imports
trio, trio_websocket or textual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, TypeAlias

import orjson

PROTOCOL_VERSION = 1
SUBPROTOCOL_JSON = "tickwire.v1"
SUBPROTOCOL_BINARY = "tickwire.v1.binary"
SUBPROTOCOLS = (SUBPROTOCOL_JSON, SUBPROTOCOL_BINARY)
PATH = "/v1"
MAX_MESSAGE_BYTES = 64 * 1024  # client frames larger than this are closed with 1009
MAX_THROTTLE_MS = 60_000
MAX_BOOK_DEPTH = 1000  # order book depth a subscription may ask for (the market's limit)
MAX_SYMBOL_LEN = 32
WILDCARD = "*"
MODES = ("all", "latest")  # every update (the default), or the latest state per symbol
MAX_EPOCH_LEN = 64


class CloseCode(IntEnum):
    """WebSocket close codes the server uses (RFC 6455 section 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutdown
    POLICY = 1008  # abuse (repeated bad requests) or a reader stalled past the limit
    TOO_BIG = 1009  # a client frame over MAX_MESSAGE_BYTES
    INTERNAL_ERROR = 1011  # a bug in the server, confined to this connection
    TRY_AGAIN_LATER = 1013  # the server is at its connection limit


@dataclass(frozen=True, slots=True)
class ResumeFrom:
    """A stream position from a previous connection: the run's epoch and an `offset`."""

    epoch: str
    offset: int


@dataclass(frozen=True, slots=True)
class Subscribe:
    symbols: tuple[str, ...]
    snapshot: bool = True
    id: int | None = None
    mode: str | None = None  # "all" or "latest"; None keeps the connection's mode
    # True: send stream positions (binary frames then use the 24-byte header); a ResumeFrom:
    # also replay what was missed since that position, if the server still has it.
    resume: ResumeFrom | bool = False
    book: int | bool | None = None  # order book depth (ticks a side); True: the server's


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    symbols: tuple[str, ...]
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Symbols:
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Throttle:
    interval_ms: int
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Stats:
    id: int | None = None


Request: TypeAlias = Subscribe | Unsubscribe | Symbols | Throttle | Ping | Stats


class RequestError(Exception):
    """A request the server refuses; `code` is the wire error code."""

    code: ClassVar[str] = "bad_request"
    counts_as_strike: ClassVar[bool] = True  # repeated strikes close the connection with 1008

    def __init__(self, message: str, *, id: int | None = None, symbols: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.id = id
        self.symbols = tuple(symbols)


class BadJson(RequestError):
    code = "bad_json"


class BadRequest(RequestError):
    code = "bad_request"


class UnknownOp(RequestError):
    code = "unknown_op"


class UnknownSymbol(RequestError):
    code = "unknown_symbol"
    counts_as_strike = False  # an honest mistake, e.g. a typo in a watchlist


class TooManySymbols(RequestError):
    code = "too_many_symbols"
    counts_as_strike = False


class RateLimited(RequestError):
    code = "rate_limited"


ERROR_CODES = tuple(
    c.code for c in (BadJson, BadRequest, UnknownOp, UnknownSymbol, TooManySymbols, RateLimited)
)


def id_of(obj: Mapping[str, Any]) -> int | None:
    """The request's `id`: None when absent, BadRequest when not an integer."""
    rid = obj.get("id")
    if rid is None:
        return None
    if type(rid) is not int:
        raise BadRequest(f"id must be an integer, got {_describe(rid)}")
    return rid


def _describe(value: Any) -> str:
    text = orjson.dumps(value).decode() if _jsonable(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _jsonable(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def _symbols_field(obj: Mapping[str, Any], rid: int | None) -> tuple[str, ...]:
    if "symbols" not in obj:
        raise BadRequest("missing field 'symbols': a list of symbols, or [\"*\"]", id=rid)
    symbols = obj["symbols"]
    if not isinstance(symbols, list) or not symbols:
        raise BadRequest(
            f"symbols must be a non-empty list of strings, got {_describe(symbols)}", id=rid
        )
    for s in symbols:
        if not isinstance(s, str) or not 0 < len(s) <= MAX_SYMBOL_LEN:
            raise BadRequest(
                f"each symbol must be a string of 1 to {MAX_SYMBOL_LEN} characters,"
                f" got {_describe(s)}",
                id=rid,
            )
    return tuple(dict.fromkeys(symbols))  # drop duplicates, keep order


def _mode_field(obj: Mapping[str, Any], rid: int | None) -> str | None:
    mode = obj.get("mode")
    if mode is not None and mode not in MODES:
        raise BadRequest(
            f'mode must be "all" (every update) or "latest" (latest state per symbol),'
            f" got {_describe(mode)}",
            id=rid,
        )
    return mode


def _resume_field(obj: Mapping[str, Any], rid: int | None) -> ResumeFrom | bool:
    resume = obj.get("resume", False)
    if isinstance(resume, bool):
        return resume
    if isinstance(resume, dict):
        epoch, offset = resume.get("epoch"), resume.get("offset")
        if (
            isinstance(epoch, str)
            and 0 < len(epoch) <= MAX_EPOCH_LEN
            and type(offset) is int
            and offset >= 0
        ):
            return ResumeFrom(epoch, offset)
    raise BadRequest(
        'resume must be true, false, or {"epoch": the welcome\'s epoch, "offset": the last'
        f" data message's offset (an integer >= 0)}}, got {_describe(resume)}",
        id=rid,
    )


def _book_field(obj: Mapping[str, Any], rid: int | None) -> int | bool | None:
    """`book`: a depth (the server checks it against its own), true (the server's), or absent."""
    book = obj.get("book")
    if book is None or book is False:
        return None
    if book is True or (type(book) is int and 1 <= book <= MAX_BOOK_DEPTH):
        return book
    raise BadRequest(
        f"book must be true (the server's depth) or a depth from 1 to {MAX_BOOK_DEPTH}"
        f" ticks a side, got {_describe(book)}",
        id=rid,
    )


def parse_request(frame: str | bytes) -> Request:
    """Decode one client frame; anything wrong raises a RequestError carrying its wire code."""
    if not isinstance(frame, str):
        raise BadRequest("requests are JSON text frames, got a binary frame")
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise BadJson(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise BadRequest(f"a request is a JSON object with an 'op', got {_describe(obj)}")
    rid = id_of(obj)
    op = obj.get("op")
    if not isinstance(op, str):
        raise BadRequest("missing field 'op' (a string such as \"subscribe\")", id=rid)
    if op == "subscribe":
        snapshot = obj.get("snapshot", True)
        if not isinstance(snapshot, bool):
            raise BadRequest(f"snapshot must be true or false, got {_describe(snapshot)}", id=rid)
        return Subscribe(
            _symbols_field(obj, rid),
            snapshot,
            rid,
            _mode_field(obj, rid),
            _resume_field(obj, rid),
            _book_field(obj, rid),
        )
    if op == "unsubscribe":
        return Unsubscribe(_symbols_field(obj, rid), rid)
    if op == "throttle":
        ms = obj.get("interval_ms")
        if type(ms) is not int or not 0 <= ms <= MAX_THROTTLE_MS:
            raise BadRequest(
                f"interval_ms must be an integer from 0 to {MAX_THROTTLE_MS}, got {_describe(ms)}",
                id=rid,
            )
        return Throttle(ms, rid)
    if op == "symbols":
        return Symbols(rid)
    if op == "ping":
        return Ping(rid)
    if op == "stats":
        return Stats(rid)
    raise UnknownOp(
        f"unknown op {_describe(op)}; ops are subscribe, unsubscribe, symbols, throttle,"
        " ping, stats",
        id=rid,
    )
