"""One seeded multi-day run shared by the simulator tests (generated once per session)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from tickwire.simulators import Market, Universe
from tickwire.simulators.market import SESSION_S


@dataclass(frozen=True)
class Run:
    universe: Universe
    records: np.ndarray
    start_ns: int


def generate(n: int, sessions: int, *, seed: int, activity: float) -> Run:
    universe = Universe.synthetic(n, seed=2)
    start_ns = 1_700_000_000_000_000_000
    market = Market(universe, seed=seed, start_ns=start_ns, activity=activity, chunk_s=10.0)
    minutes = int(sessions * SESSION_S // 60)
    parts = [market.step(start_ns + k * 60_000_000_000) for k in range(1, minutes + 1)]
    return Run(universe, np.concatenate(parts), start_ns)


@pytest.fixture(scope="session")
def run() -> Run:
    """30 symbols over 10 sectors, two 6.5 h sessions, quiet activity (~3M records, ~15 s)."""
    return generate(30, 2, seed=5, activity=0.05)


@pytest.fixture(scope="session")
def make_run() -> Callable[..., Run]:
    """`generate` itself, for tests that need a run of their own (conftest is not importable)."""
    return generate
