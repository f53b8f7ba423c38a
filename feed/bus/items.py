"""What a gateway's bus reader yields, sans-IO: flushes of records, and the items between them
(gaps, outages, status changes, scenario changes, level updates, whole books, LULD bands), with
`flush_items`, which places a flush's changes among its records as the producer published them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.bus import bands as bb
from tickwire.feed.bus import codec as bc
from tickwire.simulators import TickBatch
from tickwire.simulators.scenario import BAND_DTYPE, STATUS_DTYPE

_NO_STATUSES = np.empty(0, STATUS_DTYPE)


@dataclass(frozen=True, slots=True)
class BusGap:
    """Records were lost (`reason`); `snapshot` is the latest record per symbol to resend."""

    reason: str
    snapshot: TickBatch
    epoch: int
    offset: int | None = None  # the producer's stream offset of the next record, if it sends one
    halted: NDArray[np.void] = field(default_factory=lambda: _NO_STATUSES)  # halted now
    scenarios: list[str] = field(default_factory=list)  # the market scenarios playing now
    bands: NDArray[np.void] = field(default_factory=lambda: np.empty(0, BAND_DTYPE))  # now


@dataclass(frozen=True, slots=True)
class BusDown:
    """Redis stopped answering; the reader keeps trying and yields a `BusGap` when it is back."""

    reason: str


@dataclass(frozen=True, slots=True)
class BusStatuses:
    """Trading status changes (`simulators.scenario.STATUS_DTYPE` records) of a producer's
    market playing a scenario, after every flush yielded before them."""

    records: NDArray[np.void]


@dataclass(frozen=True, slots=True)
class BusBands:
    """LULD band changes (`simulators.scenario.BAND_DTYPE` records) of a producer's market
    playing a scenario, after every flush yielded before them."""

    records: NDArray[np.void]


@dataclass(frozen=True, slots=True)
class BusScenario:
    """A producer's market scenario started or ended (event time `ts`), after every flush
    yielded before it; `playing`: the scenarios playing after it."""

    name: str
    started: bool
    ts: int
    playing: list[str]


@dataclass(frozen=True, slots=True)
class BusLevels:
    """Level updates (`simulators.book.LEVEL_DTYPE`, event order) of a producer's market with
    books, before the records yielded after them."""

    records: NDArray[np.void]


@dataclass(frozen=True, slots=True)
class BusBooks:
    """Every symbol's whole book (`ladder_dtype(book_depth)` records) after everything yielded
    before it: what a gateway that asked (`want_books`) mends its books with."""

    ladders: NDArray[np.void]


@dataclass(frozen=True, slots=True)
class BusLevelsLost:
    """Level updates were left out here (the producer writes them only while some gateway
    mirrors books): books mirrored from them are stale until the next `BusBooks`."""


BusItem: TypeAlias = (
    TickBatch
    | BusGap
    | BusDown
    | BusStatuses
    | BusBands
    | BusScenario
    | BusLevels
    | BusBooks
    | BusLevelsLost
)


def flush_items(
    flush: TickBatch,
    offset: int | None,
    statuses: bytes,
    scenarios: list[tuple[int, BusScenario]] | None = None,
    levels: bytes = b"",
    bands: bytes = b"",
) -> list[tuple[BusItem, int | None]]:
    """A flush as items, with its status changes (`codec.encode_statuses`), scenario changes
    (by records before them) and level updates (`codec.encode_levels`) where they fall: its
    records before them (at their stream offset), then the changes (a start before the
    statuses, an end after; band changes after the statuses (`bands.encode_bands`); level
    updates last: they precede the ticks after them), and so on."""
    if not statuses and not scenarios and not levels and not bands:
        return [(flush, offset)]
    bat, brecords = bb.decode_bands(bands)
    at, records = bc.decode_statuses(statuses) if statuses else (np.empty(0, np.uint64), None)
    lat, lrecords = bc.decode_levels(levels)
    scenarios = scenarios or []
    out: list[tuple[BusItem, int | None]] = []
    done = 0
    for cut in sorted({*at.tolist(), *lat.tolist(), *bat.tolist(), *(a for a, _ in scenarios)}):
        if cut > done:
            out.append((flush[done:cut], None if offset is None else offset + done))
            done = cut
        out += [(s, None) for a, s in scenarios if a == cut and s.started]
        if records is not None and (at == cut).any():
            out.append((BusStatuses(records[at == cut]), None))
        if (bat == cut).any():
            out.append((BusBands(brecords[bat == cut]), None))
        out += [(s, None) for a, s in scenarios if a == cut and not s.started]
        if (lat == cut).any():
            out.append((BusLevels(lrecords[lat == cut]), None))
    if done < len(flush):
        out.append((flush[done:], None if offset is None else offset + done))
    return out


def halted_changes(
    published: dict[int, bytes], halted: NDArray[np.void], now_ns: int
) -> NDArray[np.void]:
    """After a gap: the changes from what a gateway published (`published`, symbol id -> status
    record of each halted one) to the producer's `halted` (the updates in between are lost): a
    resumption at `now_ns` for each symbol no longer halted, the halt of each newly halted one."""
    now = {int(rec["sym"]): rec.tobytes() for rec in halted}
    out = [rec for sym, rec in now.items() if published.get(sym) != rec]
    for sym in sorted(set(published) - set(now)):
        rec = np.frombuffer(published[sym], STATUS_DTYPE).copy()
        rec["status"], rec["ts"] = 0, now_ns
        out.append(rec.tobytes())
    return np.frombuffer(b"".join(out), STATUS_DTYPE).copy()
