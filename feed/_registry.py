"""What a server holds: every socket by peer IP (the connection caps), the open connections, and
the refused upgrades, logged so that a flood of them cannot flood the log. No I/O.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from ._connection import Connection

log = logging.getLogger("tickwire.server")

_REFUSED_SUMMARY_S = 10.0  # refused upgrades are summarised at info at most this often


@dataclass(eq=False, slots=True)
class Registry:
    """Every socket the server holds (handshaking, open, closing), by peer IP, and the open
    connections. The cap counts them all: a socket is a descriptor whatever its state."""

    max_connections: int
    max_per_ip: int = 0  # 0: no per-IP limit
    held: int = 0
    per_ip: Counter[str] = field(default_factory=Counter)
    open: set[Connection] = field(default_factory=set)
    freed: trio.Event = field(default_factory=trio.Event)
    refused: Counter[str] = field(default_factory=Counter)
    refused_since_s: float = -math.inf

    def hold(self, ip: str) -> None:
        self.held += 1
        self.per_ip[ip] += 1

    def release(self, ip: str) -> None:
        self.held -= 1
        left = self.per_ip[ip] - 1
        if left:
            self.per_ip[ip] = left
        else:
            del self.per_ip[ip]
        self.freed.set()

    def note_refused(self, what: str, peer: str, reason: str, now: float) -> None:
        """A refused upgrade: the first of each 10 s window at info, the rest at debug and then
        as one summary line, so that a flood of refusals cannot flood the log."""
        if now - self.refused_since_s < _REFUSED_SUMMARY_S:
            log.debug("refused %s: %s, %s", peer, what, reason)
            self.refused[what] += 1
            return
        if self.refused:
            by = ", ".join(f"{n} x {w}" for w, n in sorted(self.refused.items()))
            log.info("refused %d more upgrade request(s) since: %s", self.refused.total(), by)
            self.refused.clear()
        self.refused_since_s = now
        log.info(
            "refused %s: %s, %s (more refusals within %g s: one summary line)",
            peer,
            what,
            reason,
            _REFUSED_SUMMARY_S,
        )
