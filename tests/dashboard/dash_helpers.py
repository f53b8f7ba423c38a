"""Dashboard test helpers: an app on a scripted fake feed, and waiting without sleeps.

conftest.py puts this folder on sys.path.

Textual runs on asyncio, so these tests are plain `def` tests that call `asyncio.run()` around
`app.run_test()`; pytest-trio's trio_mode only claims `async def` tests.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

from textual.notifications import SeverityLevel
from textual.pilot import Pilot

from tickwire.dashboard.app import DashboardApp
from tickwire.dashboard.fake import FakeFeed, fake_connector

SIZE = (120, 36)
# How long a condition may take to hold before the test fails. It bounds a hang, it is not what
# is tested: a Textual app and its trio guest on a machine at load 8-12 take seconds at times.
UNTIL_S = 20.0


class Note(NamedTuple):
    """One notification the app asked Textual to show."""

    message: str
    title: str
    severity: SeverityLevel


class NotedApp(DashboardApp):
    """The dashboard, keeping every notification it raises in `notes`.

    `App.notify` is Textual's public way in for every toast (widgets' `notify` calls it too), so
    overriding it sees all of them without reading Textual's private `_notifications`.
    """

    # Textual resolves a relative CSS_PATH beside the module of the class that runs, so point
    # the subclass at the dashboard's own stylesheet.
    CSS_PATH = str(Path(inspect.getfile(DashboardApp)).with_name(str(DashboardApp.CSS_PATH)))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[Note] = []

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        self.notes.append(Note(message, title, severity))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)


def make_app(
    fake: FakeFeed | None = None,
    *,
    clock: Any = None,
    config_path: Path | None = None,
    **kwargs: Any,
) -> tuple[NotedApp, FakeFeed]:
    fake = fake or FakeFeed(seed=7, rate_hz=0, preroll=3)
    app = NotedApp(
        fake_connector(fake), url="fake://tickwire", clock=clock, config_path=config_path, **kwargs
    )
    return app, fake


async def until(pilot: Pilot[Any], condition: Callable[[], object], what: str = "") -> None:
    """Let the app (and its trio guest) run until `condition()` holds; fail after UNTIL_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + UNTIL_S
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.005)


def drive(
    app: DashboardApp, script: Callable[[Pilot[Any]], Awaitable[None]], size: tuple[int, int] = SIZE
) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.table.rows, "the first rows")
            await script(pilot)

    asyncio.run(asyncio.wait_for(main(), 60))  # absolute; generous for a loaded 2-core box
