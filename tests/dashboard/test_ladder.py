"""The detail screen's depth ladder against a real feed server with order books (and without)."""

from __future__ import annotations

import asyncio
import functools
import html
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import trio
from dash_helpers import NotedApp, drive, make_app, until
from textual.pilot import Pilot

from tickwire.dashboard.detail import DepthLadder, DetailScreen, PriceChart
from tickwire.dashboard.fake import FakeFeed
from tickwire.dashboard.ladder import imbalance, ladder_text
from tickwire.dashboard.local_server import server_thread
from tickwire.feed import BookUpdate, connect
from tickwire.feed.client.book import Book

COLOURS = {"ask": "red", "bid": "green", "ask_bar": "red", "bid_bar": "green", "muted": "dim"}


def levels(rows: list[tuple[float, int]]) -> np.ndarray:
    return np.array(rows, dtype=[("price", "f8"), ("size", "u8")])


def test_imbalance_is_the_bid_share_of_the_top_five_levels() -> None:
    bids = levels([(10.0, 100), (9.99, 100), (9.98, 100), (9.97, 100), (9.96, 100), (9.95, 9999)])
    asks = levels([(10.01, 100), (10.02, 100), (10.03, 100), (10.04, 100), (10.05, 100)])
    assert imbalance(bids, asks) == pytest.approx(0.5)  # the sixth bid level is not counted
    assert imbalance(bids, asks[:1]) == pytest.approx(500 / 600)
    assert math.isnan(imbalance(levels([]), levels([])))


def test_ladder_text_rows_best_first_with_spread_and_bars() -> None:
    bids = levels([(189.45, 300), (189.44, 1200), (189.43, 50)])
    asks = levels([(189.47, 600), (189.48, 100)])
    book = Book("AAPL", bids, asks, seq=7, ts=0, depth=20)
    text = ladder_text(book, 38, 20, 2, COLOURS).plain
    lines = text.splitlines()
    assert lines[0].startswith("spread 0.02 (")
    assert lines[1] == f"imbalance top 5 {1550 / 2250 * 100:.0f}% bid"
    assert len(lines) == 3 + 3  # header, titles, as many rows as the deeper side
    assert "189.45 │ 189.47" in lines[3] and "300" in lines[3] and "600" in lines[3]
    assert "189.44 │" in lines[4] and "189.48" in lines[4]
    assert lines[5].rstrip().endswith("189.43 │")
    assert lines[4].index("█") < lines[3].index("█")  # 1200 is the longest bar (left-growing)
    assert all(len(line) <= 38 for line in lines)
    short = ladder_text(book, 38, 5, 2, COLOURS).plain.splitlines()
    assert len(short) == 5  # cut to the height: the best two levels
    assert ladder_text(None, 38, 20, 2, COLOURS).plain.startswith("order book: waiting")


