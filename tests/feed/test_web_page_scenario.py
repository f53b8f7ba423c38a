"""The page during a market scenario, in a real browser (Debian's chromium, Playwright): the
header names the scenario playing, a halted symbol's row says HALTED until it trades again, and
a page opened during the halt shows both at once (the welcome and the `symbols` reply)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from _browser import in_browser, js_errors, page_url

from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators import Universe
from tickwire.simulators.scenario import parse

pytestmark = pytest.mark.usefixtures("chromium")  # _browser.require_chromium

HALT = """
name = "page-halt"
[[event]]
kind = "halt"
at = "0.5s"
duration = "4s"
symbol = "AAPL"
"""
SHOWN = "() => !document.getElementById('scenario').hidden"
HALTED = "s => !document.querySelector(`tr[data-symbol='${s}'] .halt`)?.hidden"


async def test_the_page_shows_the_scenario_and_the_halted_row(nursery: trio.Nursery) -> None:
    server = Server(ServerConfig(port=0, heartbeat_ms=200, admin_token="s3cret"))
    await nursery.start(server.run)
    scenario = parse(HALT, Universe.default())

    def script(ctx: Any) -> dict[str, Any]:
        page = ctx.new_page()
        errors = js_errors(page)
        page.goto(page_url(server.url, symbols="AAPL,MSFT"))
        page.wait_for_selector("#status[data-state=live]")
        page.wait_for_selector('tr[data-symbol="AAPL"]')
        assert page.locator("#scenario").is_hidden()
        trio.from_thread.run_sync(server.source.start_scenario, scenario)  # as an operator does
        page.wait_for_function(SHOWN)
        label = page.locator("#scenario").inner_text()
        page.wait_for_function(HALTED, arg="AAPL")
        msft_halted = page.evaluate(HALTED.replace("s =>", "(s) =>").join(["(", ")('MSFT')"]))
        late = ctx.new_page()  # opened during the halt: knows it from the start
        late_errors = js_errors(late)
        late.goto(page_url(server.url, symbols="AAPL,MSFT"))
        late.wait_for_selector("#status[data-state=live]")
        late.wait_for_function(HALTED, arg="AAPL")
        late_label = late.locator("#scenario").inner_text()
        aapl = page.locator('tr[data-symbol="AAPL"] td.sym').inner_text()
        page.wait_for_function(f"s => !({HALTED.split('=> ', 1)[1]})", arg="AAPL")
        page.wait_for_function(f"() => !({SHOWN.split('=> ', 1)[1]})")
        return {
            "label": label,
            "late_label": late_label,
            "msft_halted": msft_halted,
            "aapl": aapl,
            "errors": errors + late_errors,
        }

    with trio.fail_after(90):
        out = await in_browser(script)
    assert out["label"] == "scenario: page-halt" == out["late_label"]
    assert out["msft_halted"] is False
    assert out["aapl"].split() == ["AAPL", "HALTED"]
    assert out["errors"] == []
