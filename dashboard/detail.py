"""`DetailScreen`: one symbol up close: quote, a bid/ask/last chart, volume, its own counters.

Reads the same `MarketState` as the table; the app's render timer calls `refresh_data()` when
this symbol is dirty, so the screen never sees a message per tick. A pushed screen is composed
later, on its own turn: until it is mounted a refresh does nothing (`on_mount` draws it), as the
timer may fire in between. `Esc` goes back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer, Static

from tickwire.feed.client.book import Book

from . import fmt
from .chart import chart_rows
from .clock import Clock
from .ladder import ladder_text
from .lag import ShownLag
from .state import MarketState
from .status import StatusInfo, state_badge


class _Strips(Widget):
    """A widget drawn through Textual's Line API: its lines built once (`_build`) per new
    `version` of its data (`redraw`), a size or a theme, and kept; `shown` is the version they
    show. Textual's own text pipeline (markup, wrapping, a style per cell) costs several times
    the lines themselves."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: int | None = None  # the version of the data last drawn
        self._lines: list[Strip] = []
        self._drawn_for: tuple[object, ...] | None = None  # what _lines were built for

    @property
    def version(self) -> int | None:
        raise NotImplementedError

    def redraw(self) -> None:
        """The data changed: build the lines afresh at the next paint."""
        self._drawn_for = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        base = self.visual_style.rich_style
        key = (width, height, self.app.theme, base)
        if key != self._drawn_for:
            self._drawn_for = key
            self.shown = self.version
            self._lines = self._build(width, height, base)
        return self._lines[y] if y < len(self._lines) else Strip.blank(width, base)

    def _build(self, width: int, height: int, base: Style) -> list[Strip]:
        raise NotImplementedError


class PriceChart(_Strips):
    """The chart through Textual's Line API: each line a `Strip` of one `Segment` per run of a
    colour, built once per new update of the symbol (`redraw`), a size or a theme; Textual's
    own text pipeline (markup, wrapping, a style per cell) costs several times the chart."""

    DEFAULT_CSS = """
    PriceChart { width: 1fr; height: 1fr; min-height: 8; padding: 0 1; }
    """

    def __init__(self, state: MarketState, sid: int) -> None:
        super().__init__()
        self.state = state
        self.sid = sid

    @property
    def version(self) -> int:
        """The update count of the data held: the chart changes only when it does."""
        return int(self.state.updates[self.sid])

    def _build(self, width: int, height: int, base: Style) -> list[Strip]:
        theme = self.app.current_theme
        colours = {
            "ask": theme.error or "red",
            "bid": theme.success or "green",
            "accent": theme.accent or "yellow",
            "last": theme.warning or "yellow",
            "band": "dim",
            "muted": "dim",
            "volume": theme.primary or "blue",
        }
        styles = {k: base + Style.parse(v) for k, v in colours.items()}
        hist, vol = self.state.history(self.sid)
        rows = chart_rows(hist, vol, width, height, int(self.state.decimals[self.sid]))
        return [
            Strip([Segment(part, styles[k] if k else base) for part, k in runs]).adjust_cell_length(
                width, base
            )
            for runs in rows
        ]


def _colours(widget: Widget) -> dict[str, str]:
    theme = widget.app.current_theme
    return {
        "ask": theme.error or "red",
        "bid": theme.success or "green",
        "ask_bar": f"dim {theme.error or 'red'}",
        "bid_bar": f"dim {theme.success or 'green'}",
        "muted": "dim",
    }


