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
  gateway's hub numbers records as the producer does and a client resumes on any gateway.

`{ns}:latest` is a hash, symbol id (decimal) -> its latest 64-byte record (folded in by a Lua
script from one blob per write), `{ns}:head` the last flush number and `{ns}:offset` the stream
offset of the next record, all written in the same transaction as the entries; `{ns}:meta` is a JSON
string: the universe's reference rows, the epoch, the shard count and the tick format version.

`Reassembler` turns entries read from every shard back into whole flushes in order, and says when
one is missing (trimmed, dropped, or from another epoch): a gap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import orjson

from tickwire.simulators import TICK_DTYPE, TickBatch, Universe
from tickwire.simulators.ticks import TICK_FORMAT_VERSION

_RECORD = np.dtype((np.void, TICK_DTYPE.itemsize))
MAX_SHARDS = 64  # the shard mask is a 64-bit field


class BusFormatError(ValueError):
    """An entry or meta key that this version cannot read (another format, or not ours)."""


def ticks_key(namespace: str, shard: int) -> str:
    return f"{namespace}:ticks:{shard}"


def latest_key(namespace: str) -> str:
    return f"{namespace}:latest"


def head_key(namespace: str) -> str:
    """The last flush number written: where a reader starts counting."""
    return f"{namespace}:head"


def offset_key(namespace: str) -> str:
    """The producer's stream offset of the next record (after `head`): a gateway's hub start."""
    return f"{namespace}:offset"


def meta_key(namespace: str) -> str:
    return f"{namespace}:meta"


def watched_key(namespace: str) -> str:
    """Set (with a short expiry, refreshed) by every gateway that has subscribers: while it
    is absent, nobody watches and the producer steps its market rarely, like an idle server."""
    return f"{namespace}:watched"


def lease_key(namespace: str) -> str:
    """The active producer's lease: its token, with a short expiry it keeps renewing."""
    return f"{namespace}:lease"


# ----------------------------------------------------------------------------- meta


@dataclass(frozen=True, slots=True)
class Meta:
    """What a gateway needs before it can serve: the universe, the epoch, the layout."""

    universe: Universe
    epoch: int
    shards: int


def encode_meta(universe: Universe, epoch: int, shards: int) -> bytes:
    # The `symbols` reply's rows: every reference field (size units, a replay's source) reaches
    # the gateways, which answer `symbols` with them.
    doc = {
        "format": TICK_FORMAT_VERSION,
        "epoch": epoch,
        "shards": shards,
        "universe": universe.reference(),
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
        return Meta(universe, int(doc["epoch"]), int(doc["shards"]))
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
) -> list[tuple[int, dict[bytes, bytes]]]:
    """The fields of each shard's entry for flushes `first..last` (starting at `offset`)."""
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
    return [(shard, {**head, b"r": raw}) for shard, raw in parts]


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
        )
    except (KeyError, ValueError) as exc:
        if isinstance(exc, BusFormatError):
            raise
        raise BusFormatError(f"a stream entry that is not tickwire's: {exc!r}") from None


def latest_records(batch: TickBatch) -> bytes:
    """Each symbol's last record in `batch`, as one blob for `LATEST_SCRIPT`."""
    _, rev = np.unique(batch["sym"][::-1], return_index=True)
    return bytes(batch.view(_RECORD)[len(batch) - 1 - rev].tobytes())


# Folds a blob of 64-byte records into the latest-record hash inside Redis: one argument from
# Python instead of two per symbol (client-side encoding of 5,000 fields cost ~100 ms a write).
_SYM_AT = TICK_DTYPE.fields["sym"][1] + 1 if TICK_DTYPE.fields else 0  # Lua is 1-based
LATEST_SCRIPT = f"""
local r = ARGV[1]
for i = 1, #r, {TICK_DTYPE.itemsize} do
  local rec = string.sub(r, i, i + {TICK_DTYPE.itemsize - 1})
  redis.call('HSET', KEYS[1], tostring(struct.unpack('<H', rec, {_SYM_AT})), rec)
end
return #r / {TICK_DTYPE.itemsize}
"""


# One flush's whole write, atomic like MULTI/EXEC but one command: each shard's entry (XADD with
# MAXLEN ~), the latest-record fold, `head` and `offset`, fenced by the producer lease: a writer
# that no longer holds it (it stalled and a standby took over, or Redis restarted) writes nothing
# and gets the holder back ('' for none); the holder's write renews the lease and returns 1, or 2
# while a gateway has subscribers (`watched_key`).
# A MULTI/EXEC of the same commands took the writer twice as long per flush (1.6 vs 0.75 ms p50
# here: coredis queues and parses every reply).
# KEYS: latest, head, offset, lease, watched, then the ticks stream of each entry.
# ARGV: maxlen, head, offset or '', latest blob, e, f, l, m, t, o or '', lease token, lease ms,
# then each entry's `r`.
WRITE_SCRIPT = f"""
local holder = redis.call('GET', KEYS[4])
if holder ~= ARGV[11] then
  return holder or ''
end
redis.call('PEXPIRE', KEYS[4], ARGV[12])
local fields = {{'e', ARGV[5], 'f', ARGV[6], 'l', ARGV[7], 'm', ARGV[8], 't', ARGV[9]}}
if ARGV[10] ~= '' then
  fields[#fields + 1] = 'o'
  fields[#fields + 1] = ARGV[10]
end
local at = #fields + 1
fields[at] = 'r'
for i = 6, #KEYS do
  fields[at + 1] = ARGV[i + 7]
  redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
end
local r = ARGV[4]
for i = 1, #r, {TICK_DTYPE.itemsize} do
  local rec = string.sub(r, i, i + {TICK_DTYPE.itemsize - 1})
  redis.call('HSET', KEYS[1], tostring(struct.unpack('<H', rec, {_SYM_AT})), rec)
end
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[3], ARGV[3])
end
return 1 + redis.call('EXISTS', KEYS[5])
"""


