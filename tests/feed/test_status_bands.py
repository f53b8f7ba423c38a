"""LULD band changes in the status log: in order with the statuses, each symbol's bands as they
stand, bounded like the statuses, and never a `/v1` message. Sans-IO."""

from __future__ import annotations

import math

import numpy as np

from tickwire.feed.hub.hub import Hub
from tickwire.feed.v1.status import StatusLog, StatusReader
from tickwire.simulators import Market, Universe
from tickwire.simulators.scenario import BAND_DTYPE, STATUS_DTYPE


def _band(ts: int, sym: int, up: float, down: float, indicator: str = "B") -> np.ndarray:
    rec = np.zeros(1, BAND_DTYPE)
    rec["ts"], rec["sym"], rec["up"], rec["down"] = ts, sym, up, down
    rec["indicator"] = ord(indicator) if indicator else 0
    return rec


def test_bands_stand_per_symbol_are_bounded_and_reach_no_v1_connection() -> None:
    u = Universe.default()
    hub = Hub(u, Market(u, seed=0).snapshot())
    log = StatusLog(np.array(u.symbols, dtype=object), max_recent=50)
    sub = hub.attach(lambda: None)
    hub.set_subscription(sub, True, np.empty(0, np.intp))  # a /v1 `*` subscriber
    reader = StatusReader.joining(log, sub)
    woken = []
    sub.wake = lambda: woken.append(1)  # type: ignore[method-assign]
    log.publish_bands(_band(1, 0, 105.0, 95.0, "A"), 0)
    assert woken and log.bands == {0: ((105.0, 95.0, ord("A")), 1)}
    halt = np.zeros(1, STATUS_DTYPE)
    halt["ts"], halt["sym"], halt["status"], halt["reason"] = 2, 0, 1, 2
    log.publish(halt, 0)
    # /v1 sends statuses only: a band change is the venues' (Alpaca's `lulds`)
    due = reader.due(log, sub)
    assert [(c.sym, c.status, c.band) for c in due] == [(0, 1, None)]
    for i in range(1000):  # bands moving all day, on two symbols
        log.publish_bands(_band(3 + i, i % 2, 100.0 + i, 90.0 + i), 0)
    assert len(log.changes) <= 100 and len(log) == 1002
    assert log.bands[0][0][:2] == (1098.0, 1088.0) and log.bands[1][0][:2] == (1099.0, 1089.0)
    log.publish_bands(_band(2000, 1, math.nan, math.nan, ""), 0)  # cleared
    assert set(log.bands) == {0}
    changes = log.changes
    assert changes[-1].band is not None and math.isnan(changes[-1].band[0])
    assert all(c.band is not None and c.text == b"" for c in changes[-10:])
    assert reader.due(log, sub) == []
