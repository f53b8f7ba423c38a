"""The wire protocol v1, sans-IO: client frames in, typed requests out; messages in, bytes out.

Everything about the wire's shape lives here (PROTOCOL.md is the contract): request parsing and its
error codes, close codes, the JSON and binary encodings of server messages, and their decoders for
clients. Per-connection state (subscription, throttle, rate limit, strikes) is in `_state.py`.
Never imports trio, trio_websocket or textual; reads no clock (time comes in as arguments).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise
from typing import Any, ClassVar, TypeAlias

import numpy as np
import orjson
from numpy.typing import NDArray

from tickwire.simulators.ticks import TICK_DTYPE, TICK_FORMAT_VERSION

PROTOCOL_VERSION = 1
SUBPROTOCOL_JSON = "tickwire.v1"
SUBPROTOCOL_BINARY = "tickwire.v1.binary"
SUBPROTOCOLS = (SUBPROTOCOL_JSON, SUBPROTOCOL_BINARY)
PATH = "/v1"
MAX_MESSAGE_BYTES = 64 * 1024  # client frames larger than this are closed with 1009
MAX_THROTTLE_MS = 60_000
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


# --------------------------------------------------------------------------- requests


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


def _id_of(obj: Mapping[str, Any]) -> int | None:
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
    rid = _id_of(obj)
    op = obj.get("op")
    if not isinstance(op, str):
        raise BadRequest("missing field 'op' (a string such as \"subscribe\")", id=rid)
    if op == "subscribe":
        snapshot = obj.get("snapshot", True)
        if not isinstance(snapshot, bool):
            raise BadRequest(f"snapshot must be true or false, got {_describe(snapshot)}", id=rid)
        return Subscribe(
            _symbols_field(obj, rid), snapshot, rid, _mode_field(obj, rid), _resume_field(obj, rid)
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


# --------------------------------------------------------------------------- JSON messages


def dumps(message: Mapping[str, Any]) -> str:
    """Encode a control message (welcome, ack, error, pong, symbols, stats) as JSON text."""
    return orjson.dumps(message).decode()


def with_id(msg: dict[str, Any], rid: int | None, **fields: Any) -> dict[str, Any]:
    """`msg` with the request's `id` (only when the request had one) and then `fields`."""
    if rid is not None:
        msg["id"] = rid
    msg.update(fields)
    return msg


def error_message(err: RequestError) -> dict[str, Any]:
    msg = with_id({"type": "error"}, err.id)
    msg["code"] = err.code
    msg["message"] = err.message
    if err.symbols:
        msg["symbols"] = list(err.symbols)
    return msg


def welcome_message(
    *, server: str, encoding: str, heartbeat_ms: int, n_symbols: int, epoch: str | None = None
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": "welcome",
        "protocol": PROTOCOL_VERSION,
        "server": server,
        "encoding": encoding,
        "heartbeat_ms": heartbeat_ms,
        "symbols": n_symbols,
        "max_message_bytes": MAX_MESSAGE_BYTES,
        "tick_format": TICK_FORMAT_VERSION,
    }
    if epoch is not None:
        msg["epoch"] = epoch  # this run of the stream: a resume must name it
    return msg


def resumed_ack(ack: dict[str, Any], missed: int | None) -> dict[str, Any]:
    """The `ack` of a subscribe with a resume position, once the hub has answered.

    `recovered: true` and `missed` (updates that follow, then live data), or `recovered: false`
    (another epoch, or the position left the history window): a snapshot follows instead.
    """
    out = dict(ack, recovered=missed is not None)
    if missed is not None:
        out["missed"] = missed
    return out


def gap_message(epoch: str) -> dict[str, Any]:
    """Sent before an unrequested snapshot: the server's source (a bus gateway's Redis) lost
    updates. The snapshot that follows is every subscribed symbol's latest state; `epoch` is
    the stream's run from here on (a new producer is a new epoch: resume positions restart)."""
    return {"type": "gap", "reason": "source", "epoch": epoch}


def heartbeat_text(seq: int, ts_ns: int) -> str:
    return f'{{"type":"heartbeat","seq":{seq},"ts":{ts_ns}}}'


_TICK_FIELDS = ("seq", "ts", "bid", "ask", "bid_size", "ask_size", "last", "last_size", "volume")
# indexed by flags & 6; both side bits set never happens in valid ticks: no side then
_SIDES = np.array([None, None, "buy", None, "sell", None, None, None], dtype=object)


