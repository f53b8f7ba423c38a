"""The detail screen under a burst of updates; quitting (q, Ctrl+C) in the app and the CLI."""

from __future__ import annotations

from typing import Any

from dash_helpers import drive, make_app, until
from textual.pilot import Pilot
from textual.widgets import Static

from tickwire.dashboard.detail import DetailScreen
from tickwire.dashboard.fake import FakeFeed


def test_the_detail_screen_is_never_refreshed_before_it_is_mounted() -> None:
    """A frame that comes between pushing the screen and composing it once crashed the demo
    (`NoMatches: No nodes match '#quote'`, 1 Enter in 25); here a frame comes at once, every time,
    with every symbol changing 200 times a second and the render timer at 60 fps besides."""
    fake = FakeFeed(seed=3, rate_hz=200, changing=1.0)
    app, _ = make_app(fake, fps=60)

    async def script(pilot: Pilot[Any]) -> None:
        state = app.state
        assert state is not None
        for i in range(24):
            symbol = app.table.cursor_symbol
            assert symbol is not None
            app.open_detail(symbol)  # what Enter does
            if i % 2 == 0:  # else the render timer's own frames race the mount
                state.dirty[state.index[symbol]] = True
                app.flush()  # a frame before the pushed screen is composed
            screen = app.screen
            assert isinstance(screen, DetailScreen)
            await until(pilot, lambda: screen.is_mounted, "the detail screen mounted")  # noqa: B023
            quote = str(screen.query_one("#quote", Static).content)
            assert quote.startswith("Bid "), quote  # drawn by on_mount, with data
            await app.pop_screen()
            app.table.action_cursor(1)

    drive(app, script)
    assert app.return_code is None or app.return_code == 0
