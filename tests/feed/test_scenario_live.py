"""A scenario started live: `Market.start_scenario` (seeded, sans-IO) and the real
`tickwire scenario run` against a real `tickwire serve --admin-token` (refusals are one line)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import trio
from _support import serve_process, tickwire_cmd

from tickwire.feed import TradingStatus, connect
from tickwire.simulators import Market, Universe
from tickwire.simulators.scenario import parse

HALT = """
name = "aapl-halt"
[[event]]
kind = "halt"
at = "1s"
duration = "2s"
symbol = "AAPL"
"""
S = 1_000_000_000


def test_market_starts_a_scenario_live_from_its_next_chunk() -> None:
    u = Universe.default()
    market = Market(u, seed=4, start_ns=0)
    market.step(10 * S + S // 3)  # a chunk is made ahead: the scenario counts from its end
    in_s = market.start_scenario(parse(HALT, u))
    assert in_s == pytest.approx(11 - 10 - 1 / 3)
    batch = market.step(20 * S)
    statuses = market.statuses()
    assert statuses["ts"].tolist() == [12 * S, 14 * S] and statuses["status"].tolist() == [1, 0]
    aapl = batch[batch["sym"] == 0]
    in_halt = aapl[(aapl["ts"] >= 12 * S) & (aapl["ts"] < 14 * S)]
    assert len(in_halt) == 0 and len(aapl) > 10  # no trade and no quote while halted
    # A second one plays beside the first, times from its own trigger (20 s: made up to).
    assert market.start_scenario(parse(HALT.replace("AAPL", "MSFT"), u)) == 0
    market.step(30 * S)
    later = market.statuses()
    assert later["ts"].tolist() == [21 * S, 23 * S] and set(later["sym"].tolist()) == {1}
    # Same seed, same trigger: the same market.
    twin = Market(u, seed=4, start_ns=0)
    twin.step(10 * S + S // 3)
    twin.start_scenario(parse(HALT, u))
    assert twin.step(20 * S).tobytes() == batch.tobytes()


def _scenario(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tickwire_cmd("scenario", "run", *args), capture_output=True, text=True, timeout=60
    )


async def test_scenario_run_against_a_real_server(tmp_path: Path) -> None:
    path = tmp_path / "aapl-halt.toml"
    path.write_text(HALT.replace('"AAPL"', '"MSFT"'), encoding="utf-8")
    with serve_process("--admin-token", "s3cret", "--heartbeat-ms", "0") as (_, url):
        http = url.replace("ws://", "http://").removesuffix("/v1")
        wrong = await trio.to_thread.run_sync(_scenario, "halt", "--url", http, "--token", "nope")
        assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
        assert wrong.stderr.strip().endswith("HTTP 401: admin token missing or wrong")
        assert wrong.stderr.count("\n") == 1
        bad = await trio.to_thread.run_sync(
            _scenario, "halt", "--symbol", "NOPE", "--url", http, "--token", "s3cret"
        )
        assert "HTTP 400: symbol 'NOPE' is not in the server's universe" in bad.stderr
        with trio.fail_after(30):
            async with connect(url, reconnect=False) as feed:
                await feed.subscribe(["AAPL", "MSFT"], snapshot=False)
                ran = await trio.to_thread.run_sync(
                    _scenario, str(path), "--symbol", "aapl", "--url", url, "--token", "s3cret"
                )
                assert ran.returncode == 0, ran.stderr
                assert ran.stdout.startswith("scenario aapl-halt started on aapl: 1 event,")
                seen = []
                async for ev in feed:
                    if isinstance(ev, TradingStatus):
                        seen.append((ev.symbol, ev.status))
                        if len(seen) == 2:
                            break
        assert seen == [("AAPL", "halted"), ("AAPL", "trading")]  # --symbol won over the file


async def test_a_server_without_admin_token_says_so() -> None:
    with serve_process("--heartbeat-ms", "0") as (_, url):
        out = await trio.to_thread.run_sync(_scenario, "halt", "--url", url, "--token", "x")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.strip().endswith(
        "HTTP 404: this server has no admin token: start it with --admin-token"
    )


def test_statuses_of_live_and_file_scenarios_agree() -> None:
    """Started at time 0 live, a scenario makes the market `Market(scenario=...)` makes."""
    u = Universe.default()
    a = Market(u, seed=2, start_ns=0, scenario=parse(HALT, u))
    b = Market(u, seed=2, start_ns=0)
    b.start_scenario(parse(HALT, u))
    assert np.array_equal(a.step(5 * S), b.step(5 * S))
    assert a.statuses().tobytes() == b.statuses().tobytes()


def test_admin_route_refusals() -> None:
    from tickwire.feed.server.admin import scenario_route
    from tickwire.feed.ws.http import HttpRequest

    started: list[str] = []
    route = scenario_route("tok", Universe.default(), lambda s, req: started.append(s.name) or 0.5)
    auth = {"authorization": "Bearer tok"}

    def ask(method: str, query: str, headers: dict[str, str] = auth) -> tuple[int, bytes]:
        resp = route(HttpRequest(method, "/admin/scenario", query, headers))
        return resp.status, resp.body

    assert ask("GET", "name=halt")[0] == 405
    assert ask("POST", "name=halt", {})[0] == 401
    assert ask("POST", "name=halt", {"authorization": "Bearer tok2"})[0] == 401
    assert (
        ask("POST", "")[1]
        == b'{"error":"give the scenario\'s name= or its toml= text (one of them)"}\n'
    )
    status, body = ask("POST", "name=../../etc/passwd.toml")
    assert status == 400 and b"name a shipped scenario" in body
    status, body = ask("POST", "toml=x%3D")
    assert status == 400 and b"<scenario>: not valid TOML" in body
    assert started == []
    assert ask("POST", "name=halt") == (200, b'{"scenario":"halt","events":2,"in_s":0.5}\n')
    assert started == ["halt"]
