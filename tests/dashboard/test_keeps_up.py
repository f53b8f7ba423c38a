"""The dashboard keeps up with a real server: data age, BEHIND instead of LIVE, the pace it asks.

Data age, as measured here, is the wall clock at a frame minus the `ts` of the newest record of
the watchlist on screen at that frame (`DashboardApp.data_age_ns`); the demo's simulator stamps
records with the server's wall clock, in this same process, so no clock offset hides a lag.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import trio
from dash_helpers import drive, make_app, until

from tickwire.dashboard.app import DashboardApp
from tickwire.dashboard.config import DEFAULT_WATCHLIST
from tickwire.dashboard.detail import DepthLadder, DetailScreen
from tickwire.dashboard.fake import FakeFeed
from tickwire.dashboard.lag import BEHIND_AFTER_NS, DeliveryLag
from tickwire.dashboard.local_server import demo_server
from tickwire.dashboard.status import StatusInfo, status_markup
from tickwire.feed import Batch, connect

RUN_S = 30.0
# How far the screen is behind what the feed delivers at that moment: the newest `ts` a bare
# client of the same server had (latest state of the same watchlist at the same pace, in its own
# thread of this process) minus the newest `ts` on screen. A starved machine delays the server
# and both clients alike, which the wall-clock data age does not separate from a lag of the
# screen (measured on a loaded machine: frames with ages of 0.3-0.8 s and the screen not behind
# the feed at all, the server's generator or this whole process having stalled).
# Every-update mode drifts (measured: median 2 s, 4.2 s over the last third) or, in a run where
# it does not, spikes towards the server's 1 s lag bound (p99 0.88 s): the median, over the run
# and over its last third, catches the one, the p99 the other; both are backlog on its own
# connection that the reference client does not have.
BEHIND_MEDIAN_MS = 100.0
BEHIND_P99_MS = 500.0
ADD_WITHIN_S = 5.0  # a symbol added late shows within this (about a frame on a quiet machine)


@contextmanager
def reference_client(url: str, symbols: list[str], pace_ms: int) -> Iterator[Any]:
    """A bare client of the feed in its own thread; yields `newest(wall_ns)`: the newest `ts`
    among the batches it had received by then (0 before any)."""
    got: list[tuple[int, int]] = []  # (wall ns at receipt, newest ts so far): appended in order
    stop = threading.Event()
    failed: list[BaseException] = []

    async def main() -> None:
        async with connect(url) as feed:
            await feed.subscribe(symbols, mode="latest")
            await feed.throttle(pace_ms)
            newest = 0
            async for event in feed:
                if stop.is_set():
                    return
                if isinstance(event, Batch) and len(event.ticks):
                    newest = max(newest, int(event.ticks["ts"].max()))
                    got.append((time.time_ns(), newest))

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # reported in the test's thread
            failed.append(exc)

    def newest(wall_ns: int) -> int:
        k = bisect.bisect_right(got, (wall_ns, 2**63))
        return got[k - 1][1] if k else 0

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield newest
    finally:
        stop.set()
        thread.join(10)
    assert not failed and not thread.is_alive(), failed


def test_the_default_watchlist_keeps_up_with_a_real_server_for_30_s() -> None:
    """Every-update mode drifted to 0.5 s behind at 8 s and seconds by 30 s; latest state keeps
    each frame's data about a frame behind the feed for 30 s, and a symbol added late shows at
    once. The server is the demo's (books on); the last third runs on the detail screen with its
    ladder."""
    with demo_server(seed=0, activity=1.0) as url:
        app = DashboardApp(functools.partial(connect, url), url=url)  # default watchlist
        behind_ms: list[float] = []
        ages_ms: list[float] = []
        states: list[str] = []

        async def sample(newest: Any) -> None:
            loop = asyncio.get_running_loop()
            end = loop.time() + RUN_S
            frames = app.frames
            detail_at = loop.time() + RUN_S * 2 / 3
            while loop.time() < end:
                if detail_at is not None and loop.time() >= detail_at:
                    detail_at = None
                    app.open_detail(DEFAULT_WATCHLIST[0])
                # A sampling period (half a frame), not a synchronisation: a bare sleep costs
                # the app nothing, where pilot.pause waits for the screen each time.
                await asyncio.sleep(0.5 / app.fps)
                if app.frames != frames and app.data_age_ns is not None:
                    frames = app.frames
                    now = time.time_ns()
                    shown_ts = now - app.data_age_ns  # within half a frame of the frame's
                    behind_ms.append(max(0, newest(now) - shown_ts) / 1e6)
                    ages_ms.append(app.data_age_ns / 1e6)
                    states.append(app.info.state)

        async def main() -> tuple[float, int]:
            async with app.run_test(size=(120, 36)) as pilot:
                await until(pilot, lambda: app.data_age_ns is not None, "the first data")
                first = app.frames
                with reference_client(url, list(DEFAULT_WATCHLIST), app.pace_ms) as newest:
                    await sample(newest)
                painted = app.frames - first
                state = app.state
                assert state is not None
                screen = app.screen
                assert isinstance(screen, DetailScreen)
                ladder = screen.query_one(DepthLadder)
                drawn = ladder.render_lines(ladder.region.reset_offset)
                assert any("imbalance top 5" in line.text for line in drawn)  # the book, drawn
                await pilot.press("escape")
                t0 = time.perf_counter()
                app.add_symbols(["ORCL"])
                await until(pilot, lambda: state.have[state.index["ORCL"]], "ORCL's first data")
                added_s = time.perf_counter() - t0
                await pilot.press("q")
                return added_s, painted

        added_s, painted = asyncio.run(asyncio.wait_for(main(), RUN_S + 90))
    assert app.watchlist[: len(DEFAULT_WATCHLIST)] == list(DEFAULT_WATCHLIST)
    behind, ages = np.array(behind_ms), np.array(ages_ms)
    p50, p99 = np.percentile(behind, [50, 99])
    late = float(np.median(behind[-len(behind) // 3 :]))
    figures = (
        f"{painted} frames painted, {len(behind)} sampled, behind the feed: median {p50:.1f} ms "
        f"(last third {late:.1f}), p99 {p99:.1f} ms, max {behind.max():.0f}; data age: median "
        f"{np.median(ages):.1f} ms, p99 {np.percentile(ages, 99):.1f} ms, max {ages.max():.0f}"
    )
    print(figures)  # shown with -rP: the figures of a passing run too
    assert painted >= RUN_S * app.fps / 4, figures  # it kept painting (a quarter of its rate)
    assert p50 < BEHIND_MEDIAN_MS and late < BEHIND_MEDIAN_MS, figures  # no drift
    assert p99 < BEHIND_P99_MS, figures
    assert states.count("behind") <= len(states) // 20, figures
    assert added_s < ADD_WITHIN_S, f"a symbol added took {added_s:.2f} s to show"
    assert app.return_code == 0


def test_late_data_says_behind_never_live() -> None:
    """A feed whose records arrive 2 s late reads BEHIND 2.0s, and LIVE again once it catches up."""
    delay_ns = [0]
    fake = FakeFeed(seed=7, rate_hz=50, wall_ns=lambda: time.time_ns() - delay_ns[0])
    app, _ = make_app(fake)

    async def script(pilot: Any) -> None:
        await until(pilot, lambda: app.lag.lag_ns is not None, "a live batch")
        await until(pilot, lambda: app.info.state == "live", "LIVE")
        delay_ns[0] = 2_000_000_000
        await until(pilot, lambda: app.info.state == "behind", "BEHIND")
        bar = app.status_bar.render().plain
        # The 2 s delay, plus this batch's delivery time less the best one seen: at least 2.0 s,
        # and a loaded machine may add a tenth or two to that delivery time.
        shown = re.match(r"◑ BEHIND (\d+\.\d)s", bar)
        assert shown is not None and 2.0 <= float(shown[1]) <= 2.2, bar
        assert "LIVE" not in bar
        delay_ns[0] = 0
        await until(pilot, lambda: app.info.state == "live", "LIVE again")

    drive(app, script)


def test_the_dashboard_asks_for_the_latest_state_at_its_frame_pace() -> None:
    fake = FakeFeed(seed=7, rate_hz=0, preroll=3)
    app, _ = make_app(fake, fps=20)

    async def script(pilot: Any) -> None:
        await until(pilot, lambda: fake.throttle_ms == 12, "the pace throttle")
        assert fake.mode == "latest"
        assert app.throttle_ms == 0  # the user's throttle: none, and the top bar says none
        app.set_fps(10)
        await until(pilot, lambda: fake.throttle_ms == 25, "the pace follows the fps")
        app.set_throttle(250)
        await until(pilot, lambda: app.throttle_ms == 250, "the user's throttle")
        assert fake.throttle_ms == 250
        app.set_throttle(0)
        await until(pilot, lambda: fake.throttle_ms == 25, "back to the pace")

    drive(app, script)


def test_delivery_lag_measures_from_the_best_offset_and_forgets_old_news() -> None:
    lag = DeliveryLag()
    assert lag.current(0) is None
    shift = 3_600 * 10**9  # a replay keeps its historical ts: an hour before the wall clock
    lag.observe(newest_ts_ns=1_000 - shift, wall_ns=1_000 + 500_000)
    assert lag.current(1_000_000) == 0
    lag.observe(newest_ts_ns=2_000_000 - shift, wall_ns=2_000_000 + 400_000)  # a better offset
    assert lag.current(2_500_000) == 0
    lag.observe(newest_ts_ns=3_000_000 - shift, wall_ns=3_000_000 + 400_000 + BEHIND_AFTER_NS)
    assert lag.current(3_500_000) == BEHIND_AFTER_NS
    assert lag.current(3_000_000 + 2 * 10**9) is None  # nothing new for 2 s: a quiet market
    lag.reset()
    assert lag.current(3_500_000) is None and lag.offset_ns is None


def test_behind_badge_carries_the_delay() -> None:
    text = status_markup(StatusInfo(state="behind", lag_ns=1_234_000_000)).plain
    assert text.startswith("◑ BEHIND 1.2s")
