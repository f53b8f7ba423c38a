"""A producer's write of one flush, sans-IO: the Lua script that writes it to Redis atomically,
fenced by the lease, and its keys and arguments (the entries' format is `codec.py`'s).
"""

from __future__ import annotations

from tickwire.feed.bus import codec as bc
from tickwire.feed.bus.outbox import Taken
from tickwire.simulators import TICK_DTYPE, TickBatch

# Up to this many records a write sends no latest blob (see `latest_for_write`): a 1 ms flush
# holds tens to hundreds, and sorting them for the blob cost the producer more than the few
# extra HSETs of a repeated symbol cost Redis.
FOLD_RECORDS = 512
_SYM_AT = TICK_DTYPE.fields["sym"][1] + 1 if TICK_DTYPE.fields else 0  # Lua is 1-based

# One flush's whole write, atomic like MULTI/EXEC but one command: each shard's entry (XADD with
# MAXLEN ~), the latest-record fold, `head` and `offset`, fenced by the producer lease: a writer
# that no longer holds it (it stalled and a standby took over, or Redis restarted) writes nothing
# and gets the holder back ('' for none); the holder's write renews the lease and returns 1, or 2
# while a gateway has subscribers (`watched_key`).
# A MULTI/EXEC of the same commands took the writer twice as long per flush (1.6 vs 0.75 ms p50
# here: coredis queues and parses every reply).
# KEYS: latest, head, offset, lease, watched, then the ticks stream of each entry.
# ARGV: maxlen, head, offset or '', latest blob, e, f, l, m, t, o or '', lease token, lease ms,
# then each entry's `r`. An empty latest blob folds the entries' records themselves, in order:
# what a short flush sends (`latest_for_write`), instead of its records twice.
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
local function fold(r)
  for i = 1, #r, {TICK_DTYPE.itemsize} do
    local rec = string.sub(r, i, i + {TICK_DTYPE.itemsize - 1})
    redis.call('HSET', KEYS[1], tostring(struct.unpack('<H', rec, {_SYM_AT})), rec)
  end
end
if ARGV[4] ~= '' then
  fold(ARGV[4])
else
  for i = 6, #KEYS do
    fold(ARGV[i + 7])
  end
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
    keys = [bc.latest_key(namespace), bc.head_key(namespace), bc.offset_key(namespace)]
    keys += [bc.lease_key(namespace), bc.watched_key(namespace)]
    keys += [bc.ticks_key(namespace, shard) for shard, _ in entries]
    args = [str(maxlen).encode(), str(head).encode()]
    args += [b"" if next_offset is None else str(next_offset).encode(), latest]
    args += [fields[k] for k in (b"e", b"f", b"l", b"m", b"t")] + [fields.get(b"o", b"")]
    args += [token, str(lease_ms).encode()]
    args += [f[b"r"] for _, f in entries]
    return keys, args


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
    entries = bc.encode_entries(parts, taken.first, taken.last, epoch, sent_ns, taken.offset)
    keys, args = write_command(
        namespace, entries, taken.last, taken.next_offset, latest, maxlen, token, lease_ms
    )
    return keys, args, len(entries)
