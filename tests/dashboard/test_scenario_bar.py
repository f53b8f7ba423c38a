"""The active market scenario on the dashboard's status bar, against a real server playing one
on loopback: `SCENARIO name` while it plays, gone once its last effect is over."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from dash_helpers import SIZE, NotedApp, until
from textual.pilot import Pilot

from tickwire.dashboard.local_server import server_thread
from tickwire.dashboard.status import StatusInfo, status_markup
from tickwire.feed import connect
from tickwire.simulators import scenario
from tickwire.simulators.universe import Universe

HALT = """
name = "aapl-halt"
[[event]]
kind = "halt"
at = "1s"
duration = "1.5s"
symbol = "AAPL"
"""


def test_the_status_bar_names_the_scenario_while_it_plays() -> None:
    halt = scenario.parse(HALT, Universe.default())
    with server_thread(heartbeat_ms=200, scenario=halt) as url:
        feed = functools.partial(connect, url, backoff_initial_s=0.05, backoff_max_s=0.2)
        app = NotedApp(feed, url=url, watchlist=["AAPL", "MSFT"])

        def bar() -> str:
            return app.status_bar.render().plain

        async def script(pilot: Pilot[Any]) -> None:
            await until(pilot, lambda: "SCENARIO aapl-halt" in bar(), "scenario shown")
            assert bar().index("LIVE") < bar().index("SCENARIO")  # beside the state
            await until(pilot, lambda: "SCENARIO" not in bar(), "scenario over")
            assert app.feed.scenarios == ()
            await pilot.press("q")

        async def main() -> None:
            async with app.run_test(size=SIZE) as pilot:
                await script(pilot)

        asyncio.run(asyncio.wait_for(main(), 30))


def test_a_scenario_outlasts_the_rates_on_a_narrow_bar() -> None:
    info = StatusInfo(state="live", scenarios=("flash-crash", "aapl-halt"), url="ws://x/v1")
    narrow = status_markup(info, 60).plain
    assert "SCENARIO flash-crash, aapl-halt" in narrow and "tick/s" not in narrow
    assert "SCENARIO" not in status_markup(StatusInfo(state="live"), 200).plain