# TICK_DTYPE's field order, for unpacking whole records (`records.tolist()` gives tuples).
_RECORD_FIELDS = (
    "ts", "seq", "bid", "ask", "last", "volume", "sym", "flags", "bid_size", "ask_size", "last_size"
)  # fmt: skip
assert TICK_DTYPE.names == _RECORD_FIELDS, "update _RECORD_FIELDS and tick_dicts with TICK_DTYPE"
_SIDE_OF = _SIDES.tolist()
# Below this many records, one tuple per record beats ten column views (~5 us fixed): the case of
# a subscriber to a few symbols, whose stale fragments are encoded on its own take.
_FEW = 16


def tick_dicts(records: NDArray[np.void], names: NDArray[np.object_]) -> list[dict[str, Any]]:
    """Tick objects of PROTOCOL.md for `records` (field names as on the wire)."""
    if len(records) <= _FEW:
        side = _SIDE_OF
        return [
            {
                "symbol": names[sym],
                "seq": seq,
                "ts": ts,
                "bid": bid,
                "ask": ask,
                "bid_size": bs,
                "ask_size": asz,
                "last": last,
                "last_size": ls,
                "volume": vol,
                "side": side[fl & 6],
                "flags": fl,
            }
            for ts, seq, bid, ask, last, vol, sym, fl, bs, asz, ls in records.tolist()
        ]
    flags = records["flags"]
    cols = [records[f].tolist() for f in _TICK_FIELDS]
    return [
        {
            "symbol": sym,
            "seq": seq,
            "ts": ts,
            "bid": bid,
            "ask": ask,
            "bid_size": bs,
            "ask_size": asz,
            "last": last,
            "last_size": ls,
            "volume": vol,
            "side": side,
            "flags": fl,
        }
        for sym, seq, ts, bid, ask, bs, asz, last, ls, vol, side, fl in zip(
            names[records["sym"]].tolist(),
            *cols,
            _SIDES[flags & 6].tolist(),
            flags.tolist(),
            strict=True,
        )
    ]


def tick_objects(records: NDArray[np.void], names: NDArray[np.object_]) -> bytes:
    """The JSON tick objects of `records`, encoded once and joined by commas (no brackets).

    One bytes object of exactly its size, to be shared by every JSON subscriber: orjson gives
    each result a buffer of at least 4 KiB, so one result per tick (~170 bytes of JSON) held 24x
    its size in memory, and one call for the whole list is also faster than one per tick.
    """
    return orjson.dumps(tick_dicts(records, names))[1:-1] if len(records) else b""


def object_starts(
    text: bytes, records: NDArray[np.void], names: NDArray[np.object_]
) -> NDArray[np.intp]:
    """Where each tick object of `text` (`tick_objects(records, names)`) starts, and one more
    for the end: object k is `text[at[k] : at[k + 1] - 1]`."""
    n = len(records)
    at = np.empty(n + 1, np.intp)
    at[n] = len(text) + 1
    if n == 0:
        return at
    starts = np.flatnonzero(np.frombuffer(text, np.uint8) == ord("{"))
    if len(starts) == n:  # no `{` inside a symbol name: each one opens a tick object
        at[:n] = starts
    else:  # rare: a symbol name with `{` in it
        at[0] = 0
        np.cumsum([len(orjson.dumps(d)) + 1 for d in tick_dicts(records, names)], out=at[1:])
    return at


def tick_fragments(records: NDArray[np.void], names: NDArray[np.object_]) -> list[bytes]:
    """One encoded JSON tick object per record, each a bytes object of exactly its size."""
    text = tick_objects(records, names)
    at = object_starts(text, records, names).tolist()
    return [text[a : b - 1] for a, b in pairwise(at)]


def ticks_body(records: NDArray[np.void], names: NDArray[np.object_]) -> bytes:
    """The `[...]` list of tick objects for `records`, encoded once."""
    return orjson.dumps(tick_dicts(records, names))


