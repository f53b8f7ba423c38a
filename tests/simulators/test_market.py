"""The simulated market: invariants on every record, stylized facts, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from tickwire.simulators import TICK_DTYPE, Market, TickFlag, Universe
from tickwire.simulators.market import CHUNK_EVENTS
from tickwire.simulators.stylized import report

FACTS = [
    "excess kurtosis, 1-min returns",
    "kurtosis 10s > 1m > 5m > 30m",
    "ACF 1-min returns, lag 1",
    "ACF 1-min returns, lags 2-10",
    "ACF |1-min returns|, lag 1",
    "  significant for this share of symbols",
    "ACF |1-min returns|, lag 50",
    "leverage corr(r, r^2 next 1-30 min)",
    "trades first/last 30 min vs midday",
    "|r| first 30 min vs midday",
    "spread at the open / midday",
    "bid-ask bounce, trade-to-trade ACF 1",
    "quote time at 1 tick (large-tick names)",
    "round-lot share of trades",
    "trade size tail (Hill, top 1%)",
    "trade inter-arrival CV",
    "Fano factor, 1-min trade counts",
    "mean pairwise 5-min correlation",
    "  same sector minus other sectors",
]


@pytest.fixture(scope="module")
def facts(run):
    return {row.name: row for row in report(run.records, run.universe, run.start_ns)}


@pytest.mark.parametrize("name", FACTS)
def test_stylized_fact(facts, name):
    row = facts[name]
    assert row.passed, f"{name}: {row.value:.3f}, target {row.target}"


def test_invariants_on_every_record(run):
    r, u = run.records, run.universe
    assert r.dtype == TICK_DTYPE and len(r) > 1_000_000
    assert np.all(r["bid"] < r["ask"]) and np.all(r["bid"] > 0)
    tick = u.tick_size[r["sym"]]
    for f in ("bid", "ask", "last"):
        k = r[f] / tick
        assert np.allclose(k, np.round(k), atol=1e-6), f"{f} off the tick grid"
    assert np.all(r["bid_size"] > 0) and np.all(r["ask_size"] > 0)
    trades = (r["flags"] & TickFlag.TRADE) > 0
    assert np.all(r["last_size"][trades] > 0)
    assert np.all(np.diff(r["ts"]) >= 0), "records are in event order"
    order = np.argsort(r["sym"], kind="stable")  # per symbol, in event order
    s = r[order]
    same = s["sym"][1:] == s["sym"][:-1]
    assert np.all(s["seq"][1:][same] == s["seq"][:-1][same] + 1), "per-symbol seq is +1"
    assert np.all(s["ts"][1:][same] >= s["ts"][:-1][same])
    assert np.all(s["volume"][1:][same] >= s["volume"][:-1][same]), "volume never decreases"
    # every trade prints at the quote in force before it: buys at the ask, sells at the bid
    t = np.flatnonzero(((s["flags"] & TickFlag.TRADE) > 0)[1:] & same) + 1
    buys = (s["flags"][t] & TickFlag.BUY) > 0
    prior = np.where(buys, s["ask"][t - 1], s["bid"][t - 1])
    assert np.array_equal(s["last"][t], prior)
    assert np.all(s["volume"][t] == s["volume"][t - 1] + s["last_size"][t])


def test_prices_sit_on_any_tick_grid():
    ticks = {0.25: 100.0, 0.05: 20.0, 0.005: 3.0, 5.0: 500.0, 0.0001: 1.5, 0.01: 80.0}
    rows = [(f"T{i}", "", "X", p, t, 100, 3.0, "stock") for i, (t, p) in enumerate(ticks.items())]
    u = Universe.from_rows(rows)
    r = Market(u, seed=1, start_ns=0).step(60 * 10**9)
    places = [2, 2, 3, 0, 4, 2]  # decimals of each tick size
    for f in ("bid", "ask", "last"):
        k = r[f] / u.tick_size[r["sym"]]
        assert np.allclose(k, np.round(k), rtol=0, atol=1e-6), f"{f} off the tick grid"
        for i, price in set(zip(r["sym"].tolist(), r[f].tolist(), strict=True)):
            assert float(f"{price:.{places[i]}f}") == price, (f, price)  # prints short in JSON


def _run(seed: int, step_ns: int, seconds: int = 20) -> bytes:
    m = Market(Universe.default(), seed=seed, start_ns=0)
    parts = [m.step(k * step_ns) for k in range(1, seconds * 1_000_000_000 // step_ns + 1)]
    return np.concatenate(parts).tobytes()


def test_same_seed_same_bytes_whatever_the_step():
    one_ms = _run(7, 1_000_000)
    assert one_ms == _run(7, 1_000_000)
    assert one_ms == _run(7, 50_000_000)  # step size does not change a byte
    assert one_ms != _run(8, 1_000_000)


def test_snapshot_is_the_latest_released_record():
    m = Market(Universe.default(), seed=3, start_ns=0)
    snap0 = m.snapshot()
    assert np.all(snap0["seq"] == 0) and np.all((snap0["flags"] & TickFlag.OPEN) > 0)
    out = m.step(2_000_000_000)
    snap = m.snapshot()
    for i in np.unique(out["sym"]):
        assert snap[i] == out[out["sym"] == i][-1]


def test_snapshot_and_batches_hold_across_chunks():
    m = Market(Universe.default(), seed=4, start_ns=0)
    last = m.snapshot()
    kept = []
    for until in (1, 5_000_000, 999_999_999, 10**9, 10**9 + 1, 3_500_000_000, 12 * 10**9):
        out = m.step(until)
        kept.append((out, out.copy()))
        for i in np.unique(out["sym"]):
            last[i] = out[out["sym"] == i][-1]
        assert m.snapshot().tobytes() == last.tobytes(), until
    assert len(m.step(12 * 10**9)) == 0  # no time passed
    for out, copy in kept:  # a released batch never changes afterwards
        assert out.tobytes() == copy.tobytes()


def test_default_universe_carries_real_traffic():
    m = Market(Universe.default(), seed=1, start_ns=0, session="24h")  # flat: midday's rate
    per_s = len(m.step(60 * 10**9)) / 60
    assert 800 <= per_s <= 3000, per_s  # the 1,000-2,000 updates/s, with noise


def test_activity_scales_every_rate():
    fast = Market(Universe.default(), seed=1, start_ns=0, activity=2.0)
    slow = Market(Universe.default(), seed=1, start_ns=0, activity=0.5)
    assert len(fast.step(30 * 10**9)) > 3 * len(slow.step(30 * 10**9))


def test_a_late_step_with_max_chunks_is_bounded_and_loses_nothing():
    u = Universe.synthetic(400, 0)
    whole = Market(u, seed=2, start_ns=0).step(5 * 10**9)
    late = Market(u, seed=2, start_ns=0)
    assert late.chunk_s == 0.5
    parts = []
    while late.now_ns < 5 * 10**9:
        before = late.now_ns
        parts.append(late.step(5 * 10**9, max_chunks=2))  # five seconds late, one call at most 1 s
        assert late.now_ns - before <= 10**9
    assert len(parts) == 5
    assert np.concatenate(parts).tobytes() == whole.tobytes()
    with pytest.raises(ValueError, match="max_chunks must be at least 1"):
        late.step(6 * 10**9, max_chunks=0)


def test_default_chunks_are_sized_by_the_updates_expected_at_the_open():
    assert Market(Universe.default()).chunk_s == 1.0  # small universes keep one-second chunks
    for n, chunk_s in ((500, 0.5), (5000, 0.1), (65536, 0.1)):
        m = Market(Universe.synthetic(n, 0))
        assert m.chunk_s == chunk_s, n
        # one 100 ms cell is the finest grain: big universes exceed the target in one cell
        assert m.expected_rate() * m.chunk_s <= CHUNK_EVENTS or m.chunk_s == 0.1


def test_a_market_with_books_makes_chunks_of_at_most_five_cells():
    # A chunk's books cost ~10x its ticks and it is made in slices that grow with it: a
    # one-second chunk of the default universe in slices of up to ~4 ms; 0.5 s, ~1.5 ms.
    assert Market(Universe.default(), book_depth=20).chunk_s == 0.5
    assert Market(Universe.synthetic(5000, 0), book_depth=20).chunk_s == 0.1
    assert Market(Universe.default(), book_depth=20, chunk_s=1.0).chunk_s == 1.0  # as asked


def test_expected_rate_matches_the_steady_rate():
    m = Market(Universe.synthetic(500, 0), seed=1, start_ns=0, session="24h")  # flat: no U-shape
    m.step(20 * 10**9)  # Hawkes excitation builds up over ~10 s
    per_s = len(m.step(40 * 10**9)) / 20
    assert 0.8 < per_s / m.expected_rate() < 1.2, (per_s, m.expected_rate())


def test_measure_load_leaves_the_market_alone():
    u = Universe.default()
    measured = Market(u, seed=6, start_ns=0)
    load = measured.measure_load()
    assert 0 < load < 1  # the default universe costs a small share of a core
    assert (
        measured.step(3 * 10**9).tobytes()
        == Market(u, seed=6, start_ns=0).step(3 * 10**9).tobytes()
    )


@pytest.mark.slow
@pytest.mark.timeout(600)  # 1.5-3 min of generation on one core: over the 120 s default
def test_stylized_facts_hold_on_a_few_hundred_symbols_over_three_days(make_run):
    big = make_run(300, 3, seed=11, activity=0.03)
    failed = [r for r in report(big.records, big.universe, big.start_ns) if not r.passed]
    assert not failed, failed


def test_measure_load_on_a_sample_scales_by_the_updates_expected(monkeypatch):
    import tickwire.simulators.market as market_module

    seen: list[int] = []
    real_step = Market.step

    def step(self, until_ns, *, max_chunks=None):
        seen.append(len(self.universe))
        return real_step(self, until_ns, max_chunks=max_chunks)

    clock = iter([1.0, 1.02])  # 20 ms of CPU, whatever the machine
    monkeypatch.setattr(Market, "step", step)
    monkeypatch.setattr(market_module.time, "thread_time", lambda: next(clock))
    m = Market(Universe.synthetic(5000, 0), seed=3, start_ns=0)
    load = m.measure_load(symbols=500)
    assert seen == [500]  # the twin trades an even sample of the universe
    sample = Market(market_module._sample(m.universe, 500), chunk_s=m.chunk_s)
    assert sample.universe.symbols[:3] == ("S0000", "S0010", "S0020")
    assert load == pytest.approx(0.02 / 0.2 * m.expected_rate() / sample.expected_rate())
    with pytest.raises(ValueError, match="symbols must be at least 1"):
        m.measure_load(symbols=0)
