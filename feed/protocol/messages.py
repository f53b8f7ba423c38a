"""The wire protocol's JSON messages, sans-IO: control messages and tick lists out as bytes.

Owns the welcome, ack, error, gap and heartbeat messages, the JSON tick objects (encoded once per
batch and shared by every JSON subscriber), and their decoding back into records for clients.
Never imports trio, trio_websocket or textual; reads no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from tickwire.feed.protocol.binary import DecodeError
from tickwire.feed.protocol.jsonticks import tick_text
from tickwire.feed.protocol.requests import MAX_MESSAGE_BYTES, PROTOCOL_VERSION, RequestError
from tickwire.simulators.ticks import TICK_DTYPE, TICK_FORMAT_VERSION


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


# TICK_DTYPE's field order, for unpacking whole records (`records.tolist()` gives tuples).
_RECORD_FIELDS = (
    "ts", "seq", "bid", "ask", "last", "volume", "sym", "flags", "bid_size", "ask_size", "last_size"
)  # fmt: skip
assert TICK_DTYPE.names == _RECORD_FIELDS, "update _RECORD_FIELDS and tick_dicts with TICK_DTYPE"
# indexed by flags & 6; both side bits set never happens in valid ticks: no side then
_SIDE_OF = [None, None, "buy", None, "sell", None, None, None]


def tick_dicts(records: NDArray[np.void], names: NDArray[np.object_]) -> list[dict[str, Any]]:
    """Tick objects of PROTOCOL.md for `records` (field names as on the wire).

    One builder for any count: a tuple per record (`records.tolist()`) costs no more than ten
    column lists for a batch (~50 records) and less for a few, whose fixed cost dominates.
    """
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


# From this many records on, a batch's text is built by columns (`jsonticks.tick_text`): its
# fixed cost (~170 us of numpy calls) is then below what orjson's ~0.85 us a record of dicts
# costs more than the ~0.33 us a record built. Measured on the 1500-symbol market (CPU time, a
# loaded 2-core machine): 0.42x at 100 records, 0.94x at 300, 1.9x at 913, 2.3x at 1500. The
# bench's N=100 `*` load publishes batches of ~1500 (median; 99% of records in batches >= 300).
BUILD_MIN = 350


def tick_objects(records: NDArray[np.void], names: NDArray[np.object_]) -> bytes:
    """The JSON tick objects of `records`, encoded once and joined by commas (no brackets).

    One bytes object of exactly its size, to be shared by every JSON subscriber: orjson gives
    each result a buffer of at least 4 KiB, so one result per tick (~170 bytes of JSON) held 24x
    its size in memory, and one call for the whole list is also faster than one per tick.
    """
    return tick_objects_at(records, names)[0]


def tick_objects_at(
    records: NDArray[np.void], names: NDArray[np.object_]
) -> tuple[bytes, NDArray[np.intp] | None]:
    """`tick_objects`, and where each object starts (`object_starts`) when that came for free:
    a batch of BUILD_MIN records or more is built with its starts; a smaller one is orjson's."""
    if len(records) >= BUILD_MIN:
        return tick_text(records, names, tick_dicts)
    return (orjson.dumps(tick_dicts(records, names))[1:-1] if len(records) else b""), None


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
    text, starts = tick_objects_at(records, names)
    at = (object_starts(text, records, names) if starts is None else starts).tolist()
    return [text[a : b - 1] for a, b in pairwise(at)]


def ticks_body(records: NDArray[np.void], names: NDArray[np.object_]) -> bytes:
    """The `[...]` list of tick objects for `records`, encoded once."""
    if len(records) >= BUILD_MIN:
        return b"[" + tick_text(records, names, tick_dicts)[0] + b"]"
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
