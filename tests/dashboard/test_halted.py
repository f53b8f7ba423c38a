"""A halted symbol on the dashboard, against a real server playing a scenario on loopback: the
watchlist row says HALTED in its Trend column and the detail screen says since when and why, both
cleared when the symbol trades again."""

from __future__ import annotations

import asyncio
import functools
import re
from typing import Any

from dash_helpers import SIZE, NotedApp, until
from textual.pilot import Pilot
from textual.widgets import Static

from tickwire.dashboard.detail import DetailScreen
from tickwire.dashboard.local_server import server_thread
from tickwire.feed import connect
from tickwire.simulators import scenario
from tickwire.simulators.universe import Universe

HALT = """
[[event]]
kind = "halt"
at = "1s"
duration = "1.5s"
symbol = "AAPL"
"""


def _row(app: NotedApp, symbol: str) -> str:
    """The watchlist line of `symbol` as drawn."""
    lines = [str(app.table.render_line(y).text) for y in range(1, 1 + len(app.table.rows))]
    return next(line for line in lines if line.split()[0] == symbol)


def _quote(app: NotedApp) -> str:
    screen = app.screen
    assert isinstance(screen, DetailScreen)
    return str(screen.query_one("#quote", Static).content)


def test_a_halted_symbol_shows_halted_until_it_trades() -> None:
    halt = scenario.parse(HALT, Universe.default())
    with server_thread(heartbeat_ms=200, scenario=halt) as url:
        feed = functools.partial(connect, url, backoff_initial_s=0.05, backoff_max_s=0.2)
        app = NotedApp(feed, url=url, watchlist=["AAPL", "MSFT"])

        async def script(pilot: Pilot[Any]) -> None:
            await until(pilot, lambda: app.state is not None and len(app.table.rows) == 2)
            state = app.state
            assert state is not None
            await until(pilot, lambda: state.have[state.index["AAPL"]], "AAPL ticks")
            assert "HALTED" not in _row(app, "AAPL")
            await until(pilot, lambda: "HALTED" in _row(app, "AAPL"), "AAPL halted")
            assert "HALTED" not in _row(app, "MSFT")
            app.open_detail("AAPL")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), "detail screen")
            await until(pilot, lambda: app.screen.is_mounted, "detail mounted")
            quote = _quote(app)
            assert re.search(r"halted since \d\d:\d\d:\d\d UTC \(scenario\)", quote), quote
            await until(pilot, lambda: "halted since" not in _quote(app), "detail: trading")
            await app.pop_screen()
            await until(pilot, lambda: "HALTED" not in _row(app, "AAPL"), "AAPL trading")
            await pilot.press("q")

        async def main() -> None:
            async with app.run_test(size=SIZE) as pilot:
                await script(pilot)

        asyncio.run(asyncio.wait_for(main(), 30))
