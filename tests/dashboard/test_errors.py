"""The dashboard when things go wrong: no server, a refused token, a restart, a typo; and hints."""

from __future__ import annotations

import asyncio
import functools
import socket
from typing import Any

import numpy as np
from dash_helpers import drive, make_app, until
from textual.pilot import Pilot
from textual.widgets import Input, Label

from tickwire.dashboard.app import DashboardApp
from tickwire.dashboard.chart import chart_text
from tickwire.dashboard.local_server import server_thread
from tickwire.dashboard.screens import AddSymbolScreen
from tickwire.feed import connect


def _run_until_exit(app: DashboardApp, watch: Any = None) -> None:
    async def main() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            while app.is_running and app.return_code is None:
                if watch is not None:
                    watch(app)
                await pilot.pause(0.01)

    asyncio.run(asyncio.wait_for(main(), 30))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_is_said_in_full_then_a_one_line_exit() -> None:
    url = f"ws://127.0.0.1:{_free_port()}/v1"
    app = DashboardApp(functools.partial(connect, url), url=url, watchlist=["AAPL"])
    banners: list[str] = []

    def watch(app: DashboardApp) -> None:
        if app.banner.display:
            banners.append(str(app.banner.content))

    _run_until_exit(app, watch)
    assert app.return_code == 2
    assert app.fatal_error is not None
    assert "cannot connect" in app.fatal_error and "tickwire serve" in app.fatal_error
    assert "internal error" not in app.fatal_error
    # while it retried, the whole message (with its hint) was on screen, and the tries counted
    assert any("(is `tickwire serve` running?) (try 2 of 3)" in b for b in banners), banners


def test_a_refused_token_exits_at_once_with_what_to_do() -> None:
    with server_thread(tokens=("abc",)) as url:
        app = DashboardApp(functools.partial(connect, url), url=url, watchlist=["AAPL"])
        _run_until_exit(app)
    assert app.return_code == 2
    assert app.fatal_error is not None
    assert "the server wants a token: pass --token" in app.fatal_error


def test_a_server_restart_is_said_plainly() -> None:
    app, fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        fake.drop(retry_in_s=0.5, error="connection lost")
        await until(pilot, lambda: app.info.state == "reconnecting", "reconnecting")
        fake.restart()
        await until(pilot, lambda: app.info.gaps == 1, "the restart gap")
        note = app.notes[-1]
        assert note.title == "feed restarted" and note.severity == "warning"
        assert "history before" in note.message and "is gone" in note.message
        assert app.info.lost == 0  # a restart's loss is unknowable, not zero: nothing counted

    drive(app, script)


def test_add_dialog_is_case_insensitive_and_names_the_closest() -> None:
    app, fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        app.add_symbols(["orcl", "Adbe"])
        await until(pilot, lambda: ("subscribe", ["ORCL", "ADBE"]) in fake.requests, "request")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AddSymbolScreen))
        app.screen.query_one(Input).value = "xyzq"
        await pilot.press("enter")
        error = app.screen.query_one("#add-error", Label)
        assert isinstance(app.screen, AddSymbolScreen)  # the dialog stays open
        assert error.display and "unknown symbol 'XYZQ'" in str(error.content)

    drive(app, script)


def test_first_run_hint_on_the_default_watchlist_only() -> None:
    app, _fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        assert app.banner.display and "a adds symbols" in str(app.banner.content)
        app.add_symbols(["ORCL"])
        await until(pilot, lambda: not app.banner.display, "the hint goes once used")

    drive(app, script)
    other, _ = make_app(watchlist=["AAPL", "MSFT"])

    async def no_hint(pilot: Pilot[Any]) -> None:
        assert not other.banner.display

    drive(other, no_hint)


def test_chart_axis_labels_are_never_repeated() -> None:
    hist = np.empty((40, 3))
    hist[:, 0] = 181.29 + (np.arange(40) % 3) * 0.01  # a range of three ticks, many rows
    hist[:, 1] = hist[:, 0] + 0.01
    hist[:, 2] = hist[:, 0]
    colours = dict.fromkeys(("ask", "bid", "accent", "last", "band", "muted", "volume"), "")
    text = chart_text(hist, np.ones(40), 60, 30, colours, decimals=2)
    labels = [line.split("┤")[0].strip() for line in text.plain.splitlines() if "┤" in line]
    labels = [x for x in labels if x and x != "volume"]
    assert len(labels) == len(set(labels)) >= 2
    assert all(len(x.split(".")[1]) == 2 for x in labels)
