"""The bus's wire format and its reassembly, sans-IO: no Redis, no trio.

A producer publishes each flush's `TickBatch` as one Redis Streams entry per shard that has records
(`{ns}:ticks:{shard}`, shard = symbol id mod `shards`). An entry's fields:

- `r`: the raw little-endian `TICK_DTYPE` records of that shard, in event order (no JSON);
- `e`: the producer's epoch (decimal); a new producer is a new epoch;
- `f`, `l`: the first and last flush numbers the entry covers (a writer that fell behind
  coalesces flushes; a flush it had to drop leaves a hole in the numbering);
- `m`: the bitmask of shards written for those flushes, so a reader knows when it has all of it;
- `t`: the producer's wall clock at publish (ns), for the reader's lag;
- `o` (optional): the producer's stream offset of the first record of flush `f`, so that every
  gateway's hub numbers records as the producer does and a client resumes on any gateway;
- `s` (optional, on the first entry of a write only): the trading status changes of a market
  playing a scenario (`STATUS_AT_DTYPE`: each change's `simulators.scenario.STATUS_DTYPE` record
  after `at`, the number of the write's records before it), so a gateway publishes them where
  the producer did. A write of status changes alone is one entry of shard 0 with no records;
- `c` (optional, on the first entry of a write only): the market scenarios that started or ended
  (`encode_scenarios`: JSON `[[at, name, started, ts], ...]`), placed as `s`'s changes are: a
  start before the status changes after the same records, an end after them;
- `b` (optional, first entry only): the level updates of a market with books (`LEVEL_AT_DTYPE`:
  each `LEVEL_DTYPE` record before the write's record `at`), written only while a gateway
  mirrors books (`{ns}:bookswatched`); `n`: `1` when some since the previous write were left out;
- `B` (optional, first entry only): every whole book after the write (`ladder_dtype` records),
  when a gateway asks (`{ns}:bookwant`: it starts mirroring, or its books went stale);
- `u` (optional, first entry only): LULD band changes, placed as `s`'s are (`bands.py`).

`{ns}:latest` is a hash, symbol id (decimal) -> its latest 64-byte record (folded in by a Lua
script from one blob per write), `{ns}:head` the last flush number and `{ns}:offset` the stream
offset of the next record, all written in the same transaction as the entries; `{ns}:halted` a
hash, symbol id -> the status record of each symbol halted now; `{ns}:scenarios` the JSON list
of the scenarios playing now (where a gateway starts from); `{ns}:meta` is a JSON string: the
universe's reference rows, the epoch, the shard count, whether the market plays a scenario
(`statuses`), its book depth (`book_depth`, 0: no books) and the tick format version.

The write of a flush is `write.py`'s; `reassemble.py` turns entries back into whole flushes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from tickwire.simulators import TICK_DTYPE, TickBatch, Universe
from tickwire.simulators.book import LEVEL_DTYPE, ladder_dtype
from tickwire.simulators.scenario import STATUS_DTYPE
from tickwire.simulators.ticks import TICK_FORMAT_VERSION

_RECORD = np.dtype((np.void, TICK_DTYPE.itemsize))
MAX_SHARDS = 64  # the shard mask is a 64-bit field
# A status change on the bus: its record, after `at` records of the write that carries it.
STATUS_AT_DTYPE = np.dtype([("at", "<u8"), ("status", (np.void, STATUS_DTYPE.itemsize))])
# A level update on the bus: its record, before the write's record `at`.
LEVEL_AT_DTYPE = np.dtype([("at", "<u8"), ("level", (np.void, LEVEL_DTYPE.itemsize))])


class BusFormatError(ValueError):
    """An entry or meta key that this version cannot read (another format, or not ours)."""


# ----------------------------------------------------------------------------- meta


@dataclass(frozen=True, slots=True)
class Meta:
    """What a gateway needs before it can serve: the universe, the epoch, the layout."""

    universe: Universe
    epoch: int
    shards: int
    statuses: bool = False  # the market plays a scenario: writes carry status changes
    book_depth: int = 0  # the market keeps books this deep: writes carry level updates


def encode_meta(
    universe: Universe, epoch: int, shards: int, statuses: bool = False, book_depth: int = 0
) -> bytes:
    # The `symbols` reply's rows: every reference field (size units, a replay's source) reaches
    # the gateways, which answer `symbols` with them.
    doc = {
        "format": TICK_FORMAT_VERSION,
        "epoch": epoch,
        "shards": shards,
        "universe": universe.reference(),
        "statuses": statuses,
        "book_depth": book_depth,
    }
    return orjson.dumps(doc)


def decode_meta(raw: bytes) -> Meta:
    try:
        doc = orjson.loads(raw)
        if doc["format"] != TICK_FORMAT_VERSION:
            raise BusFormatError(
                f"the bus carries tick format {doc['format']}, this gateway reads "
                f"{TICK_FORMAT_VERSION}: run the same tickwire version on both sides"
            )
        universe = Universe.from_reference(doc["universe"])
        statuses = doc.get("statuses", False) is True
        depth = int(doc.get("book_depth", 0))
        return Meta(universe, int(doc["epoch"]), int(doc["shards"]), statuses, depth)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BusFormatError):
            raise
        raise BusFormatError(f"the bus meta key is not tickwire's: {exc}") from None


# ----------------------------------------------------------------------------- entries


@dataclass(frozen=True, slots=True)
class Entry:
    """One decoded stream entry: a shard's records of flushes `first..last`."""

    shard: int
    first: int
    last: int
    mask: int
    epoch: int
    sent_ns: int
    records: TickBatch
    offset: int | None = None  # the producer's stream offset of flush `first`'s first record
    statuses: bytes = b""  # `STATUS_AT_DTYPE` records (`encode_statuses`)
    scenarios: bytes = b""  # the scenarios that started or ended (`encode_scenarios`)
    levels: bytes = b""  # `LEVEL_AT_DTYPE` records (`encode_levels`)
    books: bytes = b""  # every book after the write (`ladder_dtype` records)
    bands: bytes = b""  # LULD band changes (`bands.encode_bands`)
    levels_lost: bool = False  # level updates since the previous write are not in this one


