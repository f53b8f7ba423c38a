"""Trading status on `/v1`: the halts and resumptions a market scenario makes, as `status`
messages in order with the records.

`StatusLog` owns the server's status changes: each sits at the stream offset it was published
at (after every record before it in event time, before every record after), and each symbol's
current status, for replies. A connection keeps its place in the log (`StatusReader`); around
each take from the hub it sends the changes its cursor has passed for the symbols it holds:
a resumption before the take's records, a halt after them (a halted symbol has no record
between its halt and its resumption, so per symbol that is event order). Empty, as without a
scenario, it costs a connection one comparison per take. Its memory is bounded: the latest
status of each symbol and a window of recent changes (`MAX_RECENT`). The log also says when a
scenario starts and ends (`scenario` messages, to every connection, `sym` -1 in the log) and
which are playing now (`scenarios`, for the welcome). It also keeps a scenario's LULD bands
(`publish_bands`, `simulators.scenario.BAND_DTYPE` records): each change in the same order, as a
`Change` with its `band` (no `/v1` message: the venues that have them say them, Alpaca's
`lulds`), and each symbol's bands as they stand (`bands`). No trio.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from tickwire.feed.hub.subscriber import Pending, Subscriber
from tickwire.feed.protocol import ticks_body
from tickwire.feed.v1 import state as st
from tickwire.feed.ws.frames import OP_TEXT, frame
from tickwire.simulators.ticks import TickBatch

STATUS_NAMES = ("trading", "halted")  # by `simulators.scenario.Status` value
REASON_NAMES = {1: "scenario", 2: "luld"}  # by `simulators.scenario.HaltReason` value


def scenario_message(name: str, active: bool, ts: int, playing: list[str]) -> dict[str, Any]:
    """`{"type":"scenario","name":..,"state":"started"|"ended","ts":..,"active":[..]}`:
    `active` the scenarios playing after this change, oldest first."""
    state = "started" if active else "ended"
    return {"type": "scenario", "name": name, "state": state, "ts": ts, "active": playing}


def status_message(symbol: str, status: int, reason: int, ts: int) -> dict[str, Any]:
    """`{"type":"status","symbol":..,"status":"halted"|"trading","reason":..,"ts":..}`."""
    return {
        "type": "status",
        "symbol": symbol,
        "status": STATUS_NAMES[status],
        "reason": REASON_NAMES.get(reason, "other"),
        "ts": ts,
    }


# A symbol's LULD band: limit up and down prices, the indicator's ASCII code (0: no bands).
Band = tuple[float, float, int]


@dataclass(frozen=True, slots=True)
class Change:
    offset: int  # the stream position it was published at
    sym: int  # -1: a scenario's start or end, for every connection
    status: int
    reason: int
    ts: int
    text: bytes  # the encoded message (b"": a band change, which `/v1` does not send)
    band: Band | None = None  # a LULD band change: (up, down, indicator); else None


# Status changes kept for readers behind: a long LULD run makes them without end. Past twice
# this many, the oldest are let go down to this many (amortised: one cut per MAX_RECENT).
MAX_RECENT = 4096


@dataclass(eq=False)
class StatusLog:
    """The stream's recent status changes, by offset, and each symbol's current status.

    Changes are numbered from the first one ever (`len` is the next number); only the latest
    `max_recent` to twice that are kept (`changes[i]` is number `base + i`). A reader so far
    behind that its next change was let go resumes at the oldest kept (the hub's history has
    let its records go long before); a symbol's status as it stands is always in `current`.
    """

    names: NDArray[np.object_]
    changes: list[Change] = field(default_factory=list)  # the recent window, from `base`
    offsets: list[int] = field(default_factory=list)
    current: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # halted symbols
    bands: dict[int, tuple[Band, int]] = field(default_factory=dict)  # (band, ts), by symbol
    readers: set[Subscriber] = field(default_factory=set)  # to wake on a change
    base: int = 0  # the number of the first change kept
    max_recent: int = MAX_RECENT
    scenarios: list[str] = field(default_factory=list)  # playing now, oldest first

    def __len__(self) -> int:
        return self.base + len(self.changes)

    def between(self, start: int, stop: int) -> list[Change]:
        """Changes number `start` (or the oldest kept) up to `stop`, as the readers count."""
        return self.changes[max(start - self.base, 0) : max(stop - self.base, 0)]

    def publish(self, records: NDArray[np.void], offset: int) -> None:
        """Status records (`simulators.scenario.STATUS_DTYPE`) at stream position `offset`;
        wakes every reader that holds one of their symbols."""
        for r in records.tolist():
            ts, sym, status, reason = int(r[0]), int(r[1]), int(r[2]), int(r[3])
            msg = status_message(str(self.names[sym]), status, reason, ts)
            self._add(Change(offset, sym, status, reason, ts, orjson.dumps(msg)))
            if status:
                self.current[sym] = (status, reason, ts)
            else:
                self.current.pop(sym, None)
        syms = records["sym"].astype(np.intp)
        for sub in self.readers:
            if sub.wildcard or sub.find(syms)[0].any():
                sub.wake()

    def publish_bands(self, records: NDArray[np.void], offset: int) -> None:
        """LULD band changes (`simulators.scenario.BAND_DTYPE`) at stream position `offset`;
        wakes every reader that holds one of their symbols."""
        for ts, sym, indicator, _, up, down in records.tolist():
            band = (float(up), float(down), int(indicator))
            self._add(Change(offset, int(sym), 0, 0, int(ts), b"", band))
            if indicator:
                self.bands[int(sym)] = (band, int(ts))
            else:
                self.bands.pop(int(sym), None)
        syms = records["sym"].astype(np.intp)
        for sub in self.readers:
            if sub.wildcard or sub.find(syms)[0].any():
                sub.wake()

    def publish_scenario(self, name: str, active: bool, ts: int, offset: int) -> None:
        """Scenario `name` started (`active`) or ended at event time `ts`, at stream position
        `offset`; wakes every reader (every connection hears of it)."""
        if active:
            self.scenarios.append(name)
        elif name in self.scenarios:
            self.scenarios.remove(name)
        msg = scenario_message(name, active, ts, list(self.scenarios))
        # status 0 / 1 as a resumption / halt: a latest-state take sends a start before its
        # records and an end after them (`interleave`)
        self._add(Change(offset, -1, int(not active), 0, ts, orjson.dumps(msg)))
        for sub in self.readers:
            sub.wake()

    def _add(self, change: Change) -> None:
        self.changes.append(change)
        self.offsets.append(change.offset)
        if len(self.changes) > 2 * self.max_recent:
            cut = len(self.changes) - self.max_recent
            del self.changes[:cut], self.offsets[:cut]
            self.base += cut

    def index_from(self, offset: int) -> int:
        """The first change at or after stream position `offset`."""
        return self.base + bisect.bisect_left(self.offsets, offset)

    def halted(self, ids: NDArray[np.intp]) -> list[bytes]:
        """The message of each symbol of `ids` halted now, as it stands."""
        out = []
        held = set(ids.tolist()) if len(self.current) else set()
        for sym, (status, reason, ts) in sorted(self.current.items()):
            if sym in held:
                out.append(orjson.dumps(status_message(str(self.names[sym]), status, reason, ts)))
        return out

    def halted_names(self) -> list[str]:
        return [str(self.names[s]) for s in sorted(self.current)]


def with_halted(action: st.Action, log: StatusLog) -> st.Action:
    """A `symbols` reply with `halted`: the symbols halted now (other actions as they are)."""
    if not isinstance(action, st.Reply) or not action.text.startswith('{"type":"symbols"'):
        return action
    halted = orjson.dumps(log.halted_names()).decode()
    return st.Reply(f'{action.text[:-1]},"halted":{halted}}}')


def framed(texts: list[bytes]) -> bytes:
    """JSON messages as WebSocket text frames, back to back."""
    return b"".join(frame(t, OP_TEXT) for t in texts)


@dataclass(slots=True)
class StatusReader:
    """One connection's place in the log: the changes before `next` went out (or were not
    its to send)."""

    next: int = 0

    @classmethod
    def joining(cls, log: StatusLog | None, sub: Subscriber) -> StatusReader:
        """`sub`'s place in `log` from now on (woken by its changes); no log, no changes."""
        if log is None:
            return cls()
        log.readers.add(sub)
        return cls(len(log))

    def leave(self, log: StatusLog | None, sub: Subscriber) -> None:
        if log is not None:
            log.readers.discard(sub)

    def due(self, log: StatusLog, sub: Subscriber) -> list[Change]:
        """The changes of `sub`'s symbols its cursor has passed (a latest-state reader: all),
        from the last call on. Those its cursor has not reached wait."""
        out: list[Change] = []
        base = log.base
        i, n = max(self.next - base, 0), len(log.changes)
        changes, after = log.changes, sub.cursor
        while i < n and (changes[i].offset <= after or sub.latest):
            c = changes[i]
            if c.band is not None:  # not a `/v1` message
                pass
            elif c.sym < 0 or sub.wildcard or sub.find(np.array([c.sym], np.intp))[0][0]:
                out.append(c)
            i += 1
        self.next = base + i
        return out

    def frames(
        self,
        log: StatusLog,
        sub: Subscriber,
        pending: Pending | None,
        before: int,
        ticks_frame: Callable[[Pending], bytes],
    ) -> tuple[bytes, int]:
        """A take (`pending`, from cursor `before`) with the changes due, in stream order, as
        WebSocket frames (the data ones by `ticks_frame`), and how many messages they are."""
        parts = interleave(pending, self.due(log, sub), before, sub.latest, log.names)
        out = [frame(x, OP_TEXT) if isinstance(x, bytes) else ticks_frame(x) for x in parts]
        return b"".join(out), len(parts)


