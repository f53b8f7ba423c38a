"""`DashboardView`: the app's widgets, its reactive UI state and the render timer.

Ingest and render are separate. The feed-sink methods (`ingest`) only write `MarketState` and
counters; one `set_interval(1 / fps)` timer (`flush`) turns the dirty symbols into `refresh_line`
calls inside one `batch_update()`. UI state (sort, filter, pause, fps) lives in reactive vars whose
watchers repaint and save the settings. This module knows no key, action or feed callback (those
are `app`'s and `ingest`'s, its subclasses) and never imports them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import numpy as np
from textual.app import App, ComposeResult
from textual.reactive import var
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from . import config as cfg
from .bridge import FeedBridge, Sink, Throttle
from .clock import Clock, SystemClock
from .columns import SORT_KEYS, TITLES, ordered
from .config import DEFAULT_WATCHLIST
from .detail import DetailScreen
from .gauge import FeedGauge
from .state import MarketState
from .status import StatusBar, StatusInfo
from .table import WatchTable

STATUS_EVERY_S = 0.25
AGES_EVERY_S = 0.5
_LIVE_SORTS = frozenset(SORT_KEYS) - {"symbol", "name"}


class DashboardView(App[int]):
    """The watchlist's widgets and UI state; `DashboardApp` adds the keys and the feed sink."""

    CSS_PATH = "dashboard.tcss"
    TITLE = "tickwire"
    _topbar_text = ""
    _saving = False  # settings are saved once loaded (on_mount), not while they load
    paused = var(False)
    sort_key = var("symbol")
    sort_reverse = var(False)
    filter_text = var("")
    fps = var(cfg.DEFAULT_FPS)

    def __init__(
        self,
        connect: Callable[[], AbstractAsyncContextManager[Any]],
        *,
        url: str = "",
        settings: cfg.DashboardConfig | None = None,
        config_path: Path | None = None,
        clock: Clock | None = None,
        watchlist: Sequence[str] | None = None,
        fps: float | None = None,
        render_timer: bool = True,
        latest: bool = True,
    ) -> None:
        super().__init__()
        self.clock = clock or SystemClock()
        self.config_path = config_path
        self.settings = settings or cfg.DashboardConfig()
        self.watchlist: list[str] = list(watchlist or self.settings.watchlist)
        self._default_watchlist = watchlist is None and tuple(self.watchlist) == DEFAULT_WATCHLIST
        self._hinted = False  # the first-run hint goes once the watchlist is edited
        self.url = url
        # latest=False: every update at no pace, as before (the bench's baseline), else the
        # latest state of each symbol at the frame pace (see `pace_ms`).
        self.latest = latest
        self.bridge = FeedBridge(connect, self.feed_sink(), url=url, latest=latest)
        self.state: MarketState | None = None
        self.subscribed: set[str] = set()
        self.info = StatusInfo(url=url)
        self.fatal_error: str | None = None
        self.frames = 0
        # A detail screen hides the watchlist: Textual still repaints a hidden screen's changes
        # through the screen above it (the whole screen, measured: 80 ms a frame at 200x50),
        # so its table and status bar wait until they show again.
        self.covered = False
        self.data_age_ns: int | None = None  # at the last frame: now - newest ts shown
        self.gauge = FeedGauge(self.clock.monotonic())
        self.lag = self.gauge.lag  # the feed's delivery lag: reset on every new connection
        self.throttle_ms = 0
        self.feed: Any = None
        self.book_depth = 0  # the server's (welcome): 0, no books, the detail screen as ever
        self.book_symbol: str | None = None  # the detail screen's, whose book is subscribed
        self.book_dirty = False
        self.imbalance_chosen = False  # the user pressed i: books no longer decide the column
        self.retry_at: float | None = None
        self._last_flush = self.clock.monotonic()
        self._last_status = -math.inf
        self._last_ages = -math.inf
        self._held_from = 0
        self._flush_timer: Timer | None = None
        self._initial_fps = fps or self.settings.fps
        self._render_timer = render_timer  # off: the caller calls flush() (snapshots, bench)

    def feed_sink(self) -> Sink:
        """What the bridge calls with the feed's news: `ingest.FeedIngest` is it."""
        raise NotImplementedError

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        # Kept as attributes: app.query_one() searches the *current* screen, which may be a modal.
        self.table = WatchTable(self.clock, id="watch")
        self.topbar = Static(id="topbar")
        self.banner = Static(id="banner", markup=False)
        self.filter_box = Input(
            placeholder="filter: symbol or name (Enter keeps, Esc clears)", id="filter"
        )
        self.status_bar = StatusBar(id="status")
        yield self.topbar
        yield self.banner
        yield self.table
        yield self.filter_box
        yield self.status_bar
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        self.sort_key = self.settings.sort if self.settings.sort in SORT_KEYS else "symbol"
        self.sort_reverse = self.settings.reverse
        self.fps = self._initial_fps
        self.table.sort_key, self.table.sort_reverse = self.sort_key, self.sort_reverse
        if self._flush_timer is None:
            self.start_render_timer()
        self.filter_box.display = False
        self.banner.display = False
        self.table.focus()
        self._saving = True
        self.update_topbar()
        self.show_status(force=True)
        self.bridge.start()

    async def on_unmount(self) -> None:
        await self.bridge.stop()

    # ------------------------------------------------------------------ render (the timer)

    def flush(self) -> None:
        """One frame: repaint the rows that changed, the detail screen, the status bar."""
        now = self.clock.monotonic()
        self.frames += 1
        state = self.state
        covered = any(isinstance(s, DetailScreen) for s in self.screen_stack)
        if covered != self.covered:
            self.covered = covered
            if not covered:  # the watchlist is back: what it missed, at once
                self.uncovered()
        if state is not None:
            rolled = state.advance(now)
            if rolled and self.sort_key in _LIVE_SORTS and not self.paused and not covered:
                self.reorder()
            if not self.paused:
                dirty = state.take_dirty()
                expired = state.expired_flashes(self._last_flush, now)
                table = self.table
                with self.batch_update():
                    if covered:
                        pass  # a hidden table's repaint costs the detail screen a full one
                    elif now - self._last_ages >= AGES_EVERY_S:
                        self._last_ages = now
                        table.refresh_ids(table.rows)
                    else:
                        table.refresh_ids(np.union1d(dirty, expired) if expired.size else dirty)
                    screen = self.screen
                    if isinstance(screen, DetailScreen) and screen.is_mounted:
                        if screen.sid in dirty or screen.sid in expired:
                            screen.refresh_data()
                        if self.book_dirty:
                            self.book_dirty = False
                            screen.refresh_book()
                        screen.note(now)
                self.data_age_ns = self._data_age_ns(state)
        self._last_flush = now
        self.show_status()

    def uncovered(self) -> None:
        """The watchlist shows again after the detail screen: its order, rows and status bar."""
        self.covered = False
        self.reorder()
        self.table.refresh_all()
        self.show_status(force=True)

    def show_imbalance(self, on: bool) -> None:
        """Show (or hide) the watchlist's Imb column: bid share of the best level's size."""
        self.table.optional = frozenset({"imb"}) if on else frozenset()
        self.table.refresh_all()

    def show_status(self, force: bool = False) -> None:
        now = self.clock.monotonic()
        if not force and now - self._last_status < STATUS_EVERY_S:
            return
        self._last_status = now
        info = self.info
        screen = self.screen_stack[-1] if self.screen_stack else None
        detail = screen if isinstance(screen, DetailScreen) and not self.paused else None
        shown_lag_ns = round(detail.lag_s(now) * 1e9) if detail is not None else 0
        self.gauge.fill(info, self.feed, self.frames, now, self.clock.wall_ns(), shown_lag_ns)
        info.retry_in_s = None if self.retry_at is None else self.retry_at - now
        info.fps_target = self.fps
        info.paused = self.paused
        state = self.state
        if state is not None:
            info.held = state.total_updates - self._held_from if self.paused else 0
            info.tick_age_ns = self._data_age_ns(state)
        if not self.covered:
            self.status_bar.show(info)
        if isinstance(screen, DetailScreen):
            screen.show_state(info)

    def _data_age_ns(self, state: MarketState) -> int | None:
        """Now minus the `ts` of the newest record of the watchlist (None before any)."""
        ids = [state.index[s] for s in self.watchlist if s in self.subscribed]
        have = [i for i in ids if state.have[i]]
        return self.clock.wall_ns() - int(state.tick["ts"][have].max()) if have else None

    def show_banner(self, text: str, kind: str) -> None:
        """A line above the table that wraps instead of cutting: errors in full, first-run hint."""
        banner = self.banner
        banner.set_classes(kind)
        if str(banner.content) != text:
            banner.update(text)
        banner.display = bool(text)

    def dismiss_hint(self) -> None:
        self._hinted = True
        if self.banner.has_class("hint"):
            self.show_banner("", "hint")

    def first_run_hint(self) -> str:
        if not self._default_watchlist or self._hinted:
            return ""
        return (
            "Default watchlist: a adds symbols (AAPL, or a name: apple), d removes the selected "
            "one, ? shows every key. Your changes are saved."
        )

    def reorder(self, keep: str | None = None) -> None:
        state = self.state
        if state is None:
            return
        ids = [state.index[s] for s in self.watchlist if s in self.subscribed and s in state]
        self.table.set_rows(
            ordered(state, ids, self.sort_key, self.sort_reverse, self.filter_text), keep
        )
        self.update_topbar()

    def update_topbar(self) -> None:
        table = self.table
        total = sum(1 for s in self.watchlist if s in self.subscribed)
        arrow = "▼" if self.sort_reverse else "▲"
        parts = [
            f"[b]tickwire[/b]  {total} symbols",
            "[i]simulated prices[/i]",
            f"sort {TITLES[self.sort_key]} {arrow}",
        ]
        if self.filter_text:
            parts.append(f"filter [b]{_escape(self.filter_text)}[/b]: {len(table.rows)} shown")
        if self.throttle_ms:
            parts.append(f"throttle {self.throttle_ms} ms")
        if not total and self.state is not None:
            parts.append("press [b]a[/b] to add symbols")
        text = " · ".join(parts)
        if text != self._topbar_text:  # Static.update asks for a layout: only when it changed
            self._topbar_text = text
            self.topbar.update(text)

    # ------------------------------------------------------------------ reactive UI state

    def watch_fps(self, fps: float) -> None:
        self.start_render_timer()
        if self.feed is not None:
            self.send_pace()
        self.settings.fps = fps
        self.save_settings()

    def start_render_timer(self) -> None:
        if not self._render_timer:
            return
        if self._flush_timer is not None:
            self._flush_timer.stop()
        # Owned by the table, not the app: Textual stops a widget's timers when it is removed,
        # while the app's own timers outlive every screen during shutdown (`flush` then found
        # an empty screen stack: ScreenStackError, the flaky test of issue 13).
        self._flush_timer = self.table.set_interval(1 / self.fps, self.flush, name="render")

    def watch_sort_key(self) -> None:
        self.table.sort_key = self.sort_key
        self.table.refresh_all()
        self.reorder()
        self.save_settings()

    def watch_sort_reverse(self) -> None:
        self.table.sort_reverse = self.sort_reverse
        self.table.refresh_all()
        self.reorder()
        self.save_settings()

    def watch_filter_text(self) -> None:
        self.reorder()

    def watch_paused(self, paused: bool) -> None:
        if self.state is not None:
            self._held_from = self.state.total_updates
        if not paused and self.state is not None:
            self.state.dirty[self.state.have] = True
            self.reorder()
        self.show_status(force=True)

    def watch_theme(self) -> None:
        self.settings.theme = self.theme
        self.save_settings()

    def save_settings(self) -> None:
        if not self._saving:
            return
        self.settings.watchlist = list(self.watchlist)
        self.settings.sort, self.settings.reverse = self.sort_key, self.sort_reverse
        warning = cfg.save(self.settings, self.config_path)
        if warning:
            self._saving = False  # say it once, not on every change
            self.notify(warning, severity="warning")

    @property
    def pace_ms(self) -> int:
        """How often the server sends a symbol's latest state when the user set no throttle.

        A quarter of a frame (12 ms at 20 fps): a screen shows one state per frame, so more would
        only cost CPU (every update: ~700 messages a second on the default watchlist, twice the
        CPU), while a whole frame's throttle would add half a frame to the median data age
        (measured: median 8 ms at a quarter, 16 ms at half a frame, 2.5 ms with every update).
        """
        return max(1, round(250 / self.fps))

    def send_pace(self) -> None:
        if not self.latest:
            return
        self.bridge.send(Throttle(self.throttle_ms, self.pace_ms, announce=False))


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
