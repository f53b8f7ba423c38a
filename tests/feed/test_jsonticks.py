"""The column-built JSON tick text (`protocol.jsonticks.tick_text`) against orjson of tick_dicts.

Byte for byte and start for start, over random records (every field over its whole range, NaN,
infinities, -0.0, tiny and huge floats, prices on 0..8-decimal grids, names JSON must escape,
names too long for the table) and over real batches: the 1500-symbol stock market, the crypto
universe, and a replay of a file with prices as exchanges print them.
"""

from __future__ import annotations

import gzip
from itertools import pairwise
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickwire.feed import protocol as p
from tickwire.feed.hub.hub import Hub
from tickwire.feed.protocol.jsonticks import tick_text
from tickwire.simulators import Market, Universe
from tickwire.simulators.replay import Replay, load
from tickwire.simulators.ticks import TICK_DTYPE

START_NS = 1_700_000_000_000_000_000


def _check(records: np.ndarray, names: np.ndarray) -> None:
    dicts = p.tick_dicts(records, names)
    text, at = tick_text(records, names, p.tick_dicts)
    assert text == orjson.dumps(dicts)[1:-1]
    want = np.zeros(len(dicts) + 1, np.intp)
    np.cumsum([len(orjson.dumps(d)) + 1 for d in dicts], out=want[1:])
    assert at.tolist() == want.tolist()
    assert [text[a : b - 1] for a, b in pairwise(at.tolist())] == [orjson.dumps(d) for d in dicts]


_EDGES = [
    0.0, -0.0, 1e-5, -1e-5, 9.99e-6, 1.0000000000000002e-05, 5e-324, 2.2250738585072014e-308,
    1e7, 9999999.99999999, 10000000.000000002, 1e15, 1e16, 1.7976931348623157e308, 0.1, 0.2,
    0.30000000000000004, 100.0, 12345.678, 0.00012345, 0.000012345678, 1234567.12345678,
]  # fmt: skip
_GRID = st.builds(  # the double nearest to k / 10**d: a price on a d-decimal grid
    lambda k, d: k / 10**d,
    st.one_of(st.integers(-(10**10), 10**10), st.integers(-(10**16), 10**16)),
    st.integers(0, 9),
)
_NEAR = st.integers(0, 8).flatmap(  # on a grid and below 10**7: built
    lambda d: st.integers(1 - 10 ** (7 + d), 10 ** (7 + d) - 1).map(lambda k: k / 10**d)
)
_ANY = st.one_of(st.floats(), st.floats(-1e8, 1e8), _GRID, st.sampled_from(_EDGES))
_NAME = st.text(st.sampled_from('{}"\\\x00\x1f\x7f/ü€😀 AZ.-'), min_size=1, max_size=12)
_LONG = st.text(st.characters(blacklist_categories=("Cs",)), max_size=70)  # beyond the table too


@st.composite
def _batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    names = draw(st.lists(_NAME, min_size=1, max_size=6))
    if draw(st.integers(0, 3)) == 0:
        names.append(draw(_LONG))
    prices = _NEAR if draw(st.booleans()) else _ANY  # mostly proven, or anything
    n = draw(st.integers(1, 24))

    def column(values: st.SearchStrategy[object]) -> list[object]:
        return draw(st.lists(values, min_size=n, max_size=n))

    def ints(bits: int, signed: bool = False) -> list[object]:
        low = -(1 << (bits - 1)) if signed else 0
        high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        return column(st.one_of(st.integers(low, high), st.sampled_from([low, high, 0, 1, 10])))

    rec = np.zeros(n, TICK_DTYPE)
    rec["sym"] = column(st.integers(0, len(names) - 1))
    rec["ts"] = ints(64, signed=True)
    for field in ("seq", "volume"):
        rec[field] = ints(64)
    for field in ("bid_size", "ask_size", "last_size"):
        rec[field] = ints(32)
    rec["flags"] = column(st.one_of(st.integers(0, 255), st.integers(0, (1 << 16) - 1)))
    for field in ("bid", "ask", "last"):
        rec[field] = column(prices)
    return rec, np.array(names, dtype=object)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_batches())
def test_random_records_give_the_reference_bytes_and_starts(batch) -> None:
    _check(*batch)


@pytest.mark.parametrize("decimals", range(9))
def test_every_price_on_a_grid_up_to_eight_decimals_is_built(decimals) -> None:
    rng = np.random.default_rng(decimals)
    n = 3000
    rec = np.zeros(n, TICK_DTYPE)
    k = rng.integers(0, 10**7 * 10**decimals, n)  # every magnitude below 10**7
    k[:20] = np.arange(20)
    rec["bid"] = k / 10**decimals
    rec["ask"] = -rec["bid"]
    rec["last"] = rng.integers(0, 10**15, n) / 10**8
    names = np.array(["X"], dtype=object)
    _check(rec, names)


