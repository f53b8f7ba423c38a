"""The page's depth ladder in a real browser (Debian's chromium driven by Playwright).

The page keeps the selected symbol's book from /v1's JSON `book_snapshot` and `book` messages on a
connection of its own; here it is compared with the client library's book at the same book seq
(the library checks every update's CRC32), and a lossy connection shows it re-subscribing.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from _browser import in_browser, js_errors, page_url

from tickwire.feed import BookUpdate, connect
from tickwire.feed.faults import parse_spec
from tickwire.feed.server.server import Server, ServerConfig

pytestmark = pytest.mark.usefixtures("chromium")  # _browser.require_chromium

LADDER = """() => {
    const el = document.getElementById('ladder');
    const rows = [...document.querySelectorAll('#ladder-rows tr')].map(
        (tr) => [...tr.children].map((td) => td.textContent));
    return {hidden: el.hidden, symbol: el.dataset.symbol, seq: +(el.dataset.seq ?? -1),
            resyncs: +(el.dataset.resyncs ?? 0), rows,
            spread: document.getElementById('ladder-spread').textContent,
            imb: document.getElementById('ladder-imb').textContent};
}"""


def look_when(page: Any, condition: str, arg: Any = None) -> dict[str, Any]:
    """The ladder (`LADDER`) as it is when `condition` (JS over `ladder` and `arg`) first holds,
    read in the same evaluation: a look taken after a separate wait can meet a resync between
    the two (the ladder empty, its seq -1)."""
    check = f"arg => {{ const ladder = ({LADDER})(); return ({condition}) ? ladder : null; }}"
    return dict(page.wait_for_function(check, arg=arg).json_value())


async def start(nursery: trio.Nursery, **config: Any) -> Server:
    server = Server(ServerConfig(port=0, heartbeat_ms=200, **config))
    await nursery.start(server.run)
    return server


async def record_books(url: str, symbol: str, books: dict[int, Any], *, task_status: Any) -> None:
    """The client library's checked book of `symbol` after every update, by book seq."""
    async with connect(url) as feed:
        await feed.subscribe([symbol], book=True, snapshot=False)
        task_status.started()
        async for event in feed:
            if isinstance(event, BookUpdate) and symbol in event.symbols:
                book = feed.book(symbol)
                if book is not None:
                    books[book.seq] = book


def _rows_of(book: Any, n: int = 10) -> list[list[str]]:
    """What the page's ladder rows should read for `book` (the page's own number format)."""

    def big(x: int) -> str:
        return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k" if x >= 1e3 else str(x)

    rows = []
    for k in range(n):
        bid = book.bids[k] if k < len(book.bids) else None
        ask = book.asks[k] if k < len(book.asks) else None
        rows.append(
            [
                "",
                big(int(bid["size"])) if bid is not None else "",
                f"{float(bid['price']):.2f}" if bid is not None else "",
                f"{float(ask['price']):.2f}" if ask is not None else "",
                big(int(ask["size"])) if ask is not None else "",
                "",
            ]
        )
    return rows


async def test_the_page_shows_the_selected_symbols_book_as_the_library_holds_it(
    nursery: trio.Nursery,
) -> None:
    server = await start(nursery, book_depth=20)
    books: dict[int, Any] = {}
    await nursery.start(record_books, server.url, "MSFT", books)

    def script(ctx: Any) -> dict[str, Any]:
        page = ctx.new_page()
        errors = js_errors(page)
        page.goto(page_url(server.url, symbols="AAPL,MSFT"))
        page.wait_for_function("() => document.getElementById('ladder').dataset.symbol === 'AAPL'")
        page.click('tr[data-symbol="MSFT"]')
        matched = None
        for _ in range(200):  # until the page shows a book seq the library also held
            page.wait_for_function(
                "() => { const el = document.getElementById('ladder');"
                " return el.dataset.symbol === 'MSFT' && +el.dataset.seq > 0; }"
            )
            shown = page.evaluate(LADDER)
            if shown["seq"] in books:
                matched = shown
                break
            page.wait_for_timeout(20)  # a sampling period between looks, not a synchronisation
        conns = trio.from_thread.run_sync(lambda: len(server.connections))
        return {"matched": matched, "errors": errors, "connections": conns}

    with trio.fail_after(90):
        out = await in_browser(script)
    shown = out["matched"]
    assert shown is not None, "the page never showed a book seq the library held"
    assert not shown["hidden"]
    book = books[shown["seq"]]
    assert shown["rows"] == _rows_of(book)
    spread = float(book.asks["price"][0] - book.bids["price"][0])
    assert shown["spread"] == f"{spread:.2f}"
    bid5, ask5 = int(book.bids["size"][:5].sum()), int(book.asks["size"][:5].sum())
    assert shown["imb"] == f"{round(bid5 / (bid5 + ask5) * 100)}% bid"
    assert shown["resyncs"] == 0
    assert out["errors"] == []
    assert out["connections"] == 3  # the library's, the page's ticks, the page's one book


async def test_a_wrong_book_seq_resubscribes_and_the_ladder_goes_on(nursery: trio.Nursery) -> None:
    """Every connection loses 5% of its data messages: a lost `book` message breaks the seq
    order, and the page drops that book and subscribes it again (a fresh snapshot)."""
    server = await start(nursery, book_depth=20, faults=(("/v1", parse_spec("drop:0.05")),))

    def script(ctx: Any) -> list[dict[str, Any]]:
        page = ctx.new_page()
        errors = js_errors(page)
        page.goto(page_url(server.url, symbols="AAPL"))
        page.wait_for_function("() => +document.getElementById('ladder').dataset.resyncs >= 2")
        first = look_when(page, "ladder.seq > 0")
        later = look_when(page, "ladder.seq > arg", first["seq"])
        assert errors == []
        return [first, later]

    with trio.fail_after(90):
        first, later = await in_browser(script)
    for shown in (first, later):
        bid, ask = shown["rows"][0][2], shown["rows"][0][3]
        assert bid and ask and float(bid) < float(ask), shown  # never a crossed book
    assert later["seq"] > first["seq"]


async def test_without_books_the_page_has_no_ladder(nursery: trio.Nursery) -> None:
    server = await start(nursery, book_depth=0)

    def script(ctx: Any) -> tuple[bool, int]:
        page = ctx.new_page()
        page.goto(page_url(server.url, symbols="AAPL"))
        page.wait_for_selector("#status[data-state=live]")
        page.wait_for_function(
            "() => /\\d/.test(document.getElementById('detail-bid').textContent)"
        )
        conns = trio.from_thread.run_sync(lambda: len(server.connections))
        return page.locator("#ladder").is_hidden(), conns

    with trio.fail_after(60):
        hidden, conns = await in_browser(script)
    assert hidden and conns == 1  # no book connection either
