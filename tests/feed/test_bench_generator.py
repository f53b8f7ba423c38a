"""The generator rows and their baselines time the thread's CPU, not the wall clock: each is
single-threaded work, and on a shared machine the wall clock also counts the time the OS gave
other processes (measured: the 500-symbol row varied 31% run to run beside one busy loop on two
cores, 10% on the thread's CPU)."""

from __future__ import annotations

import itertools
import time

import pytest

from tickwire.feed.bench import generator
from tickwire.feed.bench._genbaselines import naive_loop, numpy_per_step
from tickwire.simulators import Universe


def test_the_model_and_both_baselines_time_the_threads_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cpu = itertools.count(0.0, 0.5)  # each reading: half a CPU second later
    wall = itertools.count(0.0, 100.0)  # while the wall clock runs far ahead (a busy machine)
    monkeypatch.setattr(time, "thread_time", lambda: next(cpu))
    monkeypatch.setattr(time, "perf_counter", lambda: next(wall))
    monkeypatch.setattr(time, "monotonic", lambda: next(wall))
    universe = Universe.synthetic(20, seed=1)
    ticks, secs = generator._model(20, 0.01, 0.0)
    assert ticks > 0 and secs == 0.5
    assert naive_loop(universe, 0.01, 0.0)[1] == 0.5
    assert numpy_per_step(universe, 0.01, 0.0)[1] == 0.5