def interleave(
    pending: Pending | None,
    changes: list[Change],
    before: int,
    latest: bool,
    names: NDArray[np.object_],
) -> list[Pending | bytes]:
    """A take's records (`pending`, from cursor `before`) and the status changes due with it,
    in stream order: the take is cut where a change falls among its records (a change at ts t
    sits after every record before t). Latest states have no stream order: a resumption goes
    before them, a halt after (a halted symbol's latest state is from before its halt)."""
    early = [c.text for c in changes if c.offset <= before]
    rest = [c for c in changes if c.offset > before]
    if pending is None:
        return [*early, *(c.text for c in rest)]
    if latest:
        return [
            *early,
            *(c.text for c in rest if not c.status),
            pending,
            *(c.text for c in rest if c.status),
        ]
    out: list[Pending | bytes] = list(early)
    records = pending.records
    cuts = np.searchsorted(records["ts"], [c.ts for c in rest], side="left").tolist()
    done = 0
    for c, cut in zip(rest, cuts, strict=True):
        if cut > done:
            out.append(_part(pending, records[done:cut], names, offset=c.offset, conflated=0))
            done = cut
        out.append(c.text)
    if done == 0:
        out.append(pending)
    elif done < len(records):
        out.append(_part(pending, records[done:], names, pending.offset, pending.conflated))
    return out


def _part(
    pending: Pending, records: TickBatch, names: NDArray[np.object_], offset: int, conflated: int
) -> Pending:
    return replace(
        pending,
        records=records,
        json_body=lambda: ticks_body(records, names),
        conflated=conflated,
        ids=None,
        offset=offset,
    )