class DepthLadder(_Strips):
    """The symbol's order book beside the chart: `book()` is the feed's checked local copy."""

    DEFAULT_CSS = """
    DepthLadder { width: 40; height: 1fr; min-height: 8; padding: 0 1; border-left: vkey $panel; }
    """

    def __init__(
        self, book: Callable[[], Book | None], decimals: int, size_text: Callable[[int], str]
    ) -> None:
        super().__init__()
        self.book = book
        self.decimals = decimals
        self.size_text = size_text

    @property
    def version(self) -> int | None:
        """The seq of the book held (None: none yet)."""
        book = self.book()
        return None if book is None else book.seq

    def _build(self, width: int, height: int, base: Style) -> list[Strip]:
        # Rich's segments of the ladder's text (a new book every frame), without Textual's
        # per-cell restyling of a Text.
        inner, colours = self.content_size.width, _colours(self)
        text = ladder_text(self.book(), inner, height, self.decimals, colours, self.size_text)
        console = self.app.console
        lines = console.render_lines(text, console.options.update_width(width), style=base)
        return [Strip(line, width) for line in lines]


def quote_content(state: MarketState, sid: int, clock: Clock) -> Content:
    ref = state.refs_by_id[sid]
    if not state.have[sid]:
        return Content.from_markup("[$text-muted]waiting for the first update of $s…", s=ref.symbol)
    t = state.tick[sid]
    dec = int(state.decimals[sid])
    bid, ask, last = float(t["bid"]), float(t["ask"]), float(t["last"])
    chg = last - ref.price
    pct = chg / ref.price * 100 if ref.price else math.nan
    tone = "$text-success" if chg > 0 else "$text-error" if chg < 0 else "$text-muted"
    spread = ask - bid
    bp = spread / ((ask + bid) / 2) * 1e4 if ask + bid else math.nan
    ts = datetime.fromtimestamp(int(t["ts"]) / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3]
    lines = [
        Content.from_markup(
            "[b]Bid[/b] [$text-success]$bid[/] × $bs    [b]Ask[/b] [$text-error]$ask[/] × $as"  # noqa: RUF001
            "    [b]Spread[/b] $sp ($bp bp)",
            bid=fmt.price(bid, dec),
            bs=fmt.size(state.qty, sid, int(t["bid_size"]), 12),
            ask=fmt.price(ask, dec),
            **{"as": fmt.size(state.qty, sid, int(t["ask_size"]), 12)},
            sp=f"{spread:.{dec}f}",
            bp=f"{bp:.1f}",
        ),
        Content.from_markup(
            f"[b]Last[/b] [b]$last[/b] × $ls    [b]Change[/b] [{tone}]$chg ($pct)[/]"  # noqa: RUF001
            "    [b]Reference[/b] $ref",
            last=fmt.price(last, dec),
            ls=fmt.size(state.qty, sid, int(t["last_size"]), 12),
            chg=fmt.signed(chg, dec),
            pct=fmt.pct(pct),
            ref=fmt.price(ref.price, dec),
        ),
        Content.from_markup(
            "[b]Volume[/b] $vol    [b]Updates[/b] $n ($rate/s)    [b]Seq[/b] $seq"
            "    [b]Seq jumps[/b] $jumps",
            vol=(
                f"{int(t['volume']):,}"
                if state.qty.whole(sid)
                else state.qty.text(sid, int(t["volume"]))
            ),
            n=f"{int(state.updates[sid]):,}",
            rate=fmt.rate(float(state.rate[sid])),
            seq=f"{int(t['seq']):,}",
            jumps=f"{int(state.jumps[sid]):,}",
        ),
        Content.from_markup(
            "[$text-muted]Last update $age ago, $ts UTC · tick size $tick[/]",
            age=fmt.age(clock.wall_ns() - int(t["ts"])),
            ts=ts,
            tick=f"{ref.tick_size:g}",
        ),
    ]
    if (halt := state.halted.get(sid)) is not None:
        since = datetime.fromtimestamp(halt[1] / 1e9, UTC).strftime("%H:%M:%S")
        lines.insert(
            0,
            Content.from_markup(
                "[b $text-error]HALTED[/] halted since $since UTC ($why)", since=since, why=halt[0]
            ),
        )
    return Content("\n").join(lines)


