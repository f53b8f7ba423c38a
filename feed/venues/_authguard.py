"""Failed authentications by client address (Alpaca's `auth`), shared by a server's sessions.

Against key guessing: every failure is counted (for `/metrics`) and logged, at most one line
per address and a summary per 10 s, so a flood of guesses cannot flood the log; an address
past `FREE_FAILURES` waits before its next `auth` is answered, twice as long for each further
failure up to `MAX_DELAY_NS`, one answer at a time across all its connections. The table is
bounded (`MAX_ADDRESSES`, least recently failed forgotten first) and forgets an address
`FORGET_NS` after its last failure. Sans-IO: time comes in as `now_ns`; no trio, no sockets.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

log = logging.getLogger("tickwire.server")

NS_PER_S = 1_000_000_000
FREE_FAILURES = 10  # failures an address may make before its answers are delayed
BASE_DELAY_NS = NS_PER_S // 10  # the first delay; doubled for each further failure...
MAX_DELAY_NS = 5 * NS_PER_S  # ...up to this: past it, one guess per 5 s per address
FORGET_NS = 600 * NS_PER_S  # an address's failures are forgotten 10 min after its last
MAX_ADDRESSES = 4096  # addresses remembered (about 100 bytes each)
LOG_EVERY_NS = 10 * NS_PER_S


@dataclass(slots=True)
class _Address:
    failures: int
    last_ns: int
    next_ns: int  # when its next auth may be answered (slots handed out in order)


class AuthFailures:
    """Failed auths per client address: counted, logged within bounds, and slowed down."""

    __slots__ = ("_logged_ns", "_table", "_unlogged", "_unlogged_from", "total")

    def __init__(self) -> None:
        self._table: OrderedDict[str, _Address] = OrderedDict()
        self.total = 0  # every failure since start (the metric)
        self._logged_ns = -LOG_EVERY_NS
        self._unlogged = 0  # failures since the last line...
        self._unlogged_from: set[str] = set()  # ...and their addresses (at most MAX_ADDRESSES)

    def __len__(self) -> int:
        return len(self._table)

    def _get(self, addr: str, now_ns: int) -> _Address | None:
        entry = self._table.get(addr)
        if entry is not None and now_ns - entry.last_ns >= FORGET_NS:
            del self._table[addr]
            return None
        return entry

    def due(self, addr: str, now_ns: int) -> int:
        """When an auth from `addr` arriving at `now_ns` may be answered (`now_ns`: at once).
        A delayed answer takes its address's next slot, so guesses on parallel connections
        wait in line."""
        entry = self._get(addr, now_ns)
        if entry is None or entry.failures < FREE_FAILURES:
            return now_ns
        shift = min(entry.failures - FREE_FAILURES, 16)
        delay = min(MAX_DELAY_NS, BASE_DELAY_NS << shift)
        at = entry.next_ns = max(now_ns, entry.next_ns) + delay
        return at

    def failed(self, addr: str, now_ns: int) -> None:
        """One more failed auth from `addr`."""
        self.total += 1
        entry = self._get(addr, now_ns)
        if entry is None:
            entry = self._table[addr] = _Address(0, now_ns, now_ns)
            if len(self._table) > MAX_ADDRESSES:
                self._table.popitem(last=False)
        else:
            self._table.move_to_end(addr)
        entry.failures += 1
        entry.last_ns = now_ns
        self._log(addr, entry.failures, now_ns)

    def _log(self, addr: str, failures: int, now_ns: int) -> None:
        if now_ns - self._logged_ns < LOG_EVERY_NS:
            self._unlogged += 1
            if len(self._unlogged_from) < MAX_ADDRESSES:
                self._unlogged_from.add(addr)
            return
        if self._unlogged:
            log.warning(
                "alpaca: %d more failed auth(s) from %d address(es) in the last %d s",
                self._unlogged,
                len(self._unlogged_from),
                LOG_EVERY_NS // NS_PER_S,
            )
            self._unlogged = 0
            self._unlogged_from.clear()
        self._logged_ns = now_ns
        log.warning(
            "alpaca: failed auth from %s (%d from that address; more are summarised every %d s)",
            addr or "an unknown address",
            failures,
            LOG_EVERY_NS // NS_PER_S,
        )