def write_command(
    namespace: str,
    entries: list[tuple[int, dict[bytes, bytes]]],
    head: int,
    next_offset: int | None,
    latest: bytes,
    maxlen: int,
    token: bytes,
    lease_ms: int,
) -> tuple[list[str], list[bytes]]:
    """`WRITE_SCRIPT`'s keys and arguments for `encode_entries`' entries (at least one), fenced
    by lease `token` (renewed for `lease_ms` when it holds)."""
    fields = entries[0][1]
    keys = [latest_key(namespace), head_key(namespace), offset_key(namespace), lease_key(namespace)]
    keys.append(watched_key(namespace))
    keys += [ticks_key(namespace, shard) for shard, _ in entries]
    args = [str(maxlen).encode(), str(head).encode()]
    args += [b"" if next_offset is None else str(next_offset).encode(), latest]
    args += [fields[k] for k in (b"e", b"f", b"l", b"m", b"t")] + [fields.get(b"o", b"")]
    args += [token, str(lease_ms).encode()]
    args += [f[b"r"] for _, f in entries]
    return keys, args


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
    one comparison pass, and a sort only when it finds one.
    """
    ts = batch["ts"]
    if len(batch) < 2 or bool(np.all(ts[1:] > ts[:-1])):
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


# ----------------------------------------------------------------------------- reassembly


@dataclass(slots=True)
class _Pending:
    first: int
    mask: int
    got: int = 0
    parts: dict[int, TickBatch] = field(default_factory=dict)
    sent_ns: int = 0
    offset: int | None = None


class Reassembler:
    """Entries from all shards in, whole flushes out in flush order; holes come out as gaps.

    Each shard's entries arrive in order, but one read may hold shard 0's part of a flush and
    not yet shard 1's; a flush is released once every shard in its mask has delivered it. A
    flush is lost when a shard it needs has moved past it (trimmed), when the numbering skips
    (the producer dropped writes), or when the epoch changes.
    """

    def __init__(self, epoch: int, next_flush: int | None = None) -> None:
        self.epoch = epoch
        self.next_flush = next_flush  # None: take whatever comes first (a fresh reader)
        self._pending: dict[int, _Pending] = {}  # keyed by an entry's `last` flush
        self._seen: dict[int, int] = {}  # per shard: the last flush it delivered
        self.last_sent_ns = 0  # the producer's clock when it sent the latest released flush
        # Aligned with what the last `feed` returned: each released flush's stream offset.
        self.offsets: list[int | None] = []

    def feed(self, entry: Entry) -> list[TickBatch | None]:
        """Released flushes (oldest first); `None` in the list marks a gap before what follows."""
        if entry.epoch != self.epoch:
            self.offsets = [None]
            return [None]
        self._seen[entry.shard] = entry.last
        key = entry.last
        p = self._pending.get(key)
        if p is None:
            p = self._pending[key] = _Pending(entry.first, entry.mask, offset=entry.offset)
        p.parts[entry.shard] = entry.records
        p.got |= 1 << entry.shard
        p.sent_ns = entry.sent_ns
        return self._release()

    def _release(self) -> list[TickBatch | None]:
        out: list[TickBatch | None] = []
        offsets: list[int | None] = []
        self.offsets = offsets
        while self._pending:
            key = min(self._pending)
            p = self._pending[key]
            if p.got != p.mask:
                lost = any(
                    self._seen.get(s, -1) > key
                    for s in range(MAX_SHARDS)
                    if p.mask >> s & 1 and not p.got >> s & 1
                )
                if not lost:
                    break  # the rest of this flush is on its way
                out.append(None)
                offsets.append(None)
                del self._pending[key]
                self.next_flush = key + 1
                continue
            if self.next_flush is not None and p.first != self.next_flush:
                out.append(None)  # flushes before this one never came
                offsets.append(None)
            out.append(merge(p.parts[s] for s in sorted(p.parts)))
            offsets.append(p.offset)
            self.last_sent_ns = p.sent_ns
            del self._pending[key]
            self.next_flush = key + 1
        return out

    def completes(self, entries: Iterable[Entry]) -> bool:
        """Whether `entries` alone are whole flushes that follow on, with nothing pending: fed
        in order they release every flush and no gap, so no other stream can hold a part a
        reader must wait for (it may skip reading the other streams up to the same instant)."""
        if self._pending:
            return False
        flushes: dict[int, tuple[int, int, int]] = {}  # last -> first, mask, shards got
        for e in entries:
            if e.epoch != self.epoch:
                return False
            first, mask, got = flushes.get(e.last, (e.first, e.mask, 0))
            flushes[e.last] = (first, mask, got | 1 << e.shard)
        expect = self.next_flush
        for last in sorted(flushes):
            first, mask, got = flushes[last]
            if got != mask or (expect is not None and first != expect):
                return False
            expect = last + 1
        return bool(flushes)

    def reset(self, epoch: int, next_flush: int | None) -> None:
        """Start again after a gap: forget partial flushes."""
        self.epoch = epoch
        self.next_flush = next_flush
        self._pending.clear()
        self._seen.clear()
