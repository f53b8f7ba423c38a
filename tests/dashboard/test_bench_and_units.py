"""The bench function's shape, and the pure parts: formatting, state ingest, settings file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tickwire.dashboard import config as cfg
from tickwire.dashboard import fmt
from tickwire.dashboard.bench import measure
from tickwire.dashboard.sparkcache import SparkCache
from tickwire.dashboard.state import SPARK_SLOTS, MarketState
from tickwire.simulators import Universe
from tickwire.simulators.ticks import TICK_DTYPE


def test_bench_reports_frame_times_and_fps() -> None:
    result = measure(rows=10, size=(100, 30), seconds=0.5, fps=20, feed_hz=200)
    assert result["frames"] > 0 and result["frame_ms_median"] > 0
    assert result["frame_ms_p99"] >= result["frame_ms_median"]
    assert 0 < result["achieved_fps"] <= 25


def test_format_helpers() -> None:
    assert fmt.decimals(0.01) == 2 and fmt.decimals(0.0001) == 4 and fmt.decimals(1) == 0
    assert fmt.compact(1234) == "1.2k" and fmt.compact(12_345_678) == "12.3M"
    assert fmt.age(850_000) == "850us" and fmt.age(12_000_000) == "12ms"
    assert fmt.age(3_400_000_000) == "3.4s"
    assert fmt.sparkline(np.array([1.0, 2.0, math.nan, 3.0]), 5) == " ▁▅ █"


def test_spark_cache_draws_exactly_what_fmt_sparkline_draws() -> None:
    """The incremental sparkline against the plain one over ticks, gaps, ties and rolls."""
    state = MarketState(Universe.default().reference()[:3], now_s=0.0)
    rng = np.random.default_rng(7)
    cache = SparkCache()
    for _ in range(3000):
        sid = int(rng.integers(3))
        r = rng.random()
        if r < 0.05:  # the bucket rolls: the newest value carries over
            current = state.spark[:, state.spark_head].copy()
            state.spark_head = (state.spark_head + 1) % SPARK_SLOTS
            state.spark[:, state.spark_head] = current
        elif r < 0.07:
            state.spark[sid, state.spark_head] = math.nan
        else:
            state.spark[sid, state.spark_head] = 100.0 if r > 0.9 else round(rng.normal(100, 2), 2)
        for width in (16, 40, 2, 1):
            values = state.sparkline_values(sid, width)
            known = values[np.isfinite(values)]
            rising = known.size == 0 or bool(known[-1] >= known[0])
            assert cache.get(state, sid, width) == (fmt.sparkline(values, width), rising)


def test_state_apply_flashes_jumps_and_history() -> None:
    state = MarketState(Universe.default().reference(), now_s=0.0)
    ticks = np.zeros(2, TICK_DTYPE)
    ticks["sym"] = [0, 1]
    ticks["seq"] = [1, 1]
    ticks["bid"], ticks["ask"], ticks["last"] = [10.0, 20.0], [10.01, 20.01], [10.0, 20.0]
    state.apply(ticks, 0.0)
    later = ticks.copy()
    later["seq"] = [4, 2]  # symbol 0 skipped two updates (conflated)
    later["last"] = [10.01, 19.99]
    state.apply(later, 0.1)
    assert state.flashing(0, 0.2) == 1 and state.flashing(1, 0.2) == -1
    assert state.flashing(0, 5.0) == 0
    assert list(state.jumps[:2]) == [2, 0]
    hist, _vol = state.history(0)
    assert hist.shape == (2, 3) and hist[-1, 2] == 10.01
    assert set(state.take_dirty()) == {0, 1} and state.take_dirty().size == 0
    assert state.advance(1.5) and math.isfinite(state.sparkline_values(0, 4)[-1])


def test_settings_file_round_trip_and_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dashboard.json"
    settings = cfg.DashboardConfig(watchlist=["AAPL"], sort="volume", reverse=True, fps=30)
    assert cfg.save(settings, path) is None
    loaded, warning = cfg.load(path)
    assert warning is None and loaded == settings
    path.write_text("{not json")
    loaded, warning = cfg.load(path)
    assert loaded == cfg.DashboardConfig() and warning and "ignored" in warning
