"""`DashboardApp`: the watchlist, its status bar and screens, fed by a trio guest run.

Ingest and render are separate. The feed (see `bridge`) calls the `feed_*` methods, which only
write `MarketState` and counters; one `set_interval(1 / fps)` timer (`flush`) turns the dirty
symbols into `refresh_line` calls inside one `batch_update()`. UI state (sort, filter, pause, fps)
lives in reactive vars whose watchers repaint and save the settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import var
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from tickwire.feed import Batch, Gap, ProtocolError, Status
from tickwire.feed.client import resolve_symbols

from . import config as cfg
from .bridge import Command, FeedBridge, Subscribe, Throttle, Unsubscribe
from .clock import Clock, SystemClock
from .commands import dashboard_commands
from .config import DEFAULT_WATCHLIST
from .detail import DetailScreen
from .gauge import FeedGauge
from .screens import DETAIL_HELP, AddSymbolScreen, HelpScreen, ThrottleScreen
from .state import MarketState
from .status import StatusBar, StatusInfo
from .table import SORT_KEYS, TITLES, WatchTable, ordered

STATUS_EVERY_S = 0.25
AGES_EVERY_S = 0.5
QUIT_CLOSE_S = 0.25
"""How long quitting waits for the feed's close handshake (our 1000 close frame goes at once;
this is the server's reply) before it lets go: quitting takes well under a second."""
_LIVE_SORTS = frozenset(SORT_KEYS) - {"symbol", "name"}
_MAIN_ONLY = frozenset(
    {"add", "remove", "sort_next", "sort_reverse", "filter", "open_detail", "throttle"}
)
_CYCLE = tuple(k for k in SORT_KEYS if k != "trend")


