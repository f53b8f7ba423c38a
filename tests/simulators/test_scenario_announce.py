"""When a scenario starts and ends (`Market.scenario_changes`), for the wire to say so."""

from __future__ import annotations

from tickwire.simulators import Market, Universe
from tickwire.simulators._scenario_play import Announcement
from tickwire.simulators.scenario import parse

S = 10**9
U = Universe.synthetic(4, seed=1)
CRASH = """
name = "crash"
[[event]]
kind = "flash-crash"
at = "2m"
drop = "5%"
fall = "30s"
hold = "60s"
recover = "5m"
[[event]]
kind = "jump"
at = "1m"
move = "1%"
"""
HALT = """
name = "one-halt"
[[event]]
kind = "halt"
at = "10s"
duration = "30s"
symbol = "%s"
"""


def _changes(m: Market, until_s: int, step_s: int = 10) -> list[Announcement]:
    out: list[Announcement] = []
    t = m.now_ns // S
    for k in range(t + step_s, until_s + 1, step_s):
        m.step(k * S)
        out += m.scenario_changes()
    return out


def test_a_scenario_starts_at_the_start_and_ends_with_its_last_effect() -> None:
    m = Market(U, 3, 0, chunk_s=10.0, session="24h", scenario=parse(CRASH, U))
    # the crash ends after its recovery: 2m + 30s + 60s + 5m
    assert _changes(m, 900) == [
        Announcement(0, "crash", True),
        Announcement(510 * S, "crash", False),
    ]


def test_a_live_scenario_starts_at_its_time_0_and_one_that_lasts_never_ends() -> None:
    lasting = parse('name = "bands"\n[[event]]\nkind = "luld"\nband = "5%"\n', U)
    m = Market(U, 3, 0, chunk_s=10.0, session="24h", scenario=lasting)
    assert _changes(m, 60) == [Announcement(0, "bands", True)]
    in_s = m.start_scenario(parse(HALT % U.symbols[1], U))
    t0 = m.now_ns + round(in_s * S)
    got = _changes(m, 300)
    assert got == [Announcement(t0, "one-halt", True), Announcement(t0 + 40 * S, "one-halt", False)]
    assert _changes(m, 900) == []


def test_no_scenario_no_changes() -> None:
    m = Market(U, 3, 0, chunk_s=10.0, session="24h")
    assert _changes(m, 60) == []
