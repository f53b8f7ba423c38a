"""The page in Debian's chromium (Playwright) on a real `tickwire serve --universe crypto`: sizes
and volumes are the asset's exact quantities (0.00210 BTC), prices have their tick's decimals."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import trio
from _browser import in_browser, js_errors, page_url, require_chromium
from _support import serve_process


def _read_page(context: Any, url: str) -> dict[str, str]:
    page = context.new_page()
    errors = js_errors(page)
    page.goto(page_url(url, symbols="BTC-USD,XRP-USD"))
    page.wait_for_selector("#status[data-state=live]")
    page.click('tr[data-symbol="BTC-USD"]')
    # until BTC-USD has traded: its last size and volume show
    page.wait_for_function(
        "() => /[1-9]/.test(document.getElementById('detail-size').textContent)"
        " && document.getElementById('detail-sym').textContent === 'BTC-USD'"
    )
    cell = 'tr[data-symbol="{}"] td.{} .v'
    # the table paints its rows a slice per frame: until both rows show what is read
    for shown in (cell.format("BTC-USD", "vol"), cell.format("XRP-USD", "bid")):
        page.wait_for_function(
            f"() => /[1-9]/.test(document.querySelector({shown!r})?.textContent ?? '')"
        )
    return {
        "size": page.inner_text("#detail-size"),
        "volume": page.inner_text("#detail-volume"),
        "bid": page.inner_text("#detail-bid"),
        "row_vol": page.inner_text(cell.format("BTC-USD", "vol")),
        "xrp_bid": page.inner_text(cell.format("XRP-USD", "bid")),
        "errors": "\n".join(errors),
    }


async def test_page_shows_crypto_quantities_exactly() -> None:
    require_chromium()
    with serve_process("--universe", "crypto", "--drain-min-s", "0") as (_, url):
        with trio.fail_after(90):
            got = await in_browser(lambda context: _read_page(context, url))
    assert got["errors"] == ""
    # lots of 0.00001 BTC: five decimals, exact (a float product would print 0.0021000000000000003)
    assert re.fullmatch(r"\d+\.\d{5}", got["size"]), got
    assert re.fullmatch(r"\d+\.\d{5}", got["volume"]), got
    assert Decimal(got["size"]) > 0 and Decimal(got["volume"]) >= Decimal(got["size"])
    assert re.fullmatch(r"\d+\.\d{5}|\d+(\.\d+)?[kM]", got["row_vol"]), got
    assert re.fullmatch(r"\d+\.\d{2}", got["bid"]), got  # a 0.01 tick
    assert re.fullmatch(r"\d+\.\d{4}", got["xrp_bid"]), got  # XRP-USD's 0.0001 tick