class DashboardApp(App[int]):
    """A live watchlist on a tickwire feed. `connect()` must return `async with`-able feed."""

    CSS_PATH = "dashboard.tcss"
    TITLE = "tickwire"
    # Footer order is importance order: on a narrow terminal the footer loses its right end.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        # What a terminal user presses to quit (Textual's default only says "press ctrl+q"); a
        # priority binding, so it quits from the filter box and the dialogs too.
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help"),
        Binding("a", "add", "Add"),
        Binding("d", "remove", "Remove"),
        Binding("s", "sort_next", "Sort"),
        Binding("slash", "filter", "Filter"),
        Binding("enter", "open_detail", "Detail"),
        Binding("p", "toggle_pause", "Pause"),
        Binding("t", "throttle", "Throttle", show=False),  # in the help: the footer has no room
        Binding("S", "sort_reverse", "Reverse", show=False),
    ]

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
        self.bridge = FeedBridge(connect, self, url=url, latest=latest)
        self.state: MarketState | None = None
        self.subscribed: set[str] = set()
        self.info = StatusInfo(url=url)
        self.fatal_error: str | None = None
        self.frames = 0
        self.data_age_ns: int | None = None  # at the last frame: now - newest ts shown
        self.gauge = FeedGauge(self.clock.monotonic())
        self.lag = self.gauge.lag  # the feed's delivery lag: reset on every new connection
        self.throttle_ms = 0
        self._feed: Any = None
        self._retry_at: float | None = None
        self._last_flush = self.clock.monotonic()
        self._last_status = -math.inf
        self._last_ages = -math.inf
        self._held_from = 0
        self._flush_timer: Timer | None = None
        self._initial_fps = fps or self.settings.fps
        self._render_timer = render_timer  # off: the caller calls flush() (snapshots, bench)

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
            self._start_render_timer()
        self.filter_box.display = False
        self.banner.display = False
        self.table.focus()
        self._saving = True
        self._update_topbar()
        self._show_status(force=True)
        self.bridge.start()

    async def on_unmount(self) -> None:
        await self.bridge.stop()

    # ------------------------------------------------------------------ feed -> state (ingest)

    def feed_connecting(
        self, url: str, error: str | None, retry_in_s: float | None, attempt: int, of: int
    ) -> None:
        self.info.state = "connecting"
        self.info.error = error
        self._retry_at = None if retry_in_s is None else self.clock.monotonic() + retry_in_s
        if error:
            tries = f"try {attempt + 1} of {of}" if of else f"try {attempt + 1}"
            self.show_banner(f"{error} ({tries})", "error")

    def feed_connected(self, feed: Any, refs: list[dict[str, Any]]) -> list[str]:
        self._feed = feed
        self.show_banner(self._first_run_hint(), "hint")
        self.info.url = feed.url or self.url
        self.info.server = str(feed.welcome.get("server", ""))
        self.info.encoding = feed.encoding
        self.info.state, self.info.error, self._retry_at = "live", None, None
        self.lag.reset()
        if self.state is None or [r["symbol"] for r in refs] != [r.symbol for r in self.state.refs]:
            self.state = MarketState(refs, self.clock.monotonic())
            self.table.state = self.state
        unknown = [s for s in self.watchlist if s not in self.state]
        if unknown:
            self.notify(
                f"not on this server, dropped from the watchlist: {', '.join(unknown)}",
                severity="warning",
            )
            self.watchlist = [s for s in self.watchlist if s in self.state]
        self._send_pace()
        return list(self.watchlist)

    def feed_batch(self, batch: Batch) -> None:
        if self.state is not None:
            ticks = batch.ticks
            self.state.apply(ticks, self.clock.monotonic())
            self.info.conflated += batch.conflated
            if batch.kind == "ticks" and len(ticks):
                self.lag.observe(int(ticks["ts"].max()), self.clock.wall_ns())

    def feed_gap(self, gap: Gap) -> None:
        self.info.gaps += 1
        self.info.lost += gap.lost or 0
        if gap.reason != "seq":  # a new connection or source: its clock and first batches anew
            self.lag.reset()
        if gap.reason == "restarted":
            when = datetime.fromtimestamp(self.clock.wall_ns() / 1e9, UTC).strftime("%H:%M:%S")
            self.notify(
                f"the server restarted: history before {when} UTC is gone; "
                "prices, volumes and sparklines start again",
                title="feed restarted",
                severity="warning",
                timeout=30,
            )
        elif gap.reason == "reconnected":
            missed = f"; {gap.lost:,} updates missed" if gap.lost else ""
            self.notify(f"reconnected after {gap.downtime_s:.1f}s{missed}", title="feed")

    def feed_status(self, status: Status) -> None:
        self.info.state = status.state
        self.info.error = status.error
        if status.state == "live":
            self.show_banner(self._first_run_hint(), "hint")
        elif status.error:
            self.show_banner(f"{status.error}; reconnecting (try {status.attempt})", "error")
        self._retry_at = (
            None if status.retry_in_s is None else self.clock.monotonic() + status.retry_in_s
        )
        self._show_status(force=True)

    def feed_rtt(self, rtt_s: float) -> None:
        self.info.rtt_s = rtt_s

    def feed_reply(self, command: Command, result: Any, error: str | None) -> None:
        if isinstance(command, Subscribe):
            if error is not None:
                bad = list(result.symbols) if isinstance(result, ProtocolError) else []
                self.notify(f"cannot add {', '.join(command.symbols)}: {error}", severity="error")
                if bad:
                    self.watchlist = [s for s in self.watchlist if s not in bad]
                    rest = tuple(s for s in command.symbols if s not in bad)
                    if rest:
                        self.bridge.send(Subscribe(rest))
                return
            subs = set(result)
            new = [s for s in command.symbols if s not in self.watchlist]
            self.watchlist = [*self.watchlist, *new]
            self.subscribed = subs
            self._reorder(keep=command.symbols[-1] if new else None)
            self._save()
            if new:
                self._dismiss_hint()
        elif isinstance(command, Unsubscribe):
            if error is not None:
                self.notify(
                    f"cannot remove {', '.join(command.symbols)}: {error}", severity="error"
                )
                return
            self.subscribed = set(result)
            self._dismiss_hint()
            self.watchlist = [s for s in self.watchlist if s not in command.symbols]
            if self.state is not None:
                self.state.reset_symbols([self.state.index[s] for s in command.symbols])
            self._reorder()
            self._save()
        elif isinstance(command, Throttle):
            if error is not None:
                self.notify(f"throttle refused: {error}", severity="error")
                return
            if not command.announce:
                return
            self.throttle_ms = command.interval_ms
            self.info.throttle_ms = command.interval_ms
            self._update_topbar()
            self.notify(
                f"throttle {command.interval_ms} ms per symbol"
                if command.interval_ms
                else "throttle off: the latest state at the screen's pace"
            )

    def feed_fatal(self, message: str) -> None:
        self.fatal_error = message
        self.info.state, self.info.error = "closed", message
        self.exit(2, return_code=2)  # run_app prints the message once, as `tail` does

    # ------------------------------------------------------------------ render (the timer)

    def flush(self) -> None:
        """One frame: repaint the rows that changed, the detail screen, the status bar."""
        now = self.clock.monotonic()
        self.frames += 1
        state = self.state
        if state is not None:
            if state.advance(now) and self.sort_key in _LIVE_SORTS and not self.paused:
                self._reorder()
            if not self.paused:
                dirty = state.take_dirty()
                expired = state.expired_flashes(self._last_flush, now)
                table = self.table
                with self.batch_update():
                    if now - self._last_ages >= AGES_EVERY_S:
                        self._last_ages = now
                        table.refresh_ids(table.rows)
                    else:
                        table.refresh_ids(np.union1d(dirty, expired) if expired.size else dirty)
                    screen = self.screen
                    if (
                        isinstance(screen, DetailScreen)
                        and screen.is_mounted
                        and (screen.sid in dirty or screen.sid in expired)
                    ):
                        screen.refresh_data()
                self.data_age_ns = self._data_age_ns(state)
        self._last_flush = now
        self._show_status()

    def _show_status(self, force: bool = False) -> None:
        now = self.clock.monotonic()
        if not force and now - self._last_status < STATUS_EVERY_S:
            return
        self._last_status = now
        info = self.info
        self.gauge.fill(info, self._feed, self.frames, now, self.clock.wall_ns())
        info.retry_in_s = None if self._retry_at is None else self._retry_at - now
        info.fps_target = self.fps
        info.paused = self.paused
        state = self.state
        if state is not None:
            info.held = state.total_updates - self._held_from if self.paused else 0
            info.tick_age_ns = self._data_age_ns(state)
        self.status_bar.show(info)

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

    def _dismiss_hint(self) -> None:
        self._hinted = True
        if self.banner.has_class("hint"):
            self.show_banner("", "hint")

    def _first_run_hint(self) -> str:
        if not self._default_watchlist or self._hinted:
            return ""
        return (
            "Default watchlist: a adds symbols (AAPL, or a name: apple), d removes the selected "
            "one, ? shows every key. Your changes are saved."
        )

    def _reorder(self, keep: str | None = None) -> None:
        state = self.state
        if state is None:
            return
        ids = [state.index[s] for s in self.watchlist if s in self.subscribed and s in state]
        self.table.set_rows(
            ordered(state, ids, self.sort_key, self.sort_reverse, self.filter_text), keep
        )
        self._update_topbar()

    def _update_topbar(self) -> None:
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
        self._start_render_timer()
        if self._feed is not None:
            self._send_pace()
        self.settings.fps = fps
        self._save()

    def _start_render_timer(self) -> None:
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
        self._reorder()
        self._save()

    def watch_sort_reverse(self) -> None:
        self.table.sort_reverse = self.sort_reverse
        self.table.refresh_all()
        self._reorder()
        self._save()

    def watch_filter_text(self) -> None:
        self._reorder()

    def watch_paused(self, paused: bool) -> None:
        if self.state is not None:
            self._held_from = self.state.total_updates
        if not paused and self.state is not None:
            self.state.dirty[self.state.have] = True
            self._reorder()
        self._show_status(force=True)

    def watch_theme(self) -> None:
        self.settings.theme = self.theme
        self._save()

    def _save(self) -> None:
        if not self._saving:
            return
        self.settings.watchlist = list(self.watchlist)
        self.settings.sort, self.settings.reverse = self.sort_key, self.sort_reverse
        warning = cfg.save(self.settings, self.config_path)
        if warning:
            self._saving = False  # say it once, not on every change
            self.notify(warning, severity="warning")

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Watchlist keys act on the main screen only (the detail screen has its own)."""
        return action not in _MAIN_ONLY or self.screen is self.screen_stack[0]

    def action_add(self) -> None:
        if self.state is None:
            self.notify(
                "not connected yet: the symbol list comes from the server", severity="warning"
            )
            return

        def added(symbols: list[str] | None) -> None:
            if symbols:
                self.add_symbols(symbols)

        self.push_screen(AddSymbolScreen(self.state.refs, set(self.subscribed)), added)

    def add_symbols(self, symbols: Sequence[str]) -> None:
        """Subscribe to `symbols`, matched case-insensitively against the server's universe."""
        if self.state is None:
            self.bridge.send(Subscribe(tuple(s.upper() for s in symbols)))
            return
        try:
            wanted = resolve_symbols(list(symbols), [r.symbol for r in self.state.refs])
        except ProtocolError as exc:
            self.notify(f"cannot add: {exc.message}", severity="error")
            return
        new = tuple(s for s in wanted if s not in self.subscribed)
        if not new:
            self.notify("already in the watchlist")
            if wanted:
                self.table.move_to(wanted[-1])
            return
        self.bridge.send(Subscribe(new))

    def action_remove(self) -> None:
        symbol = self.table.cursor_symbol
        if symbol is not None:
            self.remove_symbols([symbol])

    def remove_symbols(self, symbols: Sequence[str]) -> None:
        self.bridge.send(Unsubscribe(tuple(symbols)))

    def action_sort_next(self) -> None:
        i = _CYCLE.index(self.sort_key) if self.sort_key in _CYCLE else -1
        self.sort_key = _CYCLE[(i + 1) % len(_CYCLE)]

    def action_sort_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse

    def sort_by(self, key: str) -> None:
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_key = key

    @on(WatchTable.HeaderClicked)
    def _header_clicked(self, event: WatchTable.HeaderClicked) -> None:
        self.sort_by(event.key)

    @on(WatchTable.Selected)
    def _row_selected(self, event: WatchTable.Selected) -> None:
        self.open_detail(event.symbol)

    def action_filter(self) -> None:
        box = self.filter_box
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        box = self.filter_box
        box.display = bool(box.value)
        self.table.focus()

    def key_escape(self) -> None:
        box = self.filter_box
        if box.display or self.filter_text:
            box.value = ""
            box.display = False
            self.filter_text = ""
            self.table.focus()

    def action_open_detail(self) -> None:
        symbol = self.table.cursor_symbol
        if symbol is not None:
            self.open_detail(symbol)

    def open_detail(self, symbol: str) -> None:
        if self.state is not None and symbol in self.state:
            self.push_screen(DetailScreen(self.state, symbol, self.clock))

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused

    def action_throttle(self) -> None:
        def chosen(interval_ms: int | None) -> None:
            if interval_ms is not None:
                self.set_throttle(interval_ms)

        self.push_screen(ThrottleScreen(self.throttle_ms), chosen)

    def action_help(self) -> None:
        if isinstance(self.screen, DetailScreen):
            self.push_screen(HelpScreen(DETAIL_HELP, "detail screen"))
        else:
            self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        await self.bridge.stop(QUIT_CLOSE_S)
        self._save()
        self.exit(0)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from dashboard_commands(self)

    def set_throttle(self, interval_ms: int) -> None:
        self.bridge.send(Throttle(interval_ms, self.pace_ms if self.latest else 0))

    @property
    def pace_ms(self) -> int:
        """How often the server sends a symbol's latest state when the user set no throttle.

        A quarter of a frame (12 ms at 20 fps): a screen shows one state per frame, so more would
        only cost CPU (every update: ~700 messages a second on the default watchlist, twice the
        CPU), while a whole frame's throttle would add half a frame to the median data age
        (measured: median 8 ms at a quarter, 16 ms at half a frame, 2.5 ms with every update).
        """
        return max(1, round(250 / self.fps))

    def _send_pace(self) -> None:
        if not self.latest:
            return
        self.bridge.send(Throttle(self.throttle_ms, self.pace_ms, announce=False))

    def set_fps(self, fps: float) -> None:
        self.fps = fps

    def clear_filter(self) -> None:
        self.key_escape()


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