def _market_batches(universe: Universe, steps: int, every_ns: int) -> list[np.ndarray]:
    market = Market(universe, seed=5, start_ns=START_NS)
    return [market.step(START_NS + k * every_ns) for k in range(1, steps)]


@pytest.mark.parametrize(
    ("universe", "every_ns"),
    [(Universe.synthetic(1500), 50_000_000), (Universe.crypto_pairs(), 3_000_000_000)],
    ids=["stocks-1500", "crypto"],
)
def test_real_market_batches_give_the_reference(universe, every_ns) -> None:
    names = np.array(universe.symbols, dtype=object)
    batches = _market_batches(universe, 30, every_ns)
    assert max(len(b) for b in batches) >= p.messages.BUILD_MIN  # the built path is the one used
    for batch in batches:
        _check(batch, names)
        assert p.tick_objects(batch, names) == orjson.dumps(p.tick_dicts(batch, names))[1:-1]


def test_a_replayed_file_gives_the_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    rows = ["exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount"]
    pairs = {"BTCUSDT": (42000.0, 2), "ETHUSDT": (2300.0, 2), "SHIBUSDT": (0.0000231, 8)}
    t0 = 1_704_067_200_000_000
    for i in range(2000):
        sym = list(pairs)[i % 3]
        mid, dec = pairs[sym]
        bid = round(mid * (1 + rng.normal(0, 0.001)), dec)
        ask = round(bid + 10**-dec * int(rng.integers(1, 5)), dec)
        rows.append(f"binance,{sym},{t0 + i},{t0 + i},{rng.integers(1, 9)},{ask},{bid},3")
    path = tmp_path / "quotes.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(rows) + "\n")
    records, uni = load([path])
    replay = Replay(records, uni, speed=0, batch_max=700)
    names = np.array(uni.symbols, dtype=object)
    while not replay.finished:
        _check(replay.step(0), names)


def test_the_hub_keeps_a_built_batchs_starts_with_its_text() -> None:
    # A reader in step takes whole batches and never cuts one: the starts come with the text
    # of a large batch, so a later reader's cut finds them without a scan of the text.
    universe = Universe.synthetic(1500)
    market = Market(universe, seed=2, start_ns=START_NS)
    hub = Hub(universe, market.snapshot())
    sub = hub.attach(lambda: None)
    hub.set_subscription(sub, True, np.empty(0, np.intp))
    hub.publish(market.step(START_NS + 200_000_000), on_grid=True)
    taken = hub.take(sub)
    assert taken is not None and len(taken.records) >= p.messages.BUILD_MIN
    assert taken.json_body() == p.ticks_body(taken.records, hub.names)
    entry = hub.history.derived.batches()[-1]
    assert entry.json is not None and entry.json_at is not None
    assert entry.json_at.tolist() == p.object_starts(entry.json, entry.records, hub.names).tolist()


def test_unproven_records_among_many_keep_their_places() -> None:
    # The first, the last, two in a row and one alone: each encoded by the reference, the runs
    # between them built, all in the records' order.
    universe = Universe.synthetic(1500)
    names = np.array(universe.symbols, dtype=object)
    batch = np.concatenate(_market_batches(universe, 6, 50_000_000))
    assert len(batch) > 1000
    for at, value in ((0, np.nan), (1, np.inf), (2, 1e-7), (500, 1e20), (501, -0.1 - 0.2)):
        batch[at]["bid"] = value
    batch[-1]["last"] = 1.2345678912345
    batch[700]["flags"] = 4096
    assert np.isnan(batch["bid"][0]) and batch["flags"][700] == 4096
    _check(batch, names)


def test_the_built_path_starts_at_build_min_with_the_same_bytes() -> None:
    universe = Universe.synthetic(1500)
    names = np.array(universe.symbols, dtype=object)
    batch = np.concatenate(_market_batches(universe, 6, 50_000_000))
    for n in (p.messages.BUILD_MIN - 1, p.messages.BUILD_MIN):
        recs = batch[:n]
        dicts = p.tick_dicts(recs, names)
        text, at = p.tick_objects_at(recs, names)
        assert text == orjson.dumps(dicts)[1:-1]
        assert (at is None) == (n < p.messages.BUILD_MIN)
        assert p.ticks_body(recs, names) == orjson.dumps(dicts)
        assert p.tick_fragments(recs, names) == [orjson.dumps(d) for d in dicts]
