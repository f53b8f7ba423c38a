"""A producer's write of one flush, sans-IO: the Lua script that writes it to Redis atomically,
fenced by the lease, and its keys and arguments (the entries' format is `codec.py`'s).
"""

from __future__ import annotations

import hashlib

from tickwire.feed.bus import bands as bb
from tickwire.feed.bus import codec as bc
from tickwire.feed.bus import keys as bk
from tickwire.feed.bus import lease as bl
from tickwire.feed.bus.outbox import Taken
from tickwire.simulators import TICK_DTYPE, TickBatch
from tickwire.simulators.scenario import BAND_DTYPE, STATUS_DTYPE

# Up to this many records a write sends no latest blob (see `latest_for_write`): a 1 ms flush
# holds tens to hundreds, and sorting them for the blob cost the producer more than the few
# extra HSETs of a repeated symbol cost Redis.
FOLD_RECORDS = 512
_SYM_AT = TICK_DTYPE.fields["sym"][1] + 1 if TICK_DTYPE.fields else 0  # Lua is 1-based
# Where a status change's sym and status are, from its first byte (`bc.STATUS_AT_DTYPE`).
_STATUS_SYM_AT = 8 + (STATUS_DTYPE.fields["sym"][1] if STATUS_DTYPE.fields else 0)
_STATUS_AT = 8 + (STATUS_DTYPE.fields["status"][1] if STATUS_DTYPE.fields else 0)
_BAND_SYM_AT = 8 + (BAND_DTYPE.fields["sym"][1] if BAND_DTYPE.fields else 0)  # `bb.BAND_AT_DTYPE`
_BAND_SET_AT = 8 + (BAND_DTYPE.fields["indicator"][1] if BAND_DTYPE.fields else 0)

# One flush's whole write, atomic like MULTI/EXEC but one command: each shard's entry (XADD with
# MAXLEN ~), the latest-record fold, the status changes' fold into the halted hash, `head` and
# `offset`, fenced by the producer lease: a writer that no longer holds it (it stalled and a
# standby took over, or Redis restarted) writes nothing and gets the holder back ('' for none).
# A lease that lapsed while nobody took it since (`{ns}:holder` still names this producer: the
# producer stalled past it, no standby took over) is taken again by the write: no other
# producer wrote in between, so the stream follows on and gateways see no gap.
# The holder's write renews the lease and returns 1, plus 1 while a gateway has subscribers
# (`watched_key`), plus 2 while a gateway wants every book (`bookwant_key`; a write carrying
# them deletes it), plus 4 while a gateway mirrors books (`bookswatched_key`: the producer writes
# level updates only then): `reply_flags` reads it.
# A MULTI/EXEC of the same commands took the writer twice as long per flush (1.6 vs 0.75 ms p50
# here: coredis queues and parses every reply).
# KEYS: latest, head, offset, lease, watched, halted, scenarios, bookwant, bands, bookswatched,
# holder, then each entry's ticks stream.
# ARGV: maxlen, head, offset or '', latest blob, e, f, l, m, t, o or '', lease token, lease ms,
# status changes or '' (the first entry's `s`), scenario changes or '' (its `c`), the scenarios
# playing after them or '' (unchanged), level updates or '' (its `b`), every book or '' (its
# `B`), band changes or '' (its `u`, folded into the bands hash), '1' if level updates since the
# last write were left out or '' (its `n`), then each entry's `r`. An empty latest blob folds
# the entries' records themselves, in order: what a short flush sends (`latest_for_write`),
# instead of its records twice.
WRITE_SCRIPT = f"""
local holder = redis.call('GET', KEYS[4])
if holder ~= ARGV[11] then
  if holder or redis.call('GET', KEYS[11]) ~= ARGV[11] then
    return holder or ''
  end
end
redis.call('SET', KEYS[4], ARGV[11], 'PX', ARGV[12])
local fields = {{'e', ARGV[5], 'f', ARGV[6], 'l', ARGV[7], 'm', ARGV[8], 't', ARGV[9]}}
if ARGV[10] ~= '' then
  fields[#fields + 1] = 'o'
  fields[#fields + 1] = ARGV[10]
end
local at = #fields + 1
fields[at] = 'r'
local names, extras = {{'s', 'c', 'b', 'B', 'u', 'n'}}, {{13, 14, 16, 17, 18, 19}}
for i = 12, #KEYS do
  fields[at + 1] = ARGV[i + 8]
  local n = at + 1
  if i == 12 then
    for k = 1, 6 do
      if ARGV[extras[k]] ~= '' then
        fields[n + 1] = names[k]
        fields[n + 2] = ARGV[extras[k]]
        n = n + 2
      end
    end
  end
  redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[1], '*', unpack(fields, 1, n))
end
local function fold(r)
  for i = 1, #r, {TICK_DTYPE.itemsize} do
    local rec = string.sub(r, i, i + {TICK_DTYPE.itemsize - 1})
    redis.call('HSET', KEYS[1], tostring(struct.unpack('<H', rec, {_SYM_AT})), rec)
  end
end
if ARGV[4] ~= '' then
  fold(ARGV[4])
else
  for i = 12, #KEYS do
    fold(ARGV[i + 8])
  end
end
local s = ARGV[13]
for i = 1, #s, {bc.STATUS_AT_DTYPE.itemsize} do
  local sym = tostring(struct.unpack('<H', s, i + {_STATUS_SYM_AT}))
  if string.byte(s, i + {_STATUS_AT}) == 0 then
    redis.call('HDEL', KEYS[6], sym)
  else
    redis.call('HSET', KEYS[6], sym, string.sub(s, i + 8, i + {bc.STATUS_AT_DTYPE.itemsize - 1}))
  end
end
local u = ARGV[18]
for i = 1, #u, {bb.BAND_AT_DTYPE.itemsize} do
  local sym = tostring(struct.unpack('<H', u, i + {_BAND_SYM_AT}))
  if string.byte(u, i + {_BAND_SET_AT}) == 0 then
    redis.call('HDEL', KEYS[9], sym)
  else
    redis.call('HSET', KEYS[9], sym, string.sub(u, i + 8, i + {bb.BAND_AT_DTYPE.itemsize - 1}))
  end
end
if ARGV[15] ~= '' then
  redis.call('SET', KEYS[7], ARGV[15])
end
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[3], ARGV[3])
end
if ARGV[17] ~= '' then
  redis.call('DEL', KEYS[8])
end
local flags = redis.call('EXISTS', KEYS[5]) + 2 * redis.call('EXISTS', KEYS[8])
return 1 + flags + 4 * redis.call('EXISTS', KEYS[10])
"""
WRITE_SHA = hashlib.sha1(WRITE_SCRIPT.encode()).hexdigest().encode()  # its EVALSHA name


