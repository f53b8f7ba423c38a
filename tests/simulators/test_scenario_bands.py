"""LULD bands as a scenario plays them (`Market.bands()`): set with the first reference, moved
when the reference moves 1% from the published one, re-set after a pause, cleared at the end."""

from __future__ import annotations

import numpy as np

from tickwire.simulators import Market, Universe
from tickwire.simulators.scenario import BAND_DTYPE, BAND_MOVE, parse

S = 10**9
U = Universe.synthetic(6, seed=1)
SYM = U.symbols[2]
TEXT = f"""
[[event]]
kind = "luld"
band = "5%"
window = "1m"
pause = "30s"
at = "5s"
duration = "6m"
symbol = ["{SYM}", "{U.symbols[4]}"]
[[event]]
kind = "flash-crash"
at = "90s"
symbol = "{SYM}"
drop = "12%"
fall = "20s"
recover = "5m"
"""


def _run(text: str | None, seconds: int, *, seed: int = 4):
    """(ticks, statuses, bands) of `seconds` of a 24 h market, stepped every 10 s."""
    scenario = parse(text, U, shown="t.toml") if text else None
    m = Market(U, seed, 0, chunk_s=10.0, scenario=scenario, session="24h")
    parts, statuses, bands = [], [], []
    for k in range(10, seconds + 1, 10):
        parts.append(m.step(k * S).copy())
        statuses.append(m.statuses())
        bands.append(m.bands())
        assert (bands[-1]["ts"] <= k * S).all()  # released with time, never ahead
    return np.concatenate(parts), np.concatenate(statuses), np.concatenate(bands)


def test_bands_are_set_moved_reset_after_a_pause_and_cleared_at_the_end() -> None:
    r, statuses, bands = _run(TEXT, 420)
    assert bands.dtype == BAND_DTYPE and (np.diff(bands["ts"]) >= 0).all()
    assert set(bands["sym"].tolist()) == {2, 4}  # only the symbols with bands
    s = U.index(SYM)
    mine = bands[bands["sym"] == s]
    first, last = mine[0], mine[-1]
    assert chr(first["indicator"]) == "A" and 5 * S < first["ts"] <= 5 * S + S // 10 * 2
    # the limits sit 5% either side of the reference (the price then), on the tick grid
    price = r[(r["sym"] == s) & (r["ts"] < first["ts"] + S)]["last"][-1]
    mid = (first["up"] + first["down"]) / 2
    assert abs(first["up"] / mid - 1.05) < 0.001 and abs(mid / price - 1) < 0.01
    tick = float(U.tick_size[s])
    assert np.allclose(np.round(mine["up"][:-1] / tick) * tick, mine["up"][:-1])
    # the crash moves the reference: new bands, each 1% (or more) from the one before
    moves = mine[1:-1]
    assert len(moves) >= 3
    refs = (mine["up"][:-1] + mine["down"][:-1]) / 2
    assert (np.abs(np.diff(refs) / refs[:-1]) >= BAND_MOVE - 0.002).all()
    # the crash breaches the band: a pause, then bands again from the reopening price ("E")
    halt, resume = statuses[statuses["sym"] == s][:2]
    reopened = mine[mine["ts"] > resume["ts"]][0]
    assert chr(reopened["indicator"]) == "E" and reopened["ts"] - resume["ts"] <= S // 10
    assert not ((mine["ts"] > halt["ts"]) & (mine["ts"] <= resume["ts"])).any()  # none paused
    # cleared when the luld ends (5 s + 6 min), after which nothing
    assert last["indicator"] == 0 and np.isnan(last["up"]) and np.isnan(last["down"])
    assert last["ts"] == 365 * S
    assert (bands["ts"] <= 365 * S).all()


def test_no_luld_no_bands_and_the_market_is_unchanged() -> None:
    crash = TEXT.split("[[event]]", 2)[2]
    r_with, _, _ = _run(TEXT, 60)
    r_without, statuses, bands = _run("[[event]]" + crash, 60)
    assert len(bands) == 0 and len(statuses) == 0
    assert _run(None, 30)[2].dtype == BAND_DTYPE and len(_run(None, 30)[2]) == 0
    # bands cost no draw: before the crash, both markets make the same records
    assert r_with[r_with["ts"] < 90 * S].tobytes() == r_without[r_without["ts"] < 90 * S].tobytes()


def test_a_live_trigger_keeps_the_bands_published() -> None:
    scenario = parse(TEXT, U)
    m = Market(U, 4, 0, chunk_s=10.0, scenario=scenario, session="24h")
    m.step(30 * S)
    before = m.bands()
    m.start_scenario(parse('[[event]]\nkind = "jump"\nat = "1s"\nmove = "1%"\n', U))
    m.step(400 * S)
    after = m.bands()
    assert len(before) == 2 and (after["ts"] > before["ts"].max()).all()
    assert not (chr(after[0]["indicator"]) == "A" and after[0]["sym"] in before["sym"])
    assert (after[after["indicator"] == 0]["ts"] == 365 * S).all()
