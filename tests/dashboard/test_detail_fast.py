"""The detail screen stays cheap and honest: the hidden watchlist waits, and a screen that has
not drawn the data it holds says BEHIND, not LIVE.

Deterministic: a frozen clock, a fake feed that emits only when told, the render timer off (the
test calls `flush()`); "the screen does not paint" is Textual's public `batch_update()` held open.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dash_helpers import drive, make_app, until
from textual.pilot import Pilot
from textual.widgets import Static

from tickwire.dashboard import fmt
from tickwire.dashboard.chart import chart_rows
from tickwire.dashboard.clock import FrozenClock
from tickwire.dashboard.detail import PriceChart
from tickwire.dashboard.fake import FakeFeed
from tickwire.dashboard.lag import BEHIND_AFTER_NS, ShownLag


def _app() -> tuple[Any, FakeFeed, FrozenClock]:
    clock = FrozenClock()
    fake = FakeFeed(seed=5, rate_hz=0, changing=1.0, preroll=3, wall_ns=clock.wall_ns)
    app, _ = make_app(fake, clock=clock, render_timer=False)
    return app, fake, clock


async def _step(pilot: Pilot[Any], app: Any, fake: FakeFeed) -> None:
    """One batch from the feed, taken by the app."""
    sent = fake.ticks_received + len(fake.subscription)
    fake.step(1)
    await until(pilot, lambda: app.state.total_updates >= sent, "the batch")


def test_shown_lag_counts_from_the_first_frame_holding_undrawn_data() -> None:
    lag = ShownLag()
    lag.seen(5, now_s=10.0)
    assert lag.lag_s(shown=5, now_s=10.0) == 0.0  # drawn
    lag.seen(6, now_s=10.05)
    lag.seen(9, now_s=10.10)
    assert abs(lag.lag_s(shown=5, now_s=10.4) - 0.35) < 1e-9  # 6 waits since 10.05
    assert abs(lag.lag_s(shown=6, now_s=10.4) - 0.30) < 1e-9  # 6 drawn, 9 waits since 10.10
    assert lag.lag_s(shown=9, now_s=10.4) == 0.0
    lag.seen(2, now_s=11.0)  # a reset (the symbol re-added): counting starts again
    assert abs(lag.lag_s(shown=None, now_s=11.5) - 0.5) < 1e-9


def test_a_detail_screen_that_does_not_draw_says_behind_not_live() -> None:
    """The feed is current (its batches arrive on time), the screen is not painted for 0.4 s:
    the state is BEHIND by the time since the first frame that held undrawn data (0.3 s), on
    the detail screen's title too; LIVE again once it paints."""
    app, fake, clock = _app()

    async def script(pilot: Pilot[Any]) -> None:
        app.open_detail("AAPL")
        await until(pilot, lambda: app.screen.is_mounted and app.screen.query(PriceChart))
        screen = app.screen
        chart = screen.query_one(PriceChart)
        title = screen.query_one("#title", Static)
        app.flush()
        await pilot.pause()
        app.show_status(force=True)
        assert app.info.state == "live" and chart.shown == chart.version
        assert "BEHIND" not in str(title.content)
        with app.batch_update():  # no screen update happens in here: a starved screen
            for _ in range(4):
                await _step(pilot, app, fake)
                clock.advance(0.1)
                app.flush()
            app.show_status(force=True)
            assert chart.shown != chart.version
            assert app.info.state == "behind", app.info
            assert app.info.lag_ns is not None and app.info.lag_ns >= BEHIND_AFTER_NS
            assert str(title.content).endswith("◑ BEHIND 300ms"), title.content
        await pilot.pause()  # painted now
        assert chart.shown == chart.version
        clock.advance(0.1)
        app.flush()
        app.show_status(force=True)
        assert app.info.state == "live", app.info
        assert "BEHIND" not in str(title.content)

    drive(app, script)


def test_the_hidden_watchlist_waits_under_the_detail_screen_and_is_current_after() -> None:
    """Textual repaints a hidden screen's changes through the screen above it (the detail
    screen's every widget, each frame: 80 ms at 200x50 on a busy watchlist). While the detail
    screen is up and its symbol quiet, the watchlist's ages and status bar move on and the
    chart is not painted again each frame; back on the watchlist, it shows the latest prices
    at once."""
    app, fake, clock = _app()
    drawn: list[int] = []

    async def script(pilot: Pilot[Any]) -> None:
        app.open_detail(app.watchlist[0])
        await until(pilot, lambda: app.screen.is_mounted and app.screen.query(PriceChart))
        for _ in range(2):  # the first frame, and anything its paint asked for
            app.flush()
            await pilot.pause()
        chart = app.screen.query_one(PriceChart)
        render_lines = chart.render_lines

        def counted(crop: Any) -> Any:
            drawn.append(crop.height)
            return render_lines(crop)

        chart.render_lines = counted  # type: ignore[method-assign]
        for _ in range(5):  # no new data: the watchlist's ages, rates, status bar change
            clock.advance(0.3)
            app.flush()
            await pilot.pause()
        # Before: every frame (the hidden status bar and ages); now at most one repaint, when
        # the per-second rates roll (it re-renders cached lines; the chart is not rebuilt).
        assert len(drawn) <= 1, drawn
        for _ in range(3):
            await _step(pilot, app, fake)
            app.flush()
            await pilot.pause()
        assert drawn  # its symbol moved: drawn
        table = app.table
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.screen_stack[0], "the watchlist")
        await pilot.pause()
        state = app.state
        lines = [str(table.render_line(y).text) for y in range(1, 1 + len(table.rows))]
        for sid in table.rows[:5]:
            last = fmt.price(float(state.tick["last"][sid]), int(state.decimals[sid]))
            assert any(last in line for line in lines), (last, lines)

    drive(app, script)


def test_the_chart_caption_is_cut_at_a_whole_word_as_textual_wrapped_it() -> None:
    """Beside a ladder the chart is narrow: its caption ends at the last word that fits (as the
    screen showed it when Textual wrapped the chart's text), never in a cut word."""
    hist = np.column_stack([np.full(30, 10.0), np.full(30, 10.01), np.full(30, 10.0)])
    for width in range(20, 90):
        caption = "".join(part for part, _ in chart_rows(hist, np.ones(30), width, 12)[-1])
        shown = min(30, width - 10)  # one column per update
        full = " " * 10 + f"last {shown} updates   ▔ ask  ▁ bid  │ spread  ● last trade  volume"
        full += " per update"
        assert len(caption) <= width and full.startswith(caption), (width, caption)
        assert len(caption) == len(full) or full[len(caption)] == " ", (width, caption)
