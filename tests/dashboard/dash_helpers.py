"""Dashboard test helpers: an app on a scripted fake feed, and waiting without sleeps.

conftest.py puts this folder on sys.path.

Textual runs on asyncio, so these tests are plain `def` tests that call `asyncio.run()` around
`app.run_test()`; pytest-trio's trio_mode only claims `async def` tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tickwire.dashboard.app import DashboardApp
from tickwire.dashboard.fake import FakeFeed, fake_connector

SIZE = (120, 36)


def make_app(
    fake: FakeFeed | None = None,
    *,
    clock: Any = None,
    config_path: Path | None = None,
    **kwargs: Any,
) -> tuple[DashboardApp, FakeFeed]:
    fake = fake or FakeFeed(seed=7, rate_hz=0, preroll=3)
    app = DashboardApp(
        fake_connector(fake), url="fake://tickwire", clock=clock, config_path=config_path, **kwargs
    )
    return app, fake


async def until(pilot: Pilot[Any], condition: Callable[[], object], what: str = "") -> None:
    """Let the app (and its trio guest) run until `condition()` holds; fail after 5 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
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
