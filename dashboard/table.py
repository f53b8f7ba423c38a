"""`WatchTable`: the live watchlist, a Line-API widget that repaints only the rows that changed.

Textual's `DataTable.update_cell` re-renders every visible cell per change (57-175 ms a frame at
120x60 with 50 rows), so the live table draws its own lines: `render_line(y)` builds one `Strip`
per row from `MarketState`, cached until that row's data, the width, the cursor or the theme
changes, and the app's render timer calls `refresh_ids()` with the dirty symbols only. Line 0 is
the header (click it to sort); the columns and the row order are `columns`'. Imports Textual
and numpy; never trio or the feed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from . import fmt
from .clock import Clock
from .columns import Column, layout, row_cells
from .sparkcache import SparkCache
from .state import MarketState


def _blank_as(style: Style, row: Style) -> bool:
    """True if a space drawn in `style` looks exactly like one drawn in `row`."""
    return (
        style.bgcolor == row.bgcolor
        and bool(style.reverse) == bool(row.reverse)
        and not any((style.underline, style.underline2, style.overline, style.strike, style.link))
        and not any((row.underline, row.underline2, row.overline, row.strike, row.link))
    )


class WatchTable(ScrollView, can_focus=True):
    """The watchlist: one line per symbol, cursor, sortable header."""

    COMPONENT_CLASSES: ClassVar[Any] = {
        "watch-table--header",
        "watch-table--sorted",
        "watch-table--cursor",
        "watch-table--up",
        "watch-table--down",
        "watch-table--muted",
        "watch-table--symbol",
        "watch-table--flash-up",
        "watch-table--flash-down",
    }
    DEFAULT_CSS = """
    WatchTable {
        height: 1fr;
        background: $surface;
        scrollbar-size-vertical: 1;
        & > .watch-table--header { background: $panel; color: $text; text-style: bold; }
        & > .watch-table--sorted { background: $panel; color: $accent; text-style: bold; }
        & > .watch-table--cursor { background: $block-cursor-blurred-background; }
        &:focus > .watch-table--cursor { background: $block-cursor-background; }
        & > .watch-table--up { color: $text-success; }
        & > .watch-table--down { color: $text-error; }
        & > .watch-table--muted { color: $text-muted; }
        & > .watch-table--symbol { color: $text; text-style: bold; }
        & > .watch-table--flash-up { background: $success 55%; color: $text; }
        & > .watch-table--flash-down { background: $error 55%; color: $text; }
    }
    """
    BINDINGS: ClassVar[Any] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "Top", show=False),
        Binding("end,G", "jump(-1)", "Bottom", show=False),
    ]

    class Selected(Message):
        """The user opened a row (Enter or double click)."""

        def __init__(self, symbol: str) -> None:
            super().__init__()
            self.symbol = symbol

    class HeaderClicked(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, clock: Clock, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.state: MarketState | None = None
        self.rows: list[int] = []
        self.cursor = 0
        self.sort_key = "symbol"
        self.sort_reverse = False
        self._row_of: dict[int, int] = {}
        self._cache: dict[int, tuple[tuple[object, ...], Strip]] = {}
        self._header: tuple[tuple[object, ...], Strip] | None = None
        self.optional: frozenset[str] = frozenset()  # optional columns shown (`columns`)
        self._styles: dict[str, Style] = {}
        self._combo_styles: dict[bool, dict[str | None, Style]] = {}
        self._blank_like: set[int] = set()  # ids of styles in which a space looks as in the row's
        self._names: dict[int, tuple[str, str]] = {}  # symbol and name never change
        self._names_of: MarketState | None = None  # the state `_names` and `_sparks` are for
        self._sparks = SparkCache()
        self._update: tuple[int, int, float, int] | None = None  # set during render_lines
        self.lines_rendered = 0

    # ------------------------------------------------------------------ data in

    @property
    def cursor_symbol(self) -> str | None:
        if self.state is None or not self.rows:
            return None
        return str(self.state.symbols[self.rows[min(self.cursor, len(self.rows) - 1)]])

    def set_rows(self, ids: Sequence[int], keep: str | None = None) -> None:
        """Show `ids` in this order; the cursor stays on `keep` (default: its current symbol)."""
        keep = keep if keep is not None else self.cursor_symbol
        if list(ids) == self.rows:
            return
        self.rows = list(ids)
        self._row_of = {sid: i for i, sid in enumerate(self.rows)}
        if keep is not None and self.state is not None and keep in self.state.index:
            self.cursor = self._row_of.get(self.state.index[keep], self.cursor)
        self.cursor = max(0, min(self.cursor, len(self.rows) - 1))
        self._cache.clear()
        self._sparks.clear()  # a re-added symbol starts with an empty sparkline
        self._names.clear()
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)
        self._scroll_cursor_visible()
        self.refresh()

    def refresh_ids(self, ids: Sequence[int] | np.ndarray) -> int:
        """Repaint the rows of these symbols if they are on screen; returns how many."""
        top = int(self.scroll_offset.y)
        bottom = top + max(0, self.size.height - 1)
        lines: list[int] = []
        for sid in ids:
            row = self._row_of.get(int(sid))
            if row is not None:
                self._cache.pop(int(sid), None)
                if top <= row < bottom:
                    lines.append(row + 1)
        if len(lines) > 4:  # one region for the span: unchanged rows in it come from the cache
            self.refresh_lines(min(lines), max(lines) - min(lines) + 1)
        else:
            for y in lines:
                self.refresh_line(y)
        return len(lines)

    def refresh_all(self) -> None:
        self._cache.clear()
        self._sparks.clear()
        self._header = None
        self.refresh()

    def move_to(self, symbol: str) -> None:
        if self.state is not None and symbol in self.state.index:
            row = self._row_of.get(self.state.index[symbol])
            if row is not None:
                self._set_cursor(row)

    # ------------------------------------------------------------------ input

    def action_cursor(self, delta: int) -> None:
        self._set_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._set_cursor(self.cursor + direction * max(1, self.size.height - 2))

    def action_jump(self, row: int) -> None:
        self._set_cursor(len(self.rows) - 1 if row < 0 else row)

    def _set_cursor(self, row: int) -> None:
        row = max(0, min(row, len(self.rows) - 1))
        if row == self.cursor:
            return
        old = self.cursor
        self.cursor = row
        for r in (old, row):
            if 0 <= r < len(self.rows):
                self._cache.pop(self.rows[r], None)
                self.refresh_line(r + 1)
        self._scroll_cursor_visible()

    def _scroll_cursor_visible(self) -> None:
        visible = max(1, self.size.height - 1)
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            x = event.x
            for col, start, width in self.column_spans(self.size.width):
                if start <= x < start + width + 1:
                    self.post_message(self.HeaderClicked(col.key))
                    return
            return
        row = int(self.scroll_offset.y) + event.y - 1
        if 0 <= row < len(self.rows):
            self._set_cursor(row)
            if event.chain >= 2 and (symbol := self.cursor_symbol):
                self.post_message(self.Selected(symbol))

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.rows) + 1)
        self.refresh_all()
        self._scroll_cursor_visible()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = {}
        self._combo_styles = {}
        self._blank_like = set()
        self._cache.clear()
        self._header = None

    # ------------------------------------------------------------------ drawing

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(name, partial=True)
        return style

    def column_spans(self, width: int) -> list[tuple[Column, int, int]]:
        """`columns.layout` for this width, the market's sizes and symbols, and `optional`."""
        hints = (False, 6) if self.state is None else self.state.layout_hints
        return layout(width, *hints, shown=self.optional)

    def _combos(self, is_cursor: bool) -> dict[str | None, Style]:
        """Row style (cursor or not) plus each component style, combined once per theme."""
        table = self._combo_styles.get(is_cursor)
        if table is None:
            row = self._base() + self._style("watch-table--cursor") if is_cursor else self._base()
            table = {None: row}
            for name in self.COMPONENT_CLASSES:
                table[name] = row + self._style(name)
            self._combo_styles[is_cursor] = table
            self._blank_like.update(id(st) for st in table.values() if _blank_as(st, row))
        return table

    def _base(self) -> Style:
        style = self._styles.get("")
        if style is None:
            style = self._styles[""] = self.rich_style
        return style

    def render_lines(self, crop: Region) -> list[Strip]:
        """One screen update: width, scroll position and clocks are read once for all lines."""
        self._update = (
            self.size.width,
            int(self.scroll_offset.y),
            self.clock.monotonic(),
            self.clock.wall_ns(),
        )
        try:
            return super().render_lines(crop)
        finally:
            self._update = None

    def render_line(self, y: int) -> Strip:
        update = self._update
        if update is None:  # called on its own, not from render_lines
            update = (
                self.size.width,
                int(self.scroll_offset.y),
                self.clock.monotonic(),
                self.clock.wall_ns(),
            )
        width, top, now_s, wall_ns = update
        base = self._base()
        if y == 0:
            return self._render_header(width, base)
        row = top + y - 1
        if self.state is None or not 0 <= row < len(self.rows):
            return Strip.blank(width, base)
        sid = self.rows[row]
        age = fmt.age(wall_ns - int(self.state.tick[sid]["ts"])) if self.state.have[sid] else ""
        flash = self.state.flashing(sid, now_s)
        key = (width, row == self.cursor, flash, age)
        cached = self._cache.get(sid)
        if cached is not None and cached[0] == key:
            return cached[1]
        strip = self._render_row(sid, row == self.cursor, flash, age, width, base)
        self._cache[sid] = (key, strip)
        self.lines_rendered += 1
        return strip

    def _render_header(self, width: int, base: Style) -> Strip:
        key = (width, self.sort_key, self.sort_reverse)
        if self._header is not None and self._header[0] == key:
            return self._header[1]
        style = base + self._style("watch-table--header")
        sorted_style = base + self._style("watch-table--sorted")
        segments: list[Segment] = []
        x = 0
        for col, start, w in self.column_spans(width):
            if start > x:
                segments.append(Segment(" " * (start - x), style))
            title = col.title
            this = style
            if col.key == self.sort_key:
                title = f"{title}{'▼' if self.sort_reverse else '▲'}"
                this = sorted_style
            text = title[:w].rjust(w) if col.right else title[:w].ljust(w)
            segments.append(Segment(text, this))
            x = start + w
        strip = Strip(segments).crop_extend(0, width, style)
        self._header = (key, strip)
        return strip

    def _render_row(
        self, sid: int, is_cursor: bool, flash: int, age: str, width: int, base: Style
    ) -> Strip:
        state = self.state
        assert state is not None
        styles = self._combos(is_cursor)
        have = bool(state.have[sid])
        names = self._names_for(state, sid)
        cells = row_cells(state, sid, have, names, styles, flash, age)
        return self._join(state, sid, have, cells, styles, width)

    def _names_for(self, state: MarketState, sid: int) -> tuple[str, str]:
        """The row's symbol and name, which never change within one universe."""
        if state is not self._names_of:  # a new universe: ids mean other symbols
            self._names_of = state
            self._names.clear()
            self._sparks.clear()
        names = self._names.get(sid)
        if names is None:
            names = self._names[sid] = (str(state.symbols[sid]), str(state.names[sid]))
        return names

    def _join(
        self,
        state: MarketState,
        sid: int,
        have: bool,
        cells: dict[str, tuple[str, Style]],
        styles: dict[str | None, Style],
        width: int,
    ) -> Strip:
        """The row's cells laid out in the columns for `width`, as few segments as possible."""
        row_style = styles[None]
        # Runs of one style become one segment, and the spaces between columns join the cell
        # before them when a space looks the same in its style (same background, no underline):
        # ~10 segments a row instead of ~27, and every later stage (filters, divide, escape
        # sequences) pays per segment.
        blank_like = self._blank_like
        texts: list[str] = []
        seg_styles: list[Style] = []
        blank = ("", row_style)
        x = 0
        for col, start, w in self.column_spans(width):
            if start > x:
                gap = " " * (start - x)
                if seg_styles and id(seg_styles[-1]) in blank_like:
                    texts[-1] += gap
                else:
                    texts.append(gap)
                    seg_styles.append(row_style)
            if col.key == "trend":
                if sid in state.halted:
                    text, style = "HALTED".ljust(w)[:w], styles["watch-table--down"]
                elif have:
                    text, rising = self._sparks.get(state, sid, w)
                    style = styles["watch-table--up" if rising else "watch-table--down"]
                else:
                    text, style = " " * w, row_style
            else:
                text, style = cells.get(col.key, blank)
                text = text[:w].rjust(w) if col.right else text[:w].ljust(w)
            if seg_styles and seg_styles[-1] is style:
                texts[-1] += text
            else:
                texts.append(text)
                seg_styles.append(style)
            x = start + w
        if x < width:
            if seg_styles and id(seg_styles[-1]) in blank_like:
                texts[-1] += " " * (width - x)
            else:
                texts.append(" " * (width - x))
                seg_styles.append(row_style)
        return Strip(list(map(Segment, texts, seg_styles)), width)