def split(batch: TickBatch, shards: int) -> list[tuple[int, bytes]]:
    """(shard, record bytes) for every shard with records, each in event order."""
    if shards == 1:
        return [(0, batch.tobytes())] if len(batch) else []
    of = batch["sym"] % shards
    return [(s, batch[of == s].tobytes()) for s in np.unique(of).tolist()]


def encode_entries(
    parts: list[tuple[int, bytes]],
    first: int,
    last: int,
    epoch: int,
    sent_ns: int,
    offset: int | None = None,
    statuses: bytes = b"",
    scenarios: bytes = b"",
    levels: bytes = b"",
    books: bytes = b"",
    bands: bytes = b"",
    levels_lost: bool = False,
) -> list[tuple[int, dict[bytes, bytes]]]:
    """The fields of each shard's entry for flushes `first..last` (starting at `offset`), the
    first one with `statuses` (`encode_statuses`), `scenarios` (`encode_scenarios`), `levels`
    (`encode_levels`), `books`, `bands` (`bands.encode_bands`) and the `n` mark (`levels_lost`)."""
    lost = b"1" if levels_lost else b""
    if (statuses or scenarios or levels or books or bands or lost) and not parts:
        parts = [(0, b"")]
    mask = 0
    for shard, _ in parts:
        mask |= 1 << shard
    head = {
        b"e": str(epoch).encode(),
        b"f": str(first).encode(),
        b"l": str(last).encode(),
        b"m": str(mask).encode(),
        b"t": str(sent_ns).encode(),
    }
    if offset is not None:
        head[b"o"] = str(offset).encode()
    out = [(shard, {**head, b"r": raw}) for shard, raw in parts]
    extras = (
        (b"s", statuses),
        (b"c", scenarios),
        (b"b", levels),
        (b"B", books),
        (b"u", bands),
        (b"n", lost),
    )
    for name, extra in extras:
        if extra:
            out[0][1][name] = extra
    return out


