"""The fan-out rows measure capacity where the market does not cap it: the `>= 2x plain` goal is
held on a market fast enough that no server keeps up, and the notes give the share of the
market's ticks each server delivered beside the others'. No server runs here."""

from __future__ import annotations

import math

from tickwire.feed.bench import fanout

END_NS = 1_764_900_000_000_000_000


def _result(ticks_per_s: float, offered: float) -> dict[str, float]:
    keys = ("msgs_per_s", "bytes_per_s", "cpu_us_msg", "cpu_us_tick", "p50", "p99", "p999")
    out = dict.fromkeys(keys, 1.0)
    out.update(
        ticks_per_s=ticks_per_s,
        server_cpu_pct=50.0,
        client_cpu_pct=50.0,
        lat_samples=10,
        offered_per_client=offered,
    )
    return out


def test_the_capacity_scenario_saturates_every_server_and_holds_the_2x_goal() -> None:
    scs = fanout.scenarios(quick=False, full=False)
    (cap,) = [sc for sc in scs if sc.capacity]
    assert (cap.n, cap.subs, cap.binary, cap.activity) == (100, "*", False, fanout.SATURATE)
    assert "--activity" in cap.market_args and "--activity" not in cap.universe_args
    assert {kind for sc, kind in fanout.runs(scs, False) if sc == cap} == {
        "tickwire",
        "plain",
        "peer",
    }
    # the capacity market offers several times what the bench's market does
    rate = fanout.Scenario(100, "*", False)
    assert fanout.offered_ticks_per_s(cap, END_NS, 0.2) > 3 * fanout.offered_ticks_per_s(
        rate, END_NS, 0.2
    )

    def targets(sc: fanout.Scenario) -> dict[str, str]:
        base = {k: _result(1e6, 4e4) for k in ("naive", "plain", "peer")}
        rows = fanout.scenario_rows(sc, _result(2e6, 4e4), base)
        return {f"{r['name'].split(': ')[1]} vs {r['baseline']}": r["target"] for r in rows}

    at_rate, at_cap = targets(rate), targets(cap)
    assert at_cap["ticks/s vs plain"] == ">= 2x"
    assert at_rate["ticks/s vs plain"] == ""  # capped by the market: no capacity goal there
    assert at_rate["latency p50 vs plain"] == "< 1 ms" and at_cap["latency p50 vs plain"] == ""


def test_the_notes_give_each_servers_share_of_what_the_market_offered() -> None:
    sc = fanout.Scenario(100, "*", False)
    note = fanout.share_note(
        sc, {"tickwire": _result(3.9e6, 4e4), "plain": _result(2e6, 5e4), "peer": {"error": "x"}}
    )
    assert note == (
        "fan-out N=100 '*', JSON: the market offered ~4.00M ticks/s; "
        "delivered tickwire 98%, plain 40%"
    )
    offered = fanout.offered_ticks_per_s(sc, END_NS, 0.2)
    assert math.isfinite(offered) and offered > 0
