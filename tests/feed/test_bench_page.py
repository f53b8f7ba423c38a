"""The web page's bench row: frame statistics from requestAnimationFrame timestamps."""

from __future__ import annotations

import os
import shutil

import pytest

from tickwire.feed.bench.page import _frames, measure, page_rows


def test_steady_60_fps_drops_nothing() -> None:
    ts = [i * 1000 / 60 for i in range(61)]
    got = _frames(ts)
    assert got["fps"] == pytest.approx(60.0)
    assert got["dropped_pct"] == 0.0


def test_missed_frames_are_counted_from_long_gaps() -> None:
    step = 1000 / 60
    ts = [i * step for i in range(10)]
    ts += [ts[-1] + 3 * step + i * step for i in range(10)]  # one gap of 3 intervals: 2 missed
    got = _frames(ts)
    assert got["dropped_pct"] == pytest.approx(100 * 2 / (19 + 2))
    assert got["fps"] == pytest.approx(1000 * 19 / (ts[-1] - ts[0]))


def test_no_frames() -> None:
    assert _frames([1.0]) == {"fps": 0.0, "dropped_pct": 100.0}


def test_quick_run_leaves_the_page_out() -> None:
    [only] = page_rows(quick=True)
    assert only["status"] == "n/a" and "not in --quick" in only["note"]


@pytest.mark.slow
def test_rows_measured_in_chromium() -> None:
    if shutil.which("chromium") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the page's bench rows need chromium")
        pytest.skip("the page's bench rows need chromium (apt-get install chromium)")
    rows = measure(seconds=1.0)
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"], rows
    fps, dropped, busy = (r["value"] for r in rows)
    assert fps > 0 and 0 <= dropped <= 100 and 0 < busy <= 100
    assert rows[0]["baseline_value"] > 0
