"""What a server holds: every socket by peer IP (the connection caps), the open connections, the
handshakes still waiting for their request (oldest first: the ones shed under a flood of silent
sockets), and the refused upgrades, logged so that a flood of them cannot flood the log. No I/O.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

log = logging.getLogger("tickwire.server")

_REFUSED_SUMMARY_S = 10.0  # refused upgrades are summarised at info at most this often
# Sockets held past --max-connections, so that clients over the cap get their 1013 (or a 429)
# instead of waiting in the kernel's queue. Past this, the oldest unfinished handshake is shed
# for each new socket: the accept loop never stops, so /livez and new clients are answered.
HEADROOM = 64
REQUEST_TIMEOUT_S = 10.0  # a request must arrive within this...
PRESSED_REQUEST_TIMEOUT_S = 2.0  # ...or this, under pressure (as nginx and HAProxy shorten it)


class Held(Protocol):
    """What the registry needs of a socket it holds (`_connection.Connection` is one)."""

    @property
    def ip(self) -> str: ...

    def hurry(self, timeout_s: float) -> None:
        """Shorten its request deadline to `timeout_s` from now."""

    def release_slot(self) -> None:
        """Give its slot back to the registry (once)."""


C = TypeVar("C", bound=Held)  # the server's kind of connection


@dataclass(eq=False, slots=True)
class Registry(Generic[C]):
    """Every socket the server holds (handshaking, open, closing), by peer IP, and the open
    connections. The cap counts them all: a socket is a descriptor whatever its state."""

    max_connections: int
    max_per_ip: int = 0  # 0: no per-IP limit
    held: int = 0
    per_ip: Counter[str] = field(default_factory=Counter)
    open: set[C] = field(default_factory=set)
    # Sockets whose request has not arrived, oldest first, in all and by peer IP
    handshaking: dict[C, None] = field(default_factory=dict)
    handshaking_by_ip: dict[str, dict[C, None]] = field(default_factory=dict)
    handshakes_shed: int = 0  # cut to make room (for /metrics)
    refused: Counter[str] = field(default_factory=Counter)
    refused_since_s: float = -math.inf
    request_timeout_s: float = REQUEST_TIMEOUT_S
    pressed_timeout_s: float = PRESSED_REQUEST_TIMEOUT_S
    pressed: bool = False  # many sockets wait for their request: shorter deadlines
    pressed_logged_s: float = -math.inf  # the warning is logged at most every 10 s

    def hold(self, ip: str, *, per_ip: bool = True) -> None:
        """One more socket; `per_ip` False: one that is refused at once (over the per-IP cap)
        does not count against its address."""
        self.held += 1
        if per_ip:
            self.per_ip[ip] += 1

    def release(self, ip: str, *, per_ip: bool = True) -> None:
        self.held -= 1
        if not per_ip:
            return
        left = self.per_ip[ip] - 1
        if left:
            self.per_ip[ip] = left
        else:
            del self.per_ip[ip]

    # ------------------------------------------------------------------ handshakes

    def handshake_started(self, conn: C, now: float) -> float:
        """A socket waits for its request: its deadline (shorter under pressure)."""
        self.handshaking[conn] = None
        self.handshaking_by_ip.setdefault(conn.ip, {})[conn] = None
        pressed = self.under_pressure(now)
        return now + (self.pressed_timeout_s if pressed else self.request_timeout_s)

    def handshake_ended(self, conn: C) -> None:
        if self.handshaking.pop(conn, 0) is None:
            mine = self.handshaking_by_ip[conn.ip]
            del mine[conn]
            if not mine:
                del self.handshaking_by_ip[conn.ip]

    def under_pressure(self, now: float) -> bool:
        """Past --max-connections, or half the headroom spent on sockets that say nothing:
        the request deadline shrinks (and once, as pressure starts, for those waiting)."""
        pressed = self.held > self.max_connections or len(self.handshaking) > HEADROOM // 2
        if pressed and not self.pressed:
            for conn in self.handshaking:
                conn.hurry(self.pressed_timeout_s)
        if pressed and not self.pressed and now - self.pressed_logged_s >= _REFUSED_SUMMARY_S:
            self.pressed_logged_s = now
            log.warning(
                "%d sockets wait for their request (%d held): request deadline now %g s",
                len(self.handshaking),
                self.held,
                self.pressed_timeout_s,
            )
        self.pressed = pressed
        return pressed

    def oldest_handshake(self, ip: str | None = None) -> C | None:
        """The socket that has waited longest for its request (from `ip`, if given)."""
        waiting = self.handshaking if ip is None else self.handshaking_by_ip.get(ip, {})
        return next(iter(waiting), None)

    def to_shed(self, ip: str) -> tuple[list[C], bool]:
        """A socket from `ip` was just accepted: the handshakes to cut to make room for it, and
        whether it must be refused instead (over the per-IP cap, its address has no handshake
        to give up). Cut handshakes are released here, at once."""
        shed: list[C] = []
        if self.max_per_ip and self.per_ip[ip] >= self.max_per_ip:
            victim = self.oldest_handshake(ip)
            if victim is None:
                return shed, True
            shed.append(victim)
            self._shed(victim)
        while self.held >= self.max_connections + HEADROOM:
            victim = self.oldest_handshake()
            if victim is None:
                break
            shed.append(victim)
            self._shed(victim)
        return shed, False

    def make_room(self) -> None:
        """A client's upgrade is complete while the server holds --max-connections sockets:
        shed sockets still silent (oldest first) rather than refuse the one that spoke."""
        while self.held > self.max_connections:
            victim = self.oldest_handshake()
            if victim is None:
                return
            self._shed(victim)

    def _shed(self, conn: C) -> None:
        self.handshake_ended(conn)
        conn.release_slot()
        self.handshakes_shed += 1

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
