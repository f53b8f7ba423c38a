"""The bench row of injected faults' cost: both kinds of connection send the same messages, and
the figure is a real per-message CPU beside its baseline."""

from __future__ import annotations

import math

from tickwire.feed.bench.faults import fault_rows


def test_fault_row_measures_both_paths_on_the_same_takes() -> None:
    (r,) = fault_rows(quick=True)
    assert r["status"] == "ok" and r["unit"] == "ns" and r["target"] == "<= 1.1x"
    assert r["name"].startswith("fault injection, N=20 '*' on /v1 JSON")
    assert 100 < r["baseline_value"] < 1e6 and 100 < r["value"] < 1e6
    assert math.isfinite(r["ratio"]) and 0.5 < r["ratio"] < 2
    assert int(r["note"].split()[0]) > 1000  # messages each kind sent
