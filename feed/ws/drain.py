"""Graceful drain: which client is closed when, after the first SIGTERM (sans-IO).

A restart that closes every client at once makes every client reconnect at once (to the new
process, or to the other gateways behind the balancer). So the drain spreads the closes evenly
over `drain_s`: with N clients, one every drain_s / N seconds, oldest connection first (it has
had the most service). Each close is 1012 "service restart", which tells a client to reconnect;
the client library does, with its own jittered backoff on top.

A load balancer learns that a gateway is going away only from its health check: so the listener
stays open for `min_s` after the signal (`/readyz` answers 503, new upgrades are refused with 503),
long enough for the balancer's check to see the 503 and stop routing here, and the drain lasts at
least that long even with no client connected. Then the listener closes.

The phases, driven by the trio shell (`server.py`):

    SERVING --signal--> DRAINING --last client gone and min_s passed,--> STOPPED
                             |      or max(drain_s + grace, min_s)          ^
                             \\--second signal------------------------------/

On entering DRAINING the shell turns `/readyz` to 503 at once; while `listening(now)` it keeps the
listener; it closes `due(now)` clients, sleeps until `next_deadline()`, and repeats until `done`.
The second SIGTERM or SIGINT stops at once (every remaining client gets 1012 without waiting its
turn, and the listener closes).

Pure: time comes in as `now_s` (trio's clock in the shell); no trio, no sockets.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

CLOSE_CODE = 1012  # service restart: "reconnect", unlike 1001 going away
CLOSE_REASON = "server restarting; reconnect"
GRACE_S = 2.0  # after the last scheduled close: time for close handshakes before exiting


class Phase(enum.Enum):
    SERVING = "serving"
    DRAINING = "draining"
    STOPPED = "stopped"


def close_offsets(n: int, drain_s: float) -> list[float]:
    """Seconds after the drain starts at which each of `n` clients is closed: evenly spread,
    the first at 0, the last at drain_s * (n - 1) / n (so a drain never overruns drain_s)."""
    if drain_s < 0:
        raise ValueError(f"drain_s must be >= 0, got {drain_s}")
    return [drain_s * i / n for i in range(n)]


class Drain(Generic[K]):
    """The drain's schedule and phase for clients identified by `K` (the shell's connections)."""

    def __init__(self, drain_s: float, min_s: float = 0.0) -> None:
        if drain_s < 0:
            raise ValueError(f"drain_s must be >= 0, got {drain_s}")
        if min_s < 0:
            raise ValueError(f"min_s must be >= 0, got {min_s}")
        self.drain_s = drain_s
        self.min_s = min_s
        self.listen_until_s = float("inf")  # set by the first signal
        self._now_s = 0.0  # the latest time the shell told us
        self.phase = Phase.SERVING
        self._queue: list[tuple[float, K]] = []  # (close time, client), in close order
        self._next = 0
        self._gone: set[K] = set()
        self._deadline_s = 0.0

    @property
    def ready(self) -> bool:
        """What `/readyz` reports: false from the first signal on."""
        return self.phase is Phase.SERVING

    @property
    def done(self) -> bool:
        return self.phase is Phase.STOPPED

    def listening(self, now_s: float) -> bool:
        """Whether the listener stays open: until `min_s` after the first signal."""
        if self.phase is Phase.SERVING:
            return True
        return self.phase is Phase.DRAINING and now_s < self.listen_until_s

    def signal(self, now_s: float, clients_oldest_first: Iterable[K]) -> Phase:
        """A SIGTERM or SIGINT: the first starts the drain, the second stops at once."""
        self._now_s = max(self._now_s, now_s)
        if self.phase is Phase.SERVING:
            clients = list(clients_oldest_first)
            offsets = close_offsets(len(clients), self.drain_s)
            self._queue = [(now_s + dt, c) for dt, c in zip(offsets, clients, strict=True)]
            self.listen_until_s = now_s + self.min_s
            self._deadline_s = max(now_s + self.drain_s + GRACE_S, self.listen_until_s)
            self.phase = Phase.DRAINING
            self._check_done()
        else:
            self.phase = Phase.STOPPED
        return self.phase

    def due(self, now_s: float) -> list[K]:
        """Clients to close now (each returned once); all that remain once STOPPED."""
        self._now_s = max(self._now_s, now_s)
        out = []
        while self._next < len(self._queue) and (
            self.phase is Phase.STOPPED or self._queue[self._next][0] <= now_s
        ):
            client = self._queue[self._next][1]
            self._next += 1
            if client not in self._gone:
                out.append(client)
        if self.phase is Phase.DRAINING and now_s >= self._deadline_s:
            self.phase = Phase.STOPPED  # a client that ignores its close does not hold us
        self._check_done()
        return out

    def gone(self, client: K) -> None:
        """A client's connection ended (its close completed, or it left by itself)."""
        self._gone.add(client)
        self._check_done()

    def next_deadline(self) -> float | None:
        """When to call `due` again: the next close, the listener's end, or the grace
        deadline, whichever comes first; None when done."""
        if self.phase is not Phase.DRAINING:
            return None
        times = [self._deadline_s]
        if self._next < len(self._queue):
            times.append(self._queue[self._next][0])
        if self._now_s < self.listen_until_s:
            times.append(self.listen_until_s)
        return min(times)

    def _check_done(self) -> None:
        if (
            self.phase is Phase.DRAINING
            and self._now_s >= self.listen_until_s
            and all(c in self._gone for _, c in self._queue)
        ):
            self.phase = Phase.STOPPED
