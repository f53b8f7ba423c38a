"""The dashboard's entries in the command palette (ctrl+p): add, remove, sort, throttle, fps...

The app yields them from Textual's `App.get_system_commands`, beside Textual's own (theme,
screenshot, quit; the theme chosen there is saved too). This module sees the app only through
the small `Palette` protocol, so it never imports `app`. "Add"/"Remove" entries for every symbol
are searchable but not listed when the palette opens (`discover=False`).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Protocol

from textual.app import SystemCommand

from .columns import SORT_KEYS, TITLES
from .state import MarketState

THROTTLES_MS = (0, 100, 250, 1000)
RATES_FPS = (10, 20, 30, 60)


class Palette(Protocol):
    """What the palette's entries call on the app."""

    state: MarketState | None
    subscribed: set[str]

    def sort_by(self, key: str) -> None: ...
    def action_sort_reverse(self) -> None: ...
    def action_toggle_pause(self) -> None: ...
    def set_throttle(self, interval_ms: int) -> None: ...
    def set_fps(self, fps: float) -> None: ...
    def clear_filter(self) -> None: ...
    def action_help(self) -> None: ...
    def add_symbols(self, symbols: list[str]) -> None: ...
    def remove_symbols(self, symbols: list[str]) -> None: ...


def dashboard_commands(app: Palette) -> Iterator[SystemCommand]:
    """Every palette entry of the dashboard, in the order they are listed."""
    for key in SORT_KEYS:
        yield SystemCommand(
            f"Sort by {TITLES[key]}",
            "sort the watchlist by this column",
            partial(app.sort_by, key),
        )
    yield SystemCommand("Reverse sort", "flip the sort order", app.action_sort_reverse)
    yield SystemCommand(
        "Pause / resume rendering", "data keeps coming while paused", app.action_toggle_pause
    )
    for ms in THROTTLES_MS:
        yield SystemCommand(
            f"Throttle {ms} ms" if ms else "Throttle off",
            "server-side conflation per symbol",
            partial(app.set_throttle, ms),
        )
    for rate in RATES_FPS:
        yield SystemCommand(
            f"Refresh rate {rate} fps",
            "how often the screen repaints (saved)",
            partial(app.set_fps, float(rate)),
        )
    yield SystemCommand("Clear filter", "show every symbol of the watchlist", app.clear_filter)
    yield SystemCommand("Help: keys", "what every key does", app.action_help)
    state = app.state
    if state is None:
        return
    for ref in state.refs:
        if ref.symbol in app.subscribed:
            yield SystemCommand(
                f"Remove {ref.symbol} ({ref.name})",
                "unsubscribe",
                partial(app.remove_symbols, [ref.symbol]),
                discover=False,
            )
        else:
            yield SystemCommand(
                f"Add {ref.symbol} ({ref.name})",
                ref.sector,
                partial(app.add_symbols, [ref.symbol]),
                discover=False,
            )
