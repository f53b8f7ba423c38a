"""The server's one clock: it runs every open connection's timers when they are due.

A connection's machine says when it next has something to do (`core.next_deadline(now)`: a
heartbeat, throttled data, the stall limit, the end of a close handshake). Each connection's
task waiting for that with a cancel scope of its own would cost every idle connection ~0.9 KB
(the scope, its status and trio's deadline entry); instead a connection tells the clock (`at`)
and the clock's one task calls it back (`Timed.on_timer`) at that time, in its own task, as
the generator calls `deliver`. A deadline that moves later needs no call: the earlier alarm
comes, finds nothing due, and the connection sets the next. An entry that a later `at`
replaced is skipped when it comes up. The task exists while some alarm is set.

Trio shell code (it waits); no state of any connection but its alarm. Never imports the
connection module.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Protocol

import trio


class Timed(Protocol):
    """What the clock needs of a connection (`connection.Connection` is one)."""

    alarm: float  # the deadline the clock will call it at (math.inf: none)

    def on_timer(self, now: float) -> None:
        """Its alarm is due: run its machine's timers (never raises)."""


class Clock:
    """Alarms for many connections, and the one task that rings them."""

    __slots__ = ("_heap", "_kick", "_next", "_nursery", "_order", "running")

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery  # the server's: the clock's task runs there
        self._heap: list[tuple[float, int, Timed]] = []
        self._order = itertools.count()  # ties ring in the order they were set
        self._next = math.inf  # what the task sleeps until
        self._kick: trio.Event | None = None  # set: an earlier alarm came, look again
        self.running = False

    def at(self, conn: Timed, deadline: float) -> None:
        """Call `conn.on_timer` at `deadline`, unless it already has an earlier alarm."""
        if deadline >= conn.alarm:
            return
        conn.alarm = deadline
        heapq.heappush(self._heap, (deadline, next(self._order), conn))
        if not self.running:
            self.running = True
            self._nursery.start_soon(self._run)
        elif deadline < self._next and self._kick is not None:
            self._kick.set()

    def __len__(self) -> int:
        """Alarms set, including replaced ones not yet come up."""
        return len(self._heap)

    async def _run(self) -> None:
        heap = self._heap
        try:
            while heap:
                now = trio.current_time()
                due = []  # the alarms set by these calls ring next turn, after a checkpoint
                while heap and heap[0][0] <= now:
                    due.append(heapq.heappop(heap))
                for deadline, _, conn in due:
                    if deadline == conn.alarm:  # else replaced by an earlier one
                        conn.alarm = math.inf
                        conn.on_timer(now)
                if not heap:
                    break
                self._next = heap[0][0]
                with trio.move_on_at(self._next):
                    kick = self._kick = trio.Event()
                    await kick.wait()
                self._kick = None
        finally:
            self.running, self._next, self._kick = False, math.inf, None