class BookApp(NotedApp):
    """Records the book updates the feed delivered (the symbols of each)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.book_updates: list[tuple[str, ...]] = []

    def feed_book(self, update: BookUpdate) -> None:
        self.book_updates.append(update.symbols)
        super().feed_book(update)


def _run(app: NotedApp, size: tuple[int, int], script: Any) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await script(pilot)

    asyncio.run(asyncio.wait_for(main(), 40))


_CELL = re.compile(r'<text[^>]*x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>')


def _screen_text(app: NotedApp, width: int) -> list[str]:
    """What the terminal shows now, line by line: the text of Textual's public SVG screenshot
    (each run of text is placed at its column; 12.2 units a cell)."""
    rows: dict[float, list[str]] = {}
    for x, y, run in _CELL.findall(app.export_screenshot()):
        line = rows.setdefault(float(y), [" "] * width)
        col = round(float(x) / 12.2)
        for k, ch in enumerate(html.unescape(run).replace("\xa0", " ").rstrip("\n")):
            if col + k < width:
                line[col + k] = ch
    return ["".join(rows[y]).rstrip() for y in sorted(rows)]


@pytest.mark.parametrize("size", [(80, 24), (140, 40)])
def test_detail_screen_shows_a_live_ladder_and_drops_the_book_on_leave(
    size: tuple[int, int],
) -> None:
    with server_thread(book_depth=20, heartbeat_ms=200) as url:
        feed = functools.partial(connect, url, backoff_initial_s=0.05, backoff_max_s=0.2)
        app = BookApp(feed, url=url, watchlist=["AAPL", "MSFT"])

        async def script(pilot: Pilot[Any]) -> None:
            await until(pilot, lambda: app.state is not None and app.table.rows, "rows")
            assert app.book_depth == 20
            assert "imb" in _columns(app)  # shown with books
            await until(pilot, lambda: "Imb" in _line(app, 0), "the Imb header")
            app.table.move_to("AAPL")
            app.simulate_key("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), "detail")
            screen = app.screen
            assert isinstance(screen, DetailScreen)
            await until(pilot, lambda: app.feed.book("AAPL") is not None, "AAPL's book")
            assert app.feed.book("MSFT") is None  # only the detail screen's symbol
            first = app.feed.book("AAPL")
            await until(pilot, lambda: app.feed.book("AAPL").seq > first.seq, "book changes")
            ladder = screen.query_one(DepthLadder)
            await until(pilot, lambda: "imbalance top 5" in _ladder(ladder), "ladder drawn")
            book = app.feed.book("AAPL")
            ladder.redraw()  # drawn from the book of now: no await between, the same book
            shown = _ladder(ladder).splitlines()
            rows = [line for line in shown[3:] if "│" in line]
            assert len(rows) >= min(len(book.bids), size[1] - 13)  # fills its height
            best = f"{float(book.bids['price'][0]):,.2f}"
            assert any(best in line for line in rows[:3]), (best, shown)
            assert ladder.outer_size.width >= 40
            assert screen.query_one(PriceChart).size.width >= 30  # the chart is still beside
            lines = _screen_text(app, size[0])
            assert any(line.startswith(" Bid ") for line in lines)  # the quote is as before
            assert any("┤" in line and "imbalance top 5" in line for line in lines)
            # the chart's axis left, a ladder row (bid price │ ask price) right, on one line
            assert any(re.search(r"┤.*\d │ \d", line) for line in lines), lines
            app.simulate_key("escape")
            await until(pilot, lambda: not isinstance(app.screen, DetailScreen), "back")
            await until(pilot, lambda: app.feed.book("AAPL") is None, "book dropped")
            await until(pilot, lambda: "AAPL" in app.feed.subscription, "AAPL's ticks back")
            state = app.state
            assert state is not None
            seen = len(app.book_updates)
            n = int(state.updates[state.index["AAPL"]])
            await until(pilot, lambda: int(state.updates[state.index["AAPL"]]) > n + 5, "ticks")
            assert app.book_updates[seen:] == []  # the server sends no book any more
            assert sorted(app.feed.subscription) == ["AAPL", "MSFT"]
            # Enter, Esc, Enter at once: however the three requests interleave, the book comes
            app.table.move_to("AAPL")
            for key in ("enter", "escape", "enter"):
                app.simulate_key(key)
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), "detail again")
            await until(pilot, lambda: app.feed.book("AAPL") is not None, "the book again")
            again = app.feed.book("AAPL").seq
            await until(pilot, lambda: (app.feed.book("AAPL") or first).seq > again, "live")

        _run(app, size, script)


def _columns(app: NotedApp) -> list[str]:
    return [c.key for c, _, _ in app.table.column_spans(app.table.size.width)]


def _line(app: NotedApp, y: int) -> str:
    """The watchlist's line `y` as drawn (0: the header)."""
    return str(app.table.render_line(y).text)


def _ladder(widget: DepthLadder) -> str:
    return "\n".join(strip.text for strip in widget.render_lines(widget.region.reset_offset))


