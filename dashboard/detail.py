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

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from tickwire.feed.client.book import Book

from . import fmt
from .clock import Clock
from .ladder import ladder_text
from .state import MarketState


def chart_text(
    hist: np.ndarray,
    vol: np.ndarray,
    width: int,
    height: int,
    colours: dict[str, str],
    decimals: int = 2,
) -> Text:
    """Bid/ask as a band with the last trade on it, one column per update, price axis left.

    Axis labels are printed at the symbol's precision (`decimals`), and a label that would read
    the same as the one above it (a range of a few ticks over many rows) is left out.
    """
    axis_w = 10
    cols = max(1, width - axis_w)
    rows = max(3, height - 2)  # the last two lines: volume bars and a caption
    hist = hist[-cols:]
    vol = vol[-cols:]
    text = Text(no_wrap=True, overflow="crop")
    if len(hist) == 0 or not np.isfinite(hist).any():
        text.append("waiting for updates…", style=colours["muted"])
        return text
    lo = float(np.nanmin(hist[:, :2]))
    hi = float(np.nanmax(hist[:, :2]))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.01, hi + 0.01

    def row_of(price: float) -> int:
        return round((hi - price) / (hi - lo) * (rows - 1))

    grid = [[" "] * len(hist) for _ in range(rows)]
    style = [[""] * len(hist) for _ in range(rows)]
    for x, (bid, ask, last) in enumerate(hist):
        if not (math.isfinite(bid) and math.isfinite(ask)):
            continue
        ra, rb = row_of(ask), row_of(bid)
        for r in range(ra + 1, rb):
            grid[r][x], style[r][x] = "│", colours["band"]
        if ra == rb:
            grid[ra][x], style[ra][x] = "━", colours["accent"]
        else:
            grid[ra][x], style[ra][x] = "▔", colours["ask"]
            grid[rb][x], style[rb][x] = "▁", colours["bid"]
        if math.isfinite(last) and lo <= last <= hi:
            grid[row_of(last)][x], style[row_of(last)][x] = "●", colours["last"]
    shown: set[str] = set()
    for r in range(rows):
        label = ""
        if r == 0 or r == rows - 1 or r % 4 == 0:
            label = f"{hi - (hi - lo) * r / (rows - 1):,.{decimals}f}"
            if label in shown:
                label = ""
            shown.add(label)
        text.append(label.rjust(axis_w - 2) + " ┤", style=colours["muted"])
        line = grid[r]
        for x, ch in enumerate(line):
            text.append(ch, style=style[r][x] or None)
        text.append("\n")
    peak = float(vol.max()) if len(vol) else 0.0
    bars = "".join(
        " " if v <= 0 or peak <= 0 else fmt.BARS[min(7, int(v / peak * 7.999))] for v in vol
    )
    text.append("volume".rjust(axis_w - 2) + " ┤", style=colours["muted"])
    text.append(bars, style=colours["volume"])
    text.append("\n")
    text.append(
        " " * axis_w
        + f"last {len(hist)} updates   ▔ ask  ▁ bid  │ spread  ● last trade  volume per update",
        style=colours["muted"],
    )
    return text


class PriceChart(Widget):
    DEFAULT_CSS = """
    PriceChart { width: 1fr; height: 1fr; min-height: 8; padding: 0 1; }
    """

    def __init__(self, state: MarketState, sid: int) -> None:
        super().__init__()
        self.state = state
        self.sid = sid

    def render(self) -> Text:
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
        hist, vol = self.state.history(self.sid)
        decimals = int(self.state.decimals[self.sid])
        return chart_text(hist, vol, self.size.width, self.size.height, colours, decimals)


def _colours(widget: Widget) -> dict[str, str]:
    theme = widget.app.current_theme
    return {
        "ask": theme.error or "red",
        "bid": theme.success or "green",
        "ask_bar": f"dim {theme.error or 'red'}",
        "bid_bar": f"dim {theme.success or 'green'}",
        "muted": "dim",
    }


class DepthLadder(Widget):
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

    def render(self) -> Text:
        colours = _colours(self)
        return ladder_text(
            self.book(),
            self.content_size.width,
            self.size.height,
            self.decimals,
            colours,
            self.size_text,
        )


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

    def compose(self) -> ComposeResult:
        ref = self.state.refs_by_id[self.sid]
        yield Static(
            Content.from_markup(
                "$sym  [$text-muted]$name · $sector[/]",
                sym=ref.symbol,
                name=ref.name,
                sector=ref.sector,
            ),
            id="title",
        )
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
                ladder.refresh()

    def refresh_data(self) -> None:
        if self.is_mounted:  # else pushed, not yet composed: on_mount draws the first picture
            self._draw()

    def _draw(self) -> None:
        try:
            quote, chart = self.query_one("#quote", Static), self.query_one(PriceChart)
        except NoMatches:  # the screen is being dismissed: its widgets went first
            return
        quote.update(quote_content(self.state, self.sid, self.clock))
        chart.refresh()