class DetailScreen(Screen[None]):
    DEFAULT_CSS = """
    DetailScreen { background: $surface; }
    DetailScreen #title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    DetailScreen #quote { height: 4; padding: 0 1; margin: 1 0 1 0; }
    DetailScreen #chart-and-book { height: 1fr; }
    """
    BINDINGS: ClassVar[Any] = [
        Binding("escape,q,backspace", "app.pop_screen", "Back"),
        Binding("p", "app.toggle_pause", "Pause"),
    ]

    def __init__(
        self,
        state: MarketState,
        symbol: str,
        clock: Clock,
        *,
        book: Callable[[], Book | None] | None = None,
        on_leave: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.state = state
        self.symbol = symbol
        self.sid = state.index[symbol]
        self.clock = clock
        self.book = book  # None: the server has no books, the screen is quote and chart only
        self.on_leave = on_leave
        self._chart_lag, self._book_lag = ShownLag(), ShownLag()
        ref = state.refs_by_id[self.sid]
        self._title = Content.from_markup(
            "$sym  [$text-muted]$name · $sector[/]",
            sym=ref.symbol,
            name=ref.name,
            sector=ref.sector,
        )
        self._badge: Content | None = None  # the feed's state while it is not LIVE

    def compose(self) -> ComposeResult:
        yield Static(self._title, id="title")
        yield Static(id="quote")
        if self.book is None:
            yield PriceChart(self.state, self.sid)
        else:
            with Horizontal(id="chart-and-book"):
                yield PriceChart(self.state, self.sid)
                state, sid = self.state, self.sid
                yield DepthLadder(
                    self.book,
                    int(state.decimals[sid]),
                    lambda units: fmt.size(state.qty, sid, units, 7),
                )
        yield Footer()

    def on_mount(self) -> None:
        self._draw()  # composed now (is_mounted turns True only after this handler)

    def on_resize(self) -> None:
        if self.book is not None:  # the ladder takes 40% of a wide screen, 40 cells at least
            self.query_one(DepthLadder).styles.width = max(40, min(64, self.size.width * 2 // 5))

    def on_unmount(self) -> None:
        if self.on_leave is not None:
            self.on_leave(self.symbol)

    def refresh_book(self) -> None:
        if self.is_mounted and self.book is not None:
            for ladder in self.query(DepthLadder):  # none while the screen is being dismissed
                if ladder.shown is None or ladder.shown != ladder.version:
                    ladder.redraw()

    def note(self, now_s: float) -> None:
        """A frame at `now_s`: note the versions of the data held, to measure `lag_s`."""
        for widget, lag in self._drawn():
            version = widget.version
            if version is not None:
                lag.seen(version, now_s)

    def lag_s(self, now_s: float) -> float:
        """How long the oldest data held and not yet drawn has waited (0: the screen is current)."""
        return max((lag.lag_s(w.shown, now_s) for w, lag in self._drawn()), default=0.0)

    def _drawn(self) -> list[tuple[PriceChart | DepthLadder, ShownLag]]:
        drawn: list[tuple[PriceChart | DepthLadder, ShownLag]] = []
        drawn.extend((chart, self._chart_lag) for chart in self.query(PriceChart))
        drawn.extend((ladder, self._book_lag) for ladder in self.query(DepthLadder))
        return drawn

    def show_state(self, info: StatusInfo) -> None:
        """The feed's state beside the title while it is not LIVE (BEHIND counts this screen)."""
        badge = None if info.state == "live" else state_badge(info)
        if badge == self._badge or not self.is_mounted:
            return
        self._badge = badge
        title = self._title if badge is None else Content("   ").join([self._title, badge])
        for widget in self.query("#title").results(Static):
            widget.update(title, layout=False)

    def refresh_data(self) -> None:
        if self.is_mounted:  # else pushed, not yet composed: on_mount draws the first picture
            self._draw()

    def _draw(self) -> None:
        try:
            quote, chart = self.query_one("#quote", Static), self.query_one(PriceChart)
        except NoMatches:  # the screen is being dismissed: its widgets went first
            return
        quote.update(quote_content(self.state, self.sid, self.clock), layout=False)  # height 4
        if chart.shown is None or chart.shown != chart.version:  # else the rate or a flash
            chart.redraw()
