"""The status log stays bounded over a long LULD run: each symbol's latest status and a window
of recent changes; readers that keep up see every change, in order. Sans-IO."""

from __future__ import annotations

import numpy as np

from tickwire.feed.hub.hub import Hub
from tickwire.feed.v1.status import MAX_RECENT, StatusLog, StatusReader
from tickwire.simulators import Market, Universe
from tickwire.simulators.scenario import STATUS_DTYPE


def _record(ts: int, sym: int, status: int) -> np.ndarray:
    rec = np.zeros(1, STATUS_DTYPE)
    rec["ts"], rec["sym"], rec["status"], rec["reason"] = ts, sym, status, 2
    return rec


def test_a_long_run_keeps_a_bounded_window_and_the_latest_status() -> None:
    u = Universe.default()
    hub = Hub(u, Market(u, seed=0).snapshot())
    log = StatusLog(np.array(u.symbols, dtype=object), max_recent=100)
    keeping_up, behind = hub.attach(lambda: None), hub.attach(lambda: None)
    for sub in (keeping_up, behind):
        hub.set_subscription(sub, True, np.empty(0, np.intp))
    fast, slow = StatusReader.joining(log, keeping_up), StatusReader.joining(log, behind)
    n, halted = 20_000, set()
    seen = []
    for i in range(n):  # symbol i % 53 halts, then resumes at its next turn: LULD all day
        sym = i % len(u)
        status = 0 if sym in halted else 1
        halted ^= {sym}
        log.publish(_record(i, sym, status), hub.history.head)
        seen += [c.ts for c in fast.due(log, keeping_up)]
        assert len(log.changes) <= 200 and len(log.offsets) == len(log.changes)
    assert seen == list(range(n))  # a reader that keeps up misses nothing
    assert len(log) == n and log.base >= n - 200
    assert set(log.current) == halted  # the latest status of every symbol stays
    assert log.halted_names() == [log.names[s] for s in sorted(halted)]
    late = slow.due(log, behind)  # let go past its place: from the oldest change kept
    assert [c.ts for c in late] == list(range(log.base, n))
    assert log.index_from(0) == log.base and log.index_from(10**9) == n
    assert [c.ts for c in log.between(0, log.base + 2)] == [log.base, log.base + 1]
    assert log.between(n, n) == [] and log.between(0, 0) == []


def test_the_default_window() -> None:
    u = Universe.default()
    log = StatusLog(np.array(u.symbols, dtype=object))
    for i in range(3 * MAX_RECENT):
        log.publish(_record(i, i % len(u), 1 - (i // len(u)) % 2), i)
    assert MAX_RECENT <= len(log.changes) <= 2 * MAX_RECENT and len(log) == 3 * MAX_RECENT
