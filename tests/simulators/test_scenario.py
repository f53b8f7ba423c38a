"""Market scenarios: each event's effect measured on seeded runs, determinism, one-line errors.

Most effects are measured against the same seed without the scenario: price events change no
arrival, so the two runs' records pair up one to one and the ratio of their prices is the effect.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from _support import tickwire_cmd

from tickwire.simulators import Market, TickFlag, Universe
from tickwire.simulators.cli import START_NS
from tickwire.simulators.scenario import (
    STATUS_DTYPE,
    HaltReason,
    ScenarioError,
    Status,
    load,
    names,
    parse,
)

S = 10**9
U = Universe.synthetic(6, seed=1)
SYM = U.symbols[2]


def _run(text: str | None, seconds: int, *, seed: int = 4, step_s: int = 10, **kw):
    """(ticks, statuses, market) of `seconds` of a 24 h market, stepped every `step_s`."""
    scenario = parse(text, U, shown="t.toml") if text else None
    kw.setdefault("session", "24h")
    m = Market(U, seed, 0, chunk_s=10.0, scenario=scenario, **kw)
    parts, statuses = [], []
    for k in range(step_s, seconds + 1, step_s):
        parts.append(m.step(k * S).copy())
        statuses.append(m.statuses())
    return np.concatenate(parts), np.concatenate(statuses), m


def _mid(r):
    return (r["bid"] + r["ask"]) / 2


def _between(r, a_s, b_s):
    return (r["ts"] >= a_s * S) & (r["ts"] < b_s * S)


def test_flash_crash_moves_the_mid_by_the_drop_and_recovers():
    text = """
    [[event]]
    kind = "flash-crash"
    at = "2m"
    symbol = "*"
    drop = "8%"
    fall = "30s"
    hold = "60s"
    recover = "2m"
    spread = 4
    """
    base, _, _ = _run(None, 360)
    crash, _, _ = _run(text, 360)
    assert len(base) == len(crash) and (base["ts"] == crash["ts"]).all()  # same arrivals
    ratio = _mid(crash) / _mid(base)
    assert np.allclose(ratio[_between(base, 0, 120)], 1.0)  # before: the same market
    bottom = _between(base, 150, 210)  # fell by 30s, held for 60s
    assert abs(np.median(ratio[bottom]) - 0.92) < 0.002
    assert ratio[bottom].min() > 0.90 and ratio[bottom].max() < 0.94
    assert abs(np.median(ratio[_between(base, 165, 166)]) - 0.92) < 0.005
    halfway = _between(base, 264, 276)  # recovering: half the drop at 270 s
    assert abs(np.median(ratio[halfway]) - 0.96) < 0.004
    assert np.allclose(ratio[_between(base, 330, 360)], 1.0, atol=2e-3)  # recovered
    spread_b = (base["ask"] - base["bid"])[bottom].mean()
    spread_c = (crash["ask"] - crash["bid"])[bottom].mean()
    assert spread_c > 3 * spread_b  # at the bottom the spread is 4x as wide


def test_halt_stops_trades_and_quotes_until_the_resume():
    text = f"""
    [[event]]
    kind = "halt"
    at = "60s"
    symbol = "{SYM}"
    [[event]]
    kind = "resume"
    at = "150.07s"
    symbol = "{SYM}"
    """
    r, statuses, m = _run(text, 240)
    s = U.index(SYM)
    mine = r[r["sym"] == s]
    assert not _between(mine, 60, 150.1).any()  # nothing at all while halted
    assert _between(mine, 50, 60).sum() > 10 and _between(mine, 150.1, 200).sum() > 10
    after = mine[mine["ts"] >= 150 * S]
    assert ((after["flags"] & TickFlag.TRADE) > 0).sum() > 5  # trades restart
    assert (np.diff(mine["seq"].astype(np.int64)) == 1).all()  # no gap in seq across the halt
    others = r[(r["sym"] != s) & _between(r, 60, 150)]
    assert len(np.unique(others["sym"])) == len(U) - 1  # the others go on trading
    expected = np.zeros(2, STATUS_DTYPE)
    expected["ts"] = [60 * S, 1501 * S // 10]  # on the 0.1 s grid
    expected["sym"] = s
    expected["status"] = [Status.HALTED, Status.TRADING]
    expected["reason"] = HaltReason.SCENARIO
    assert statuses.tobytes() == expected.tobytes()
    assert m.play is not None and m.play.status[s] == Status.TRADING


def test_events_play_in_time_order_whatever_the_file_order():
    halt = f'[[event]]\nkind = "halt"\nat = "10s"\nsymbol = "{SYM}"\n'
    resume = f'[[event]]\nkind = "resume"\nat = "20s"\nsymbol = "{SYM}"\n'
    forward, _, _ = _run(halt + resume, 40)
    backward, statuses, _ = _run(resume + halt, 40)
    assert forward.tobytes() == backward.tobytes()
    assert statuses["ts"].tolist() == [10 * S, 20 * S]


def test_a_halt_with_a_duration_on_every_symbol():
    text = '[[event]]\nkind = "halt"\nat = "30s"\nduration = "45s"\n'
    r, statuses, _ = _run(text, 120)
    assert not _between(r, 30, 75).any() and _between(r, 75, 80).sum() > 0
    assert len(statuses) == 2 * len(U)
    assert (statuses["ts"][: len(U)] == 30 * S).all() and (statuses["ts"][len(U) :] == 75 * S).all()


def test_luld_band_halts_a_crashing_symbol_for_its_pause():
    text = f"""
    [[event]]
    kind = "luld"
    band = "5%"
    window = "1m"
    pause = "30s"
    [[event]]
    kind = "flash-crash"
    at = "90s"
    symbol = "{SYM}"
    drop = "12%"
    fall = "20s"
    recover = "20s"
    """
    r, statuses, _ = _run(text, 240)
    s = U.index(SYM)
    assert len(statuses) >= 2
    assert (statuses["sym"] == s).all() and (statuses["reason"] == HaltReason.LULD).all()
    halted, resumed = statuses[0], statuses[1]
    assert halted["status"] == Status.HALTED and resumed["status"] == Status.TRADING
    assert 90 * S < halted["ts"] < 110 * S  # the band is 5%, the crash 12% over 20 s
    assert resumed["ts"] - halted["ts"] == 30 * S
    mine = r[r["sym"] == s]
    assert not ((mine["ts"] >= halted["ts"]) & (mine["ts"] < resumed["ts"])).any()


def _check_statuses(r, statuses, end_s):
    """Per symbol: halted and trading alternate, from trading, and no record while halted."""
    assert (np.diff(statuses["ts"]) >= 0).all()
    for s in np.unique(statuses["sym"]):
        mine = statuses[statuses["sym"] == s]
        assert (mine["status"] == (np.arange(len(mine)) % 2 == 0)).all()  # HALTED first
        ends = mine["ts"][1::2]
        if len(mine) % 2:  # still halted at the end
            ends = np.append(ends, end_s * S)
        ts = r["ts"][r["sym"] == s]
        for since, until in zip(mine["ts"][::2], ends, strict=True):
            assert not ((ts >= since) & (ts < until)).any()


def test_luld_pause_inside_a_scenario_halt_is_one_halt():
    text = f"""
    [[event]]
    kind = "luld"
    band = "4%"
    pause = "60s"
    [[event]]
    kind = "jump"
    at = "90s"
    symbol = "{SYM}"
    move = "-10%"
    [[event]]
    kind = "halt"
    at = "100s"
    duration = "20s"
    """
    r, statuses, _ = _run(text, 240)
    _check_statuses(r, statuses, 240)
    s = U.index(SYM)
    mine = statuses[statuses["sym"] == s]
    assert mine[["ts", "status", "reason"]].tolist() == [
        (90 * S, Status.HALTED, HaltReason.LULD),  # the cell ending at the jump is outside
        (150 * S, Status.TRADING, HaltReason.LULD),  # the pause outlasts the halt
    ]
    others = statuses[statuses["sym"] != s]
    assert len(others) == 2 * (len(U) - 1)
    assert set(others["reason"]) == {HaltReason.SCENARIO}


def test_opening_gap_shifts_the_price_by_the_move():
    text = '[[event]]\nkind = "opening-gap"\nmove = "-4%"\n'
    base, _, _ = _run(None, 60, session="6.5h")
    gap, _, _ = _run(text, 60, session="6.5h")
    ratio = _mid(gap) / _mid(base)
    assert abs(np.median(ratio) - 0.96) < 0.001
    first = np.unique(gap["sym"], return_index=True)[1]  # each symbol's first update: the open
    assert (gap["flags"][first] & TickFlag.OPEN).all()
    assert np.allclose(_mid(gap)[first] / U.price[gap["sym"][first]], 0.96, atol=0.01)


@pytest.mark.slow  # a whole 6.5 h session first: ~15 s
def test_opening_gap_of_a_later_session():
    text = '[[event]]\nkind = "opening-gap"\nsession = 1\nmove = "5%"\n'
    u = Universe.synthetic(2, seed=1)
    day = 23_400
    runs = []
    for t in (None, text):
        m = Market(u, 3, 0, activity=0.02, chunk_s=60.0, scenario=parse(t, u) if t else None)
        m.step((day - 60) * S)
        runs.append(m.step((day + 60) * S))
    base, gap = runs
    ratio = _mid(gap) / _mid(base)
    assert np.allclose(ratio[gap["ts"] < day * S], 1.0)
    assert abs(np.median(ratio[gap["ts"] >= day * S]) - 1.05) < 0.002


def _realized_vol(r, a_s, b_s, every_s=10):
    """Std of every_s-second log mid returns in [a, b), pooled over symbols."""
    edges = np.arange(max(a_s, every_s), b_s + 1, every_s) * S  # a record before each edge
    out = []
    for s in range(len(U)):
        mine = r[r["sym"] == s]
        at = np.searchsorted(mine["ts"], edges, "right") - 1
        out.append(np.diff(np.log(_mid(mine)[at])))
    return float(np.std(np.concatenate(out)))


def test_vol_regime_raises_realized_volatility_by_its_factor():
    text = '[[event]]\nkind = "vol-regime"\nat = "5m"\nfactor = 2.5\nduration = "20m"\n'
    base, _, _ = _run(None, 1800, step_s=60, activity=0.3)
    high, _, _ = _run(text, 1800, step_s=60, activity=0.3)
    before = _realized_vol(high, 0, 300) / _realized_vol(base, 0, 300)
    during = _realized_vol(high, 310, 1500) / _realized_vol(base, 310, 1500)
    assert before == pytest.approx(1.0, abs=1e-9)
    assert 2.1 < during < 2.7, during


def test_vol_regime_on_one_symbol():
    text = f'[[event]]\nkind = "vol-regime"\nat = "5m"\nfactor = 3\nsymbol = "{SYM}"\n'
    base, _, _ = _run(None, 3000, step_s=60, activity=0.3)
    high, _, _ = _run(text, 3000, step_s=60, activity=0.3)
    s = U.index(SYM)
    assert base[base["sym"] != s].tobytes() == high[high["sym"] != s].tobytes()  # others as is

    def vol(r, a_s, b_s):
        mine = r[r["sym"] == s]
        at = np.searchsorted(mine["ts"], np.arange(a_s, b_s + 1, 10) * S, "right") - 1
        return float(np.std(np.diff(np.log(_mid(mine)[at]))))

    assert vol(high, 10, 300) == vol(base, 10, 300)
    # one symbol's 10 s returns: ~5% noise each way (seeds 4-6 give 2.8 to 3.1)
    assert 2.5 < vol(high, 310, 3000) / vol(base, 310, 3000) < 3.5


def test_drought_widens_the_spread_and_thins_the_book():
    text = '[[event]]\nkind = "drought"\nat = "60s"\nduration = "90s"\nspread = 3\nthin = 0.2\n'
    depth = {}
    runs = {}
    for name, t in (("base", None), ("dry", text)):
        m = Market(
            U, 2, 0, session="24h", chunk_s=10.0, book_depth=10, scenario=parse(t, U) if t else None
        )
        parts, deep = [], []
        for k in range(1, 22):
            parts.append(m.step_book(k * 10 * S)[0].copy())
            snap = m.book_snapshot()
            deep.append((snap["bid_size"][:, :5].sum(1) + snap["ask_size"][:, :5].sum(1)).sum())
        runs[name], depth[name] = np.concatenate(parts), np.array(deep)
    base, dry = runs["base"], runs["dry"]
    spread = {k: (r["ask"] - r["bid"]) / U.tick_size[r["sym"]] for k, r in runs.items()}
    inside_b, inside_d = _between(base, 60, 150), _between(dry, 60, 150)
    assert spread["dry"][inside_d].mean() == pytest.approx(
        3 * spread["base"][inside_b].mean(), rel=0.05
    )
    assert spread["dry"][_between(dry, 0, 60)].mean() == pytest.approx(
        spread["base"][_between(base, 0, 60)].mean()
    )
    # the book at the end of the drought holds well under half of its usual top 5 levels
    assert depth["dry"][13] < 0.5 * depth["base"][13]  # at 140 s
    assert depth["dry"][4] == depth["base"][4]  # before it, the same book


def test_fat_finger_prints_one_trade_away_from_the_quote():
    text = f"""
    [[event]]
    kind = "fat-finger"
    at = "30s"
    symbol = "{SYM}"
    move = "-10%"
    size = 500
    """
    base, _, _ = _run(None, 60)
    r, _, m = _run(text, 60)
    s = U.index(SYM)
    assert len(r) == len(base) + 1
    mine = r[r["sym"] == s]
    hit = np.flatnonzero(mine["ts"] == 30 * S)
    assert hit.size == 1
    ff, prev = mine[hit[0]], mine[hit[0] - 1]
    assert ff["flags"] == TickFlag.TRADE | TickFlag.SELL
    assert ff["last"] == pytest.approx(prev["bid"] * 0.9, abs=U.tick_size[s])
    assert ff["bid"] == prev["bid"] and ff["ask"] == prev["ask"]  # the quote stays
    assert (
        ff["last_size"] == 500 * U.lot_units[s] and ff["volume"] == prev["volume"] + ff["last_size"]
    )
    assert (np.diff(mine["seq"].astype(np.int64)) == 1).all()
    trades = np.flatnonzero(mine["flags"] & TickFlag.TRADE)
    t = trades[trades > 0]
    assert (mine["volume"][t] == mine["volume"][t - 1] + mine["last_size"][t]).all()
    assert m.snapshot()["volume"][s] == mine["volume"][-1]


ALL = f"""
name = "everything"
[[event]]
kind = "luld"
band = "3%"
[[event]]
kind = "halt"
at = "20s"
symbol = ["{U.symbols[0]}", "{U.symbols[1]}"]
duration = "10s"
[[event]]
kind = "flash-crash"
at = "30s"
drop = 0.05
fall = "10s"
recover = "20s"
[[event]]
kind = "vol-regime"
at = "40s"
factor = 2
[[event]]
kind = "drought"
at = "50s"
duration = "10s"
[[event]]
kind = "jump"
at = "45s"
symbol = "{SYM}"
move = "3%"
[[event]]
kind = "fat-finger"
at = "55s"
symbol = "{SYM}"
move = "7%"
"""


def _bytes(seed: int, step_ms: int) -> bytes:
    """Ticks, level updates and status records of 90 s, each stream's bytes in a row."""
    m = Market(U, seed, 0, session="24h", book_depth=5, scenario=parse(ALL, U))
    out: list[list[bytes]] = [[], [], []]
    for k in range(1, 90_000 // step_ms + 1):
        ticks, levels = m.step_book(k * step_ms * 1_000_000)
        for part, got in zip(out, (ticks, levels, m.statuses()), strict=True):
            part.append(got.tobytes())
    assert all(out), "every stream has records"
    return b"|".join(b"".join(part) for part in out)


def test_every_event_at_once_keeps_the_records_whole():
    m = Market(U, 3, 0, session="24h", book_depth=5, scenario=parse(ALL, U))
    r = np.concatenate([m.step_book(k * S)[0] for k in range(1, 91)])
    _check_statuses(r, m.statuses(), 90)
    assert (r["bid"] < r["ask"]).all() and (np.diff(r["ts"]) >= 0).all()
    order = np.argsort(r["sym"], kind="stable")
    o = r[order]
    same = o["sym"][1:] == o["sym"][:-1]
    assert (o["seq"][1:][same] == o["seq"][:-1][same] + 1).all()
    assert (o["volume"][1:][same] >= o["volume"][:-1][same]).all()


def test_same_seed_and_file_same_market_byte_for_byte():
    first = _bytes(7, 1000)
    assert first == _bytes(7, 1000)
    assert first == _bytes(7, 3000)  # whatever the stepping
    assert first != _bytes(8, 1000)


@pytest.mark.parametrize("name", names())
@pytest.mark.parametrize("universe", ["default", "crypto", "synthetic"])
def test_shipped_scenarios_load_on_any_universe(name, universe):
    u = Universe.synthetic(3) if universe == "synthetic" else Universe.builtin(universe)
    scenario = load(name, u)
    assert scenario.name == name and scenario.description
    m = Market(u, 0, 0, activity=0.05, scenario=scenario)
    assert (m.step(5 * S)["bid"] > 0).all()


E = "[[event]]; "  # tables and keys, one per line once "; " becomes a newline
BAD = [
    (E + 'kind = "crash"; at = "1m"', "event 1: unknown kind 'crash' (allowed: halt,"),
    (
        E + 'kind = "jump"; at = "1m"; symbol = "ZZZZ"; move = 0.1',
        "event 1 (jump): symbol 'ZZZZ' is not in the universe",
    ),
    (
        E + 'kind = "drought"; at = "1m"; duration = "-5m"',
        "event 1 (drought): duration must not be negative, got '-5m'",
    ),
    (E + 'kind = "halt"; at = -3', "event 1 (halt): at must not be negative, got -3"),
    (E + 'kind = "halt"; at = "1m"; ' + E + 'kind = "halt"; at = "2m"', "event 2 (halt): at: "),
    (E + 'kind = "resume"; at = "1m"', "event 1 (resume): at: "),
    (
        E + 'kind = "halt"; at = "1m"; duration = "1m"; ' + E + 'kind = "resume"; at = "90s"',
        "has a duration",
    ),
    (
        E + 'kind = "flash-crash"; at = "1m"; drop = "8%"; fall = "1m"',
        "event 1 (flash-crash): recover is required",
    ),
    (
        E + 'kind = "flash-crash"; at = "1m"; drop = "120%"; fall = "1m"; recover = "1m"',
        "drop must be between 0 and 100%, got '120%'",
    ),
    (
        E + 'kind = "jump"; at = "1m"; move = 0.1; size = 4',
        "event 1 (jump): unknown field 'size' (allowed: at, kind, move, symbol)",
    ),
    (
        E + 'kind = "halt"; at = "1m"; ' + E + 'kind = "resume"; at = "60.05s"',
        "event 2 (resume): at: ",
    ),
    (E + 'kind = "halt"; at = "1m"; duration = "20ms"', "duration must be at least 0.1s"),
    (E + 'kind = "jump"; at = "soon"; move = 0.1', "at must be a time such as '90s'"),
    (E + 'kind = "fat-finger"; at = "1m"; move = 0.1', "event 1 (fat-finger): symbol is required"),
    (E + 'kind = "vol-regime"; at = "1m"; factor = 0', "factor must be a number > 0, got 0"),
    ("name = 'x'", "no events"),
    ("[[event]; ", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_files_are_one_line_errors(text, message):
    u = Universe.synthetic(3)
    text = text.replace("; ", "\n").replace('"X"', f'"{u.symbols[0]}"')
    with pytest.raises(ScenarioError) as err:
        parse(text, u, shown="bad.toml")
    msg = str(err.value)
    assert msg.startswith("bad.toml: ") and "\n" not in msg
    assert message in msg, msg


def test_simulate_scenario_on_the_command_line(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('[[event]]\nkind = "halt"\nat = "10s"\nduration = "20s"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('[[event]]\nkind = "halt"\nat = "-1m"\n')
    common = ("--symbols", "4", "--duration", "40s", "--seed", "1")
    outs = [
        subprocess.run(
            tickwire_cmd("simulate", *common, *extra),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        for extra in (
            ("--scenario", "flash-crash", "--out", "a.npy"),
            ("--scenario", "flash-crash", "--out", "b.npy"),
            ("--scenario", str(mine), "--out", "c.npy"),
            ("--scenario", str(bad), "--out", "d.npy"),
        )
    ]
    for out in outs[:3]:
        assert out.returncode == 0, out.stderr
    assert "; scenario flash-crash: 0 symbol halts, 0 resumptions" in outs[0].stdout
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()
    assert "; scenario mine: 4 symbol halts, 4 resumptions" in outs[2].stdout
    rel = np.load(tmp_path / "c.npy")["ts"] - START_NS
    assert not ((rel >= 10 * S) & (rel < 30 * S)).any() and (rel >= 30 * S).sum() > 0
    assert outs[3].returncode == 2 and not (tmp_path / "d.npy").exists()
    assert outs[3].stderr.strip().count("\n") == 0 and "Traceback" not in outs[3].stderr
    assert "bad.toml: event 1 (halt): at must not be negative" in outs[3].stderr


def test_a_halt_from_before_the_start_is_in_force_at_it():
    text = f"""
    [[event]]
    kind = "halt"
    at = 2024-12-31T00:00:00Z
    symbol = "{SYM}"
    [[event]]
    kind = "resume"
    at = 1970-01-01T00:00:20Z
    symbol = "{SYM}"
    [[event]]
    kind = "halt"
    at = 1969-12-31T00:00:00Z
    duration = "1h"
    symbol = "{U.symbols[0]}"
    """
    r, statuses, _ = _run(text.replace("2024-12-31", "1969-12-31", 1), 40)
    s = U.index(SYM)
    assert not ((r["sym"] == s) & (r["ts"] < 20 * S)).any() and (r["sym"] == s).any()
    assert statuses[["ts", "sym", "status"]].tolist() == [(0, s, 1), (20 * S, s, 0)]