# A scenario's start or end on the bus: (records of the write before it, name, started, ts).
ScenarioAt = tuple[int, str, bool, int]


def encode_scenarios(changes: list[ScenarioAt]) -> bytes:
    """The `c` field of a write's scenario starts and ends; b"" for none."""
    return orjson.dumps([list(c) for c in changes]) if changes else b""


def decode_playing(raw: bytes | None) -> list[str]:
    """The `{ns}:scenarios` key: the scenarios playing ([] when absent)."""
    try:
        return [str(n) for n in orjson.loads(raw)] if raw else []
    except (orjson.JSONDecodeError, TypeError):
        raise BusFormatError("a scenarios key that is not tickwire's") from None


def decode_scenarios(raw: bytes) -> list[ScenarioAt]:
    """A `c` field back as (records before, name, started, ts), in order."""
    try:
        got = orjson.loads(raw)
        return [(int(at), str(name), bool(started), int(ts)) for at, name, started, ts in got]
    except (orjson.JSONDecodeError, TypeError, ValueError):
        raise BusFormatError("scenario changes that are not tickwire's") from None


def encode_at(pairs: list[tuple[int, NDArray[np.void]]], dtype: np.dtype[Any], field: str) -> bytes:
    """(records before, records) pairs as one field of `dtype` rows (`at`, then `field`)."""
    if not pairs:
        return b""
    out = np.zeros(sum(len(r) for _, r in pairs), dtype)
    i = 0
    for at, records in pairs:
        out["at"][i : i + len(records)] = at
        out[field][i : i + len(records)] = records.view(out.dtype[field])
        i += len(records)
    return out.tobytes()


def decode_at(
    raw: bytes, dtype: np.dtype[Any], field: str, records: np.dtype[Any], what: str
) -> tuple[NDArray[np.uint64], NDArray[np.void]]:
    """`encode_at`'s field back as (records before each, records of dtype `records`)."""
    if len(raw) % dtype.itemsize:
        raise BusFormatError(f"{what} of {len(raw)} bytes, not a multiple of {dtype.itemsize}")
    got = np.frombuffer(raw, dtype)
    return got["at"].copy(), got[field].copy().view(records)


def encode_statuses(statuses: list[tuple[int, NDArray[np.void]]]) -> bytes:
    """(records before, `STATUS_DTYPE` records) pairs as one `s` field; b"" for none."""
    return encode_at(statuses, STATUS_AT_DTYPE, "status")


def decode_statuses(raw: bytes) -> tuple[NDArray[np.uint64], NDArray[np.void]]:
    """An `s` field back as (records before each, `STATUS_DTYPE` records)."""
    return decode_at(raw, STATUS_AT_DTYPE, "status", STATUS_DTYPE, "status changes")


def encode_levels(levels: list[tuple[int, NDArray[np.void]]]) -> bytes:
    """(records before, LEVEL_DTYPE records) pairs as one `b` field; b"" for none."""
    return encode_at(levels, LEVEL_AT_DTYPE, "level")


def decode_levels(raw: bytes) -> tuple[NDArray[np.uint64], NDArray[np.void]]:
    """A `b` field back as (records before each, LEVEL_DTYPE records)."""
    return decode_at(raw, LEVEL_AT_DTYPE, "level", LEVEL_DTYPE, "level updates")


def decode_books(raw: bytes, depth: int) -> NDArray[np.void]:
    """A `B` field back as `ladder_dtype(depth)` records."""
    dtype = ladder_dtype(depth)
    if not depth or len(raw) % dtype.itemsize:
        raise BusFormatError(f"books of {len(raw)} bytes, not whole books {depth} levels deep")
    return np.frombuffer(raw, dtype).copy()