def write_command(
    namespace: str,
    entries: list[tuple[int, dict[bytes, bytes]]],
    head: int,
    next_offset: int | None,
    latest: bytes,
    maxlen: int,
    token: bytes,
    lease_ms: int,
    playing: bytes = b"",
) -> tuple[list[str], list[bytes]]:
    """`WRITE_SCRIPT`'s keys and arguments for `encode_entries`' entries (at least one), fenced
    by lease `token` (renewed for `lease_ms` when it holds); `playing`: the scenarios playing
    after the write's changes (JSON), b"" if they did not change."""
    fields = entries[0][1]
    keys = [bk.latest_key(namespace), bk.head_key(namespace), bk.offset_key(namespace)]
    keys += [bk.lease_key(namespace), bk.watched_key(namespace), bk.halted_key(namespace)]
    keys += [bk.scenarios_key(namespace), bk.bookwant_key(namespace), bb.bands_key(namespace)]
    keys += [bk.bookswatched_key(namespace), bl.holder_key(namespace)]
    keys += [bk.ticks_key(namespace, shard) for shard, _ in entries]
    args = [str(maxlen).encode(), str(head).encode()]
    args += [b"" if next_offset is None else str(next_offset).encode(), latest]
    args += [fields[k] for k in (b"e", b"f", b"l", b"m", b"t")] + [fields.get(b"o", b"")]
    args += [token, str(lease_ms).encode(), fields.get(b"s", b""), fields.get(b"c", b""), playing]
    args += [fields.get(b"b", b""), fields.get(b"B", b""), fields.get(b"u", b"")]
    args.append(fields.get(b"n", b""))
    args += [f[b"r"] for _, f in entries]
    return keys, args


def reply_flags(reply: int) -> tuple[bool, bool, bool]:
    """A holder's write reply as (a gateway watches, a gateway wants every book, a gateway
    mirrors books)."""
    return bool((reply - 1) & 1), bool((reply - 1) & 2), bool((reply - 1) & 4)


def latest_for_write(batch: TickBatch) -> bytes:
    """`WRITE_SCRIPT`'s latest blob: b"" for a flush of up to `FOLD_RECORDS` records (the
    script then folds the records it writes, in order, so a symbol's last record wins, and
    Redis receives each record once), else each symbol's last record: a long coalesced write
    would otherwise cost Redis one HSET per record instead of one per symbol."""
    if len(batch) <= FOLD_RECORDS:
        return b""
    return bc.latest_records(batch)


