"""`DashboardApp`: the watchlist's key bindings, actions, palette commands and screens.

The widgets, UI state and render timer are `view`'s (`DashboardView`); the feed callbacks are
`ingest`'s (`FeedIngest`); this module wires what the user presses to them and to the feed's
commands (`bridge`), and opens the dialogs and the detail screen.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from textual import on
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Input

from tickwire.feed import ProtocolError
from tickwire.feed.client.stream import resolve_symbols

from .bridge import BookOff, BookOn, Subscribe, Throttle, Unsubscribe
from .columns import SORT_KEYS
from .commands import dashboard_commands
from .detail import DetailScreen
from .ingest import FeedIngest
from .screens import DETAIL_HELP, AddSymbolScreen, HelpScreen, ThrottleScreen
from .table import WatchTable

QUIT_CLOSE_S = 0.25
"""How long quitting waits for the feed's close handshake (our 1000 close frame goes at once;
this is the server's reply) before it lets go: quitting takes well under a second."""
_MAIN_ONLY = frozenset(
    {
        "add",
        "remove",
        "sort_next",
        "sort_reverse",
        "filter",
        "open_detail",
        "throttle",
        "toggle_imbalance",
    }
)
_CYCLE = tuple(k for k in SORT_KEYS if k not in ("trend", "imb"))  # Imb: by its header


class DashboardApp(FeedIngest):
    """A live watchlist on a tickwire feed. `connect()` must return `async with`-able feed."""

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
        Binding("i", "toggle_imbalance", "Imbalance", show=False),
        Binding("S", "sort_reverse", "Reverse", show=False),
    ]

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
        if self.state is None or symbol not in self.state:
            return
        book = None
        if self.book_depth > 0:  # the book of this one symbol only, while its screen is up
            self.book_symbol, self.book_dirty = symbol, True
            self.bridge.send(BookOn(symbol))
            book = functools.partial(self.feed.book, symbol)
        self.push_screen(
            DetailScreen(self.state, symbol, self.clock, book=book, on_leave=self._left_detail)
        )

    def _left_detail(self, symbol: str) -> None:
        if not any(isinstance(s, DetailScreen) for s in self.screen_stack):
            self.uncovered()
        if self.book_symbol == symbol:
            self.book_symbol = None
            self.bridge.send(BookOff(symbol))

    def action_toggle_imbalance(self) -> None:
        self.imbalance_chosen = True
        self.show_imbalance("imb" not in self.table.optional)

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
        self.save_settings()
        self.exit(0)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from dashboard_commands(self)

    def set_throttle(self, interval_ms: int) -> None:
        self.bridge.send(Throttle(interval_ms, self.pace_ms if self.latest else 0))

    def set_fps(self, fps: float) -> None:
        self.fps = fps

    def clear_filter(self) -> None:
        self.key_escape()
