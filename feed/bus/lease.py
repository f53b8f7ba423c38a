"""The producer lease, sans-IO: one active producer per namespace, the others hot standbys.

The active producer holds `{ns}:lease` (its token, `HOST:PID EPOCH`, with a `LEASE_MS` expiry it
renews every `RENEW_S`, and with every write: `write.WRITE_SCRIPT` is fenced by it, so a
producer that lost the lease writes nothing). A standby polls every `STANDBY_POLL_S`; its poll
registers it in `{ns}:standby` (a sorted set scored by the time its registration lapses), and
takes the lease once it has expired. `{ns}:holder` keeps the last active token until that
producer releases the lease on a clean stop: an acquisition while it names another producer is a
takeover (the other died or stalled), counted in `{ns}:takeovers`. A holder that stalled past
its lease while nobody took it (`{ns}:holder` still names it) takes it again with its next write
or renewal: nobody else wrote in between, so its stream follows on without a gap.

Lua scripts and their replies only: no Redis client, no trio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tickwire.feed.bus.keys import lease_key
from tickwire.simulators import TICK_DTYPE
from tickwire.simulators.scenario import BAND_DTYPE, STATUS_DTYPE

_SYM_AT = TICK_DTYPE.fields["sym"][1] + 1 if TICK_DTYPE.fields else 0  # Lua is 1-based
_STATUS_SYM_AT = STATUS_DTYPE.fields["sym"][1] + 1 if STATUS_DTYPE.fields else 0
_BAND_SYM_AT = BAND_DTYPE.fields["sym"][1] + 1 if BAND_DTYPE.fields else 0

# A stalled or dead producer is replaced within LEASE_MS + STANDBY_POLL_S (+ one snapshot write);
# the holder renews 4-5 times per lease, so a producer the OS keeps waiting for up to ~1 s
# on a busy machine does not lose it.
LEASE_MS = 1200
RENEW_S = 0.25
STANDBY_POLL_S = 0.15


def standby_key(namespace: str) -> str:
    return f"{namespace}:standby"


def holder_key(namespace: str) -> str:
    """The last producer that took the lease and has not released it (no expiry)."""
    return f"{namespace}:holder"


def takeovers_key(namespace: str) -> str:
    return f"{namespace}:takeovers"


def lease_keys(namespace: str) -> list[str]:
    return [
        lease_key(namespace),
        standby_key(namespace),
        holder_key(namespace),
        takeovers_key(namespace),
    ]


def token_for(ident: str, epoch: int) -> bytes:
    """A producer's lease token: `HOST:PID` (what the logs show) and its epoch (unique)."""
    return f"{ident} {epoch:016x}".encode()


def shown(token: bytes | str) -> str:
    """A token as the logs and `stats` show it: `HOST:PID`."""
    text = token.decode(errors="replace") if isinstance(token, bytes) else token
    return text.split(" ", 1)[0]


# The scripts' time is Redis's (TIME), so producers on hosts with skewed clocks agree.
_NOW_MS = "local t = redis.call('TIME')\nlocal now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
_INFO = "redis.call('ZCOUNT', KEYS[2], now, '+inf'), tonumber(redis.call('GET', KEYS[4]) or '0')"

# KEYS: lease_keys(ns). ARGV: token, lease ms, '1' to renew only (never take a free lease, but
# one that lapsed while nobody took it since: `holder_key` still names this producer).
# Returns {holder or '', 1 if this call was a takeover else 0, standbys, takeovers}.
ACQUIRE_SCRIPT = f"""
{_NOW_MS}redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
local holder = redis.call('GET', KEYS[1])
local took = 0
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif not holder and (ARGV[3] ~= '1' or redis.call('GET', KEYS[3]) == ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  local last = redis.call('GET', KEYS[3])
  if last and last ~= ARGV[1] then
    redis.call('INCR', KEYS[4])
    took = 1
  end
  redis.call('SET', KEYS[3], ARGV[1])
  holder = ARGV[1]
elseif holder then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
end
if holder == ARGV[1] then
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return {{holder or '', took, {_INFO}}}
"""

# KEYS: lease_keys(ns). ARGV: token. A clean stop: the lease is free at once (no takeover).
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('DEL', KEYS[3])
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS: lease_keys(ns). Returns {holder or '', 0, standbys, takeovers} (a gateway's view).
INFO_SCRIPT = f"""
{_NOW_MS}return {{redis.call('GET', KEYS[1]) or '', 0, {_INFO}}}
"""

# A producer's first write under a fresh lease: meta, the full latest-record hash, head, offset,
# the halted and bands hashes and the scenarios playing, fenced like every write. KEYS: lease,
# meta, latest, head, offset, halted, bands, scenarios. ARGV: token, meta, latest blob, head,
# offset or '', halted symbols' status records, LULD band records, the scenarios its market
# plays (JSON: a new producer's own, never its predecessor's). Returns 1, or the holder ('' for
# none).
CONNECT_SCRIPT = f"""
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] then
  return holder or ''
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3])
local r = ARGV[3]
for i = 1, #r, {TICK_DTYPE.itemsize} do
  local rec = string.sub(r, i, i + {TICK_DTYPE.itemsize - 1})
  redis.call('HSET', KEYS[3], tostring(struct.unpack('<H', rec, {_SYM_AT})), rec)
end
redis.call('SET', KEYS[4], ARGV[4])
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[5], ARGV[5])
end
redis.call('DEL', KEYS[6])
local h = ARGV[6]
for i = 1, #h, {STATUS_DTYPE.itemsize} do
  local rec = string.sub(h, i, i + {STATUS_DTYPE.itemsize - 1})
  redis.call('HSET', KEYS[6], tostring(struct.unpack('<H', rec, {_STATUS_SYM_AT})), rec)
end
redis.call('DEL', KEYS[7])
local b = ARGV[7]
for i = 1, #b, {BAND_DTYPE.itemsize} do
  local rec = string.sub(b, i, i + {BAND_DTYPE.itemsize - 1})
  redis.call('HSET', KEYS[7], tostring(struct.unpack('<H', rec, {_BAND_SYM_AT})), rec)
end
redis.call('SET', KEYS[8], ARGV[8])
return 1
"""


@dataclass(frozen=True, slots=True)
class LeaseState:
    """One script's answer: who holds the lease, and the namespace's standby and takeover counts."""

    holder: bytes  # b"" when nobody does
    took_over: bool
    standbys: int
    takeovers: int


def parse_state(reply: Any) -> LeaseState:
    holder, took, standbys, takeovers = reply
    raw = holder.encode() if isinstance(holder, str) else bytes(holder)
    return LeaseState(raw, bool(int(took)), int(standbys), int(takeovers))


def fenced_holder(reply: Any) -> bytes | None:
    """`WRITE_SCRIPT`'s or `CONNECT_SCRIPT`'s reply: None when written, else the holder."""
    if isinstance(reply, int):
        return None
    return reply.encode() if isinstance(reply, str) else bytes(reply)