def flush_command(
    taken: Taken,
    *,
    namespace: str,
    shards: int,
    epoch: int,
    maxlen: int,
    token: bytes,
    lease_ms: int,
    sent_ns: int,
) -> tuple[list[str], list[bytes], int]:
    """`WRITE_SCRIPT`'s keys and arguments for the flushes `taken` (at least one record), and
    how many stream entries they add."""
    parts = bc.split(taken.batch, shards)
    latest = latest_for_write(taken.batch)
    statuses = bc.encode_statuses(taken.statuses)
    scenarios = bc.encode_scenarios(taken.scenarios)
    levels = bc.encode_levels(taken.levels)
    entries = bc.encode_entries(
        parts,
        taken.first,
        taken.last,
        epoch,
        sent_ns,
        taken.offset,
        statuses,
        scenarios,
        levels,
        taken.books,
        bb.encode_bands(taken.bands),
        taken.levels_lost,
    )
    keys, args = write_command(
        namespace,
        entries,
        taken.last,
        taken.next_offset,
        latest,
        maxlen,
        token,
        lease_ms,
        taken.playing,
    )
    return keys, args, len(entries)


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


_BULK = b"$%d\r\n%b\r\n"  # one RESP bulk string: its length, then it


class FlushPacker:
    """`flush_command`'s EVALSHA of `WRITE_SCRIPT`, packed straight into the Redis protocol
    (RESP): the same bytes as packing its keys and arguments with a generic packer, in a
    fraction of the time. The parts that never change for a producer are packed once, into
    one format that takes a flush's variable arguments in a single `%` (a bulk string packed
    per argument took ~10 us a flush, a third of a flush's cost to the producer at 500 symbols;
    hiredis's packer ~9 us)."""

    def __init__(
        self,
        sha: bytes,
        *,
        namespace: str,
        shards: int,
        epoch: int,
        maxlen: int,
        token: bytes,
        lease_ms: int,
    ) -> None:
        self.sha = sha
        self.namespace = namespace
        self.shards = shards
        self._maxlen = _bulk(str(maxlen).encode())
        # After the keys and maxlen: head, offset, latest blob, then the entry's e (constant),
        # f, l, m, t, o, the lease token and ms (constant), the status changes, the scenario
        # changes and those playing, the level updates, the whole books, the band changes and
        # the `n` mark.
        epoch_arg, lease = _bulk(str(epoch).encode()), _bulk(token) + _bulk(str(lease_ms).encode())
        self._args = _BULK * 3 + epoch_arg + _BULK * 5 + lease + _BULK * 7
        self._heads: dict[tuple[int, ...], bytes] = {}  # by the shards written

    def _head(self, shards: tuple[int, ...]) -> bytes:
        """The packed command up to `maxlen` for these shards (the argument count first)."""
        got = self._heads.get(shards)
        if got is None:
            keys, _ = write_command(
                self.namespace, [(s, _NO_FIELDS) for s in shards], 0, None, b"", 0, b"", 0
            )
            parts = [b"EVALSHA", self.sha, str(len(keys)).encode(), *map(str.encode, keys)]
            count = len(parts) + 19 + len(shards)
            got = b"*%d\r\n" % count + b"".join(map(_bulk, parts)) + self._maxlen
            self._heads[shards] = got
        return got

    def pack(self, taken: Taken, sent_ns: int) -> tuple[bytes, int]:
        """The packed command for the flushes `taken` (at least one record), and how many
        stream entries it adds."""
        batch = taken.batch
        if self.shards == 1 and len(batch):
            parts = [(0, batch.tobytes())]
        else:
            parts = bc.split(batch, self.shards)
        statuses = bc.encode_statuses(taken.statuses)
        scenarios = bc.encode_scenarios(taken.scenarios)
        levels, bands = bc.encode_levels(taken.levels), bb.encode_bands(taken.bands)
        lost = b"1" if taken.levels_lost else b""
        if (statuses or scenarios or levels or taken.books or bands or lost) and not parts:
            parts = [(0, b"")]
        mask = 0
        for shard, _ in parts:
            mask |= 1 << shard
        last = b"%d" % taken.last
        nxt = b"" if taken.next_offset is None else b"%d" % taken.next_offset
        latest = latest_for_write(batch)
        first, m, t = b"%d" % taken.first, b"%d" % mask, b"%d" % sent_ns
        offset = b"" if taken.offset is None else b"%d" % taken.offset
        playing, books = taken.playing, taken.books
        args = self._args % (
            *(len(last), last, len(nxt), nxt, len(latest), latest),
            *(len(first), first, len(last), last, len(m), m, len(t), t, len(offset), offset),
            *(len(statuses), statuses, len(scenarios), scenarios, len(playing), playing),
            *(len(levels), levels, len(books), books, len(bands), bands, len(lost), lost),
        )
        head = self._head(
            (0,) if len(parts) == 1 and not parts[0][0] else tuple(s for s, _ in parts)
        )
        if len(parts) == 1:
            raw = parts[0][1]
            return b"%b%b$%d\r\n%b\r\n" % (head, args, len(raw), raw), 1
        return head + args + b"".join([_BULK % (len(raw), raw) for _, raw in parts]), len(parts)


_NO_FIELDS = {k: b"" for k in (b"e", b"f", b"l", b"m", b"t", b"r")}