def decode_entry(shard: int, fields: Mapping[str | bytes, str | bytes]) -> Entry:
    try:
        raw = fields[b"r"]
        if not isinstance(raw, bytes):
            raise BusFormatError("records that are not bytes")
        if len(raw) % TICK_DTYPE.itemsize:
            raise BusFormatError(f"records of {len(raw)} bytes, not a multiple of 64")
        return Entry(
            shard,
            int(fields[b"f"]),
            int(fields[b"l"]),
            int(fields[b"m"]),
            int(fields[b"e"]),
            int(fields[b"t"]),
            np.frombuffer(raw, TICK_DTYPE),
            int(fields[b"o"]) if b"o" in fields else None,
            _bytes(fields.get(b"s", b"")),
            _bytes(fields.get(b"c", b"")),
            _bytes(fields.get(b"b", b"")),
            _bytes(fields.get(b"B", b"")),
            _bytes(fields.get(b"u", b"")),
            b"n" in fields,
        )
    except (KeyError, ValueError) as exc:
        if isinstance(exc, BusFormatError):
            raise
        raise BusFormatError(f"a stream entry that is not tickwire's: {exc!r}") from None


def _bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    raise BusFormatError("status changes or book records that are not bytes")


def decode_halted(fields: Mapping[bytes, bytes]) -> NDArray[np.void]:
    """The `{ns}:halted` hash as status records, by symbol id."""
    raw = b"".join(v for _, v in sorted((int(k), v) for k, v in fields.items()))
    if len(raw) % STATUS_DTYPE.itemsize:
        raise BusFormatError("a halted record that is not 16 bytes")
    return np.frombuffer(raw, STATUS_DTYPE).copy()


def latest_records(batch: TickBatch) -> bytes:
    """Each symbol's last record in `batch`, as one blob for `LATEST_SCRIPT`."""
    _, rev = np.unique(batch["sym"][::-1], return_index=True)
    return bytes(batch.view(_RECORD)[len(batch) - 1 - rev].tobytes())


def decode_latest(fields: Mapping[bytes, bytes], n: int) -> TickBatch:
    """The hash back as a snapshot indexed by symbol id; absent symbols have `seq` 0."""
    snap = np.zeros(n, TICK_DTYPE)
    snap["sym"] = np.arange(n)
    for key, raw in fields.items():
        i = int(key)
        if 0 <= i < n and len(raw) == TICK_DTYPE.itemsize:
            snap[i] = np.frombuffer(raw, TICK_DTYPE)[0]
    return snap


def canonical(batch: TickBatch, shards: int) -> TickBatch:
    """`batch` in the order `merge` rebuilds it from its shards: by time, equal times by shard.

    A producer publishes this order to its own hub, so its stream offsets name the same record
    on every gateway (a resume between them is exact) and its own clients see the gateways'
    order. The market's batches are in time order with a rare equal time (~1 in 10^4 records):
    one comparison pass, and a sort only when it finds one. One shard is one part, which
    `merge` returns as it is: nothing to do.
    """
    ts = batch["ts"]
    if shards == 1 or len(batch) < 2 or bool(np.all(ts[1:] > ts[:-1])):
        return batch
    out: TickBatch = batch[np.lexsort((batch["sym"] % shards, ts))]
    return out


def merge(parts: Iterable[TickBatch]) -> TickBatch:
    """One flush's shard parts in event order (equal times keep shard order)."""
    chunks = [p for p in parts if len(p)]
    if len(chunks) == 1:
        return chunks[0]
    if not chunks:
        return np.empty(0, TICK_DTYPE)
    both = np.concatenate([c.view(_RECORD) for c in chunks]).view(TICK_DTYPE)
    order = np.argsort(both["ts"], kind="stable")
    out: TickBatch = both[order]
    return out
