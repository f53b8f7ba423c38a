"""The dashboard against a real feed server on loopback (run in a thread by `demo`)."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any
from urllib.parse import urlsplit

import pytest
from dash_helpers import SIZE, NotedApp, until
from textual.pilot import Pilot

from tickwire.dashboard.app import DashboardApp
from tickwire.dashboard.local_server import server_thread
from tickwire.feed import connect


def live_app(url: str, **kwargs: Any) -> NotedApp:
    feed = functools.partial(connect, url, backoff_initial_s=0.05, backoff_max_s=0.2, **kwargs)
    return NotedApp(feed, url=url, watchlist=["AAPL", "MSFT", "SPY"])


def shown(app: DashboardApp) -> list[str]:
    if app.state is None:
        return []
    return [str(app.state.symbols[i]) for i in app.table.rows]


def run(app: DashboardApp, script: Any) -> None:
    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await script(pilot)

    asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize("encoding", ["json", "binary"])
def test_rows_add_remove_and_normal_close(encoding: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tickwire.server")
    with server_thread(heartbeat_ms=200) as url:
        app = live_app(url, encoding=encoding)

        async def script(pilot: Pilot[Any]) -> None:
            await until(pilot, lambda: shown(app) == ["AAPL", "MSFT", "SPY"], "rows")
            state = app.state
            assert state is not None
            await until(pilot, lambda: state.have[state.index["AAPL"]], "AAPL ticks")
            app.add_symbols(["NVDA"])
            await until(pilot, lambda: "NVDA" in shown(app), "NVDA added")
            await until(pilot, lambda: state.have[state.index["NVDA"]], "NVDA snapshot")
            app.add_symbols(["NOPE"])
            await until(pilot, lambda: any("NOPE" in n.message for n in app.notes))
            app.table.move_to("MSFT")
            await pilot.press("d")
            await until(pilot, lambda: "MSFT" not in shown(app), "MSFT removed")
            assert app.feed.subscription == ["AAPL", "SPY", "NVDA"]
            await pilot.press("q")

        run(app, script)
        assert app.return_code == 0
    closes = [r.getMessage() for r in caplog.records if "disconnected" in r.getMessage()]
    assert closes and all("code 1000" in m for m in closes), closes


def test_reconnects_after_the_server_restarts() -> None:
    first = server_thread()
    url = first.__enter__()
    servers = [first]
    app = live_app(url)

    async def script(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.state is not None and app.state.total_updates > 0)
        servers.pop().__exit__(None, None, None)  # the server goes away without a close frame
        await until(pilot, lambda: app.info.state == "reconnecting", "reconnecting")
        again = server_thread(port=urlsplit(url).port)
        again.__enter__()
        servers.append(again)
        await until(pilot, lambda: app.info.gaps >= 1, "the reconnect gap")
        assert app.state is not None
        before = app.state.total_updates
        await until(pilot, lambda: app.state.total_updates > before, "data again")
        app.show_status(force=True)
        assert app.info.state == "live"
        assert shown(app) == ["AAPL", "MSFT", "SPY"]
        await pilot.press("q")

    try:
        run(app, script)
    finally:
        for server in servers:
            server.__exit__(None, None, None)
    assert app.return_code == 0
