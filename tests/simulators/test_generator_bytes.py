"""The generator's records without books: the same bytes for a seed as before its fast paths.

Digests of the records (and the final snapshot) taken with the plain numpy generator, before
its passes were fused (row-by-row path sums, records gathered whole, prices as ticks / scale,
events' print and volume read from one state array): a seed must give these same bytes. The
cases cover both path sums (wide and narrow universes), one scale and mixed scales (crypto),
and quoted sizes thinned by a scenario.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from tickwire.simulators import Market, Universe
from tickwire.simulators._events import MAX_SIZE, SIZE_TAIL, trade_lots
from tickwire.simulators.scenario import parse

S = 10**9
DROUGHT = '[[event]]\nkind = "drought"\nat = "1s"\nduration = "3s"\nspread = 3\nthin = 0.2\n'


def _digest(market: Market, until_ns: int, step_ns: int) -> str:
    """sha256 (16 hex digits) of every record stepped to `until_ns`, then the snapshot."""
    h = hashlib.sha256()
    now = market.now_ns
    while now < until_ns:
        now += step_ns
        h.update(market.step(now).tobytes())
    h.update(market.snapshot().tobytes())
    return h.hexdigest()[:16]


def _case(case: str) -> str:
    if case == "5000 symbols":  # one 100 ms cell a chunk, path summed row by row
        return _digest(Market(Universe.synthetic(5000, seed=1), seed=1), 2 * S, 1_000_000)
    if case == "500 symbols":
        m = Market(Universe.synthetic(500, seed=1), seed=2, activity=2.0)
        return _digest(m, 3 * S, 7_000_000)
    if case == "crypto":  # a scale per pair: prices as ticks * units / scale
        m = Market(Universe.crypto_pairs(), seed=4, session="24h")
        return _digest(m, 3 * S, 50_000_000)
    u = Universe.synthetic(6, seed=1)  # thinner quoted sizes while the drought plays
    m = Market(u, 2, 0, session="24h", chunk_s=1.0, scenario=parse(DROUGHT, u))
    return _digest(m, 5 * S, 100_000_000)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("5000 symbols", "07c19e2dc467b90d"),
        ("500 symbols", "eb3af14edc858969"),
        ("crypto", "26b97c09b3e6cf0f"),
        ("drought", "8afaede7296f8583"),
    ],
)
def test_a_seed_gives_the_bytes_it_gave(case: str, expected: str) -> None:
    assert _case(case) == expected


def test_trade_lots_are_what_rng_pareto_makes_of_the_same_draws() -> None:
    tail = np.minimum(np.ceil(np.random.default_rng(3).pareto(SIZE_TAIL, 10**6) + 1.0), MAX_SIZE)
    lots = trade_lots(np.random.default_rng(3).standard_exponential(10**6))
    assert lots.dtype == np.int64
    assert np.array_equal(lots, tail)


def test_trade_lots_round_up_as_libm_does_next_to_whole_numbers() -> None:
    """Draws whose Pareto value is a whole number or an ulp from one: the vector expm1 may
    land on the other side of it (on an AVX-512 machine it does for some of these), libm's (the
    one `rng.pareto` calls) decides."""
    e = np.log1p(np.arange(1.0, 20_001.0)) * SIZE_TAIL
    e = np.concatenate([np.nextafter(e, 0), e, np.nextafter(e, np.inf)])
    expected = [min(math.ceil(math.expm1(x / SIZE_TAIL) + 1.0), MAX_SIZE) for x in e.tolist()]
    assert trade_lots(e.copy()).tolist() == expected