def test_without_books_the_detail_screen_is_chart_only() -> None:
    with server_thread(book_depth=0, heartbeat_ms=200) as url:
        feed = functools.partial(connect, url, backoff_initial_s=0.05, backoff_max_s=0.2)
        app = NotedApp(feed, url=url, watchlist=["AAPL"])

        async def script(pilot: Pilot[Any]) -> None:
            await until(pilot, lambda: app.state is not None and app.table.rows, "rows")
            assert app.book_depth == 0
            assert "imb" not in _columns(app)  # without books: as before, unless asked for
            app.simulate_key("i")
            await until(pilot, lambda: "Imb" in _line(app, 0), "the Imb header")
            state = app.state
            assert state is not None
            await until(pilot, lambda: state.have[state.index["AAPL"]], "AAPL's first tick")
            t = state.tick[state.index["AAPL"]]
            share = int(t["bid_size"]) / (int(t["bid_size"]) + int(t["ask_size"]))
            await until(pilot, lambda: f" {share * 100:.0f}% " in _line(app, 1), "AAPL's Imb")
            app.simulate_key("i")
            await until(pilot, lambda: "Imb" not in _line(app, 0), "Imb hidden again")
            app.simulate_key("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), "detail")
            screen = app.screen
            await until(pilot, lambda: screen.is_mounted, "mounted")
            assert not screen.query(DepthLadder)
            chart = screen.query_one(PriceChart)
            await until(pilot, lambda: chart.size.width > 0, "the chart laid out")
            assert chart.size.width == 80 - 2
            app.simulate_key("escape")
            await until(pilot, lambda: not isinstance(app.screen, DetailScreen), "back")
            assert not app.notes or all(n.severity != "error" for n in app.notes)

        _run(app, (80, 24), script)


class BookFake(FakeFeed):
    """The fake feed with a server's book bookkeeping (which symbols have a book) and a gate
    that holds unsubscribes, to order the dashboard's book requests at will."""

    def __init__(self) -> None:
        super().__init__(seed=7, rate_hz=0, preroll=1)
        self.welcome = {**self.welcome, "book_depth": 20}
        self.books: set[str] = set()
        self.gate = trio.Event()
        self.gate.set()
        self.unsubscribing: list[str] = []  # symbols of unsubscribes asked for (maybe held)

    async def subscribe(
        self,
        symbols: Sequence[str] | str,
        *,
        snapshot: bool = True,
        mode: str | None = None,
        book: int | bool | None = None,
    ) -> list[str]:
        out = await super().subscribe(symbols, snapshot=snapshot, mode=mode)
        if book:
            self.books.update([symbols] if isinstance(symbols, str) else symbols)
        return out

    async def unsubscribe(self, symbols: Sequence[str] | str) -> list[str]:
        self.unsubscribing.extend([symbols] if isinstance(symbols, str) else symbols)
        await self.gate.wait()
        self.books -= {symbols} if isinstance(symbols, str) else set(symbols)
        return await super().unsubscribe(symbols)

    def book(self, symbol: str) -> Book | None:
        return None


def test_a_screen_reopened_while_its_book_is_dropped_keeps_its_book() -> None:
    """Leave (unsubscribe, resubscribe) and open again (subscribe with the book): if the new
    subscribe lands before the old unsubscribe, the resubscribe must ask for the book again."""
    fake = BookFake()
    app, _ = make_app(fake)

    async def script(pilot: Pilot[Any]) -> None:
        symbol = app.table.cursor_symbol
        assert symbol is not None and app.book_depth == 20
        app.open_detail(symbol)
        await until(pilot, lambda: fake.books == {symbol}, "the book subscribed")
        fake.gate = trio.Event()  # the next unsubscribe waits
        await app.pop_screen()
        await until(pilot, lambda: fake.unsubscribing == [symbol], "BookOff")
        app.open_detail(symbol)
        subscribes = lambda: fake.requests.count(("subscribe", [symbol]))  # noqa: E731
        await until(pilot, lambda: subscribes() == 2, "the second BookOn")
        fake.gate.set()
        await until(pilot, lambda: subscribes() == 3, "BookOff's resubscribe")
        # The fake records a request before its reply comes; the book is noted after it.
        await until(pilot, lambda: fake.books == {symbol}, "the resubscribe's book")
        assert isinstance(app.screen, DetailScreen)

    drive(app, script)