def join_fragments(fragments: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(fragments) + b"]"


def ticks_text(kind: str, seq: int, body: bytes, offset: int | None = None) -> bytes:
    """A `ticks` or `snapshot` JSON message around a pre-encoded tick list (UTF-8 bytes).

    `offset` is the stream position after this message, what a client resumes from.
    """
    if offset is None:
        return b'{"type":"%s","seq":%d,"ticks":%s}' % (kind.encode(), seq, body)
    return b'{"type":"%s","seq":%d,"offset":%d,"ticks":%s}' % (kind.encode(), seq, offset, body)


# --------------------------------------------------------------------------- binary messages

BINARY_VERSION = 1
BINARY_VERSION_OFFSET = 2  # the 24-byte header with the stream offset, for resumable clients


class BinaryType(IntEnum):
    """Message type byte of a binary frame's header."""

    TICKS = 1
    SNAPSHOT = 2


HEADER_DTYPE = np.dtype(
    [("version", "<u1"), ("type", "<u1"), ("reserved", "<u2"), ("count", "<u4"), ("seq", "<u8")]
)
HEADER_SIZE = HEADER_DTYPE.itemsize  # 16: records after it stay 8-byte aligned
_HEADER = struct.Struct("<BBHIQ")  # HEADER_DTYPE's layout; packing it is ~15x cheaper
assert _HEADER.size == HEADER_SIZE
# Version 2 adds the stream offset (u8) after `seq`: sent only to a connection that asked for
# resume positions, so version-1 decoders (np.frombuffer at 16) keep working. Still 8-aligned.
_HEADER_OFFSET = struct.Struct("<BBHIQQ")
HEADER_OFFSET_SIZE = _HEADER_OFFSET.size  # 24


def binary_header(kind: BinaryType, seq: int, count: int, offset: int | None = None) -> bytes:
    if offset is None:
        return _HEADER.pack(BINARY_VERSION, kind, 0, count, seq)
    return _HEADER_OFFSET.pack(BINARY_VERSION_OFFSET, kind, 0, count, seq, offset)


def encode_binary(
    kind: BinaryType, seq: int, records: NDArray[np.void], offset: int | None = None
) -> bytes:
    """A binary market-data frame: header, then the TICK_DTYPE records as they are."""
    return binary_header(kind, seq, len(records), offset) + records.tobytes()


class DecodeError(ValueError):
    """A server frame that does not follow the protocol (a bug or a wrong server)."""


@dataclass(frozen=True, slots=True)
class BinaryFrame:
    kind: BinaryType
    seq: int
    records: NDArray[np.void]
    offset: int | None = None  # the stream position (version-2 frames only)


def decode_binary(payload: bytes | bytearray | memoryview) -> BinaryFrame:
    """Decode a binary frame with one np.frombuffer for the records (zero copy, read-only)."""
    if len(payload) < HEADER_SIZE:
        raise DecodeError(f"binary frame of {len(payload)} bytes is shorter than its header")
    version, type_, _, count, seq = _HEADER.unpack_from(payload)
    offset: int | None = None
    size = HEADER_SIZE
    if version == BINARY_VERSION_OFFSET:
        if len(payload) < HEADER_OFFSET_SIZE:
            raise DecodeError(f"binary frame of {len(payload)} bytes is shorter than its header")
        offset, size = _HEADER_OFFSET.unpack_from(payload)[5], HEADER_OFFSET_SIZE
    elif version != BINARY_VERSION:
        raise DecodeError(f"unsupported binary format version {version}")
    if len(payload) != size + count * TICK_DTYPE.itemsize:
        raise DecodeError(f"binary frame length {len(payload)} does not hold {count} records")
    try:
        kind = BinaryType(type_)
    except ValueError:
        raise DecodeError(f"unknown binary message type {type_}") from None
    records = np.frombuffer(payload, TICK_DTYPE, count=count, offset=size)
    return BinaryFrame(kind, seq, records, offset)


def records_from_json(
    ticks: Sequence[Mapping[str, Any]], index: Mapping[str, int]
) -> NDArray[np.void]:
    """TICK_DTYPE records from decoded JSON tick objects (the client's JSON path)."""
    out = np.zeros(len(ticks), TICK_DTYPE)
    if not ticks:
        return out
    try:
        out["sym"] = [index[t["symbol"]] for t in ticks]
        for f in _TICK_FIELDS:
            out[f] = [t[f] for t in ticks]
        out["flags"] = [t.get("flags", 0) for t in ticks]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise DecodeError(f"malformed tick object: {exc!r}") from None
    return out
