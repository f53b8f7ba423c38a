"""The parts a server is composed of: a `Source` of batches, the `Sink`s that consume them, and
the `Feed` (the server) a source drives. Protocols and plain data only.

A plain server is a market source with the hub as its sink; a bus producer adds a `BusSink`
(its gateways' clients want the batches too; it is its producer's upstream, asking the server
for a snapshot and the market source for a wake-up); a bus gateway replaces the market with a
`BusSource`. The compositions are built in `gateway.py` (the bus roles) and by `Server` itself
(its own market when given no source). Imports nothing of the server: every part imports this.
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import trio
from numpy.typing import NDArray

from tickwire.feed.hub.books import Books
from tickwire.simulators import Universe
from tickwire.simulators.ticks import TickBatch


@dataclass(frozen=True, slots=True)
class Opening:
    """What a source starts a server with."""

    universe: Universe
    snapshot: TickBatch  # the latest record per symbol
    start_ns: int  # the event time at start: the server's clock is this plus trio's time since
    epoch: str | None = None  # this run of the stream; None: the hub draws its own
    offset: int | None = None  # the next record's stream offset (with `continued`)
    # The stream continues one numbered elsewhere (a bus producer's): the hub takes its epoch
    # and offset, and the snapshot is data to serve (ready before the first batch comes).
    continued: bool = False
    # The trio time at which event time was `start_ns` (None: when the server opens). A market
    # source takes both before it builds its market, so event time keeps to the wall clock.
    start_s: float | None = None
    books: Books | None = None  # the order books the source feeds (a market with --book-depth)


class Feed(Protocol):
    """What a source drives: the server it feeds (`server.Server` is one)."""

    @property
    def watched(self) -> bool:
        """Whether any client of this server subscribes (on `/v1` or a venue)."""

    @property
    def wanted(self) -> bool:
        """Whether anyone wants batches at the cadence: a client here, or a sink's readers."""

    @property
    def connections(self) -> Sized:
        """The open connections."""

    def latest(self) -> TickBatch:
        """The latest record per symbol, as published so far (a copy)."""
        ...

    def caught_up(self) -> bool:
        """Some subscriber holds symbols and every one has taken all there is (a replay paced
        by its readers steps only then)."""

    def now_ns(self) -> int:
        """Event time: the opening's `start_ns`, advanced by trio's (fakeable) clock."""

    def publish(self, batch: TickBatch, offset: int | None = None) -> None:
        """Hand `batch` to every sink, at stream `offset` (None: the next one); no delivery."""

    def publish_statuses(self, records: NDArray[np.void]) -> None:
        """Trading status changes (halts, resumptions) after the batches published so far."""

    def publish_bands(self, records: NDArray[np.void]) -> None:
        """LULD band changes (`simulators.scenario.BAND_DTYPE`), as `publish_statuses`."""

    def publish_scenario(self, name: str, active: bool, ts: int) -> None:
        """A market scenario started (`active`) or ended at event time `ts`, after the batches
        published so far."""

    async def deliver(self, batch: TickBatch | None = None, step_s: float = 0.0) -> None:
        """Send to every connection the last publishes woke; then, given the `batch` just
        published, observe its step (`step_s` seconds, and the batch's age if it was sent)."""

    async def push(self, batch: TickBatch, offset: int | None = None) -> None:
        """An upstream's flush: `publish` it at `offset`, then `deliver` it, as a step."""

    async def resync(self, snapshot: TickBatch, epoch: str, offset: int | None) -> None:
        """The source lost updates: every subscriber gets a `gap` notice and `snapshot`."""

    def overrun(self) -> None:
        """Count one cadence overrun (the source could not keep the cadence)."""

    async def shutdown(self, code: int = ..., reason: str = ...) -> None:
        """Close every connection with `code` and `reason`, and stop."""


class Source(Protocol):
    """Where the batches come from: the market, a replay, a bus upstream.

    The server calls `open()` once, when it is built, and runs `run(feed)` as a task for as long
    as it serves: a stepped source (the market, a replay) steps at the cadence there and
    `push`es each batch; a pushing one (a bus gateway's reader) pushes what it receives.
    """

    def open(self) -> Opening:
        """The universe, the opening snapshot, the event time, the epoch and the offset."""
        ...

    async def run(self, feed: Feed, *, task_status: trio.TaskStatus[None]) -> None:
        """Produce batches into `feed` until cancelled; `started()` once producing."""

    def refresh(self) -> None:
        """Before a snapshot or stats: bring the state up to now (a market stepping rarely)."""

    @property
    def paced(self) -> bool:
        """Whether it waits for its readers (a replay at speed 0): never stale while it waits."""

    @property
    def finished(self) -> bool:
        """Whether it has served its last record (a replay without --loop)."""

    def not_ready(self) -> str | None:
        """Why `/readyz` must say no (e.g. the bus is down), or None."""
        ...

    def statistics(self) -> dict[str, Any]:
        """Figures merged into the server's `stats` (and `/metrics`)."""
        ...


class Sink(Protocol):
    """What consumes the batches: the hub (and the venues' fan-out), a bus producer."""

    def attach(self, feed: Feed) -> None:
        """The server whose batches this sink takes: once, when the server is built."""

    def publish(self, batch: TickBatch, offset: int) -> None:
        """Take `batch`, whose first record has stream offset `offset`. Must not block: it runs
        in the generator's step, and the batch is never written again (records on the grid)."""

    def publish_statuses(self, records: NDArray[np.void], offset: int) -> None:
        """Trading status changes (a scenario's halts and resumptions) after the records
        published so far, at stream `offset`. Must not block, as `publish`."""

    def publish_bands(self, records: NDArray[np.void], offset: int) -> None:
        """LULD band changes (`simulators.scenario.BAND_DTYPE`), as `publish_statuses`."""

    def publish_scenario(self, name: str, active: bool, ts: int, playing: list[str]) -> None:
        """A market scenario started (`active`) or ended at event time `ts` after the records
        published so far; `playing`: those playing after it. Must not block, as `publish`."""

    @property
    def watched(self) -> bool:
        """Whether readers beyond this server want the batches at the cadence (a bus
        producer: some gateway has subscribers). The hub's own clients are the server's."""

    def statistics(self) -> dict[str, Any]:
        """Figures merged into the server's `stats` (and `/metrics`)."""
        ...
