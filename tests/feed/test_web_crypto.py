"""The page in Debian's chromium (Playwright) on a real `tickwire serve --universe crypto`: sizes
and volumes are the asset's exact quantities (0.00210 BTC), prices have their tick's decimals."""

from __future__ import annotations

import os
import re
import shutil
from decimal import Decimal

import pytest
import trio
from _support import serve_process

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


def _require_chromium() -> None:
    """Skip without chromium and playwright locally; under CI=true, fail instead."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        chrome = None
    else:
        chrome = CHROMIUM
    if chrome is None:
        why = "browser tests need chromium and playwright"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


def _read_page(url: str) -> dict[str, str]:
    from playwright.sync_api import sync_playwright

    base = url.replace("ws", "http", 1).removesuffix("/v1")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(30_000)  # a shared 2-core machine is slow
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/?symbols=BTC-USD,XRP-USD")
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
        finally:
            browser.close()


async def test_page_shows_crypto_quantities_exactly() -> None:
    _require_chromium()
    with serve_process("--universe", "crypto", "--drain-min-s", "0") as (_, url):
        with trio.fail_after(90):
            got = await trio.to_thread.run_sync(_read_page, url)
    assert got["errors"] == ""
    # lots of 0.00001 BTC: five decimals, exact (a float product would print 0.0021000000000000003)
    assert re.fullmatch(r"\d+\.\d{5}", got["size"]), got
    assert re.fullmatch(r"\d+\.\d{5}", got["volume"]), got
    assert Decimal(got["size"]) > 0 and Decimal(got["volume"]) >= Decimal(got["size"])
    assert re.fullmatch(r"\d+\.\d{5}|\d+(\.\d+)?[kM]", got["row_vol"]), got
    assert re.fullmatch(r"\d+\.\d{2}", got["bid"]), got  # a 0.01 tick
    assert re.fullmatch(r"\d+\.\d{4}", got["xrp_bid"]), got  # XRP-USD's 0.0001 tick
