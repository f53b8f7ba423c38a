"""Snapshot tests (pytest-textual-snapshot): main screen, detail screen, help.

Deterministic: a frozen clock stepped by the test, a seeded fake feed that emits only when told,
and the render timer off (the test calls `flush()` once per simulated second).
Update after an intended change with `pytest tests/dashboard --snapshot-update`.
"""

from __future__ import annotations

from typing import Any

import pytest
from dash_helpers import until
from textual.pilot import Pilot

from tickwire.dashboard.app import DashboardApp
from tickwire.dashboard.clock import FrozenClock
from tickwire.dashboard.fake import FakeFeed, fake_connector

SIZE = (120, 34)
SECONDS = 24


def snapshot_app() -> tuple[DashboardApp, FakeFeed, FrozenClock]:
    clock = FrozenClock()
    fake = FakeFeed(
        seed=42, rate_hz=0, changing=0.6, wall_ns=clock.wall_ns, url="ws://127.0.0.1:8765/v1"
    )
    app = DashboardApp(
        fake_connector(fake), url="ws://127.0.0.1:8765/v1", clock=clock, render_timer=False
    )
    return app, fake, clock


def play(app: DashboardApp, fake: FakeFeed, clock: FrozenClock) -> Any:
    """Run `SECONDS` simulated seconds: a few batches, one frame, then the clock moves on."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.table.rows and app.info.rtt_s == fake._rtt_s)
        for _ in range(SECONDS):
            fake.step(4)
            sent = fake.ticks_received
            await until(pilot, lambda n=sent: app.state.total_updates >= n)  # type: ignore[union-attr]
            clock.advance(1.0)
            app.flush()
        app.show_status(force=True)
        await pilot.pause()

    return run_before


SMALL, LARGE = (80, 24), (120, 40)


def test_main_screen(snap_compare: Any) -> None:
    app, fake, clock = snapshot_app()
    assert snap_compare(app, terminal_size=SIZE, run_before=play(app, fake, clock))


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_status_bar_keeps_what_matters(snap_compare: Any, size: tuple[int, int]) -> None:
    """State, PAUSED, gaps and age survive a narrow terminal; no word is cut."""
    app, fake, clock = snapshot_app()
    before = play(app, fake, clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        await before(pilot)
        app.info.rtt_s = 0.1234  # a three-digit rtt
        app.info.gaps, app.info.lost = 2, 1234
        await pilot.press("p")
        fake.step(3)
        await pilot.pause()
        app.show_status(force=True)
        await pilot.pause()
        text = app.status_bar.render().plain
        assert text.startswith("● LIVE │  PAUSED +")
        assert "gaps 2 lost 1.2k" in text and "age " in text
        assert len(text) <= size[0] - 2

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_detail_screen(snap_compare: Any) -> None:
    app, fake, clock = snapshot_app()
    before = play(app, fake, clock)

    async def run_before(pilot: Pilot[Any]) -> None:
        await before(pilot)
        app.table.move_to("NVDA")
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_help_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    app, fake, clock = snapshot_app()
    assert snap_compare(
        app, terminal_size=size, press=["question_mark"], run_before=play(app, fake, clock)
    )


def test_help_screen_scrolled_to_the_end_at_80x24(snap_compare: Any) -> None:
    """Every section of the help can be reached on a small terminal, and Esc stays visible."""
    app, fake, clock = snapshot_app()
    assert snap_compare(
        app,
        terminal_size=SMALL,
        press=["question_mark", "end"],
        run_before=play(app, fake, clock),
    )
