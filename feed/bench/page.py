"""Web page rows: frame rate, dropped frames and main-thread busy time in headless Chromium.

The page, served by the feed's own port, watches 50 symbols of the
default universe from a real `tickwire serve` at its default 1 ms cadence, in Debian's chromium
driven by Playwright. The baseline, measured in the same browser right before, is an empty page
running the same requestAnimationFrame probe: the frame rate this machine's headless chromium
gives at all. Busy time is Chromium's own `TaskDuration` (DevTools `Performance.getMetrics`) of
the page's main thread; the page's Worker (the WebSocket and decoding) runs on its own thread.
Without chromium or playwright the rows say n/a.
"""

from __future__ import annotations

import itertools
import shutil
from typing import Any
from urllib.parse import urlencode

from ._table import Row, row, unavailable

ROWS = 50
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)
# Resolves with every rAF timestamp over `ms` milliseconds.
_PROBE = """ms => new Promise(resolve => {
  const t = [];
  function frame(ts) {
    t.push(ts);
    if (ts - t[0] < ms) requestAnimationFrame(frame); else resolve(t);
  }
  requestAnimationFrame(frame);
})"""
_FEEDING = "() => parseInt(document.getElementById('rate').textContent) > 0"


def page_rows(quick: bool) -> list[Row]:
    label = f"web page {ROWS} rows, default universe, 1 ms cadence"
    if quick:  # a browser and a server to start: ~30 s on a loaded 2-core machine
        return [unavailable(f"{label}: frame rate", "not in --quick (starts a browser)")]
    return measure(seconds=8.0)


def measure(seconds: float) -> list[Row]:
    """The page's rows, each probe `seconds` long."""
    label = f"web page {ROWS} rows, default universe, 1 ms cadence"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return [unavailable(f"{label}: frame rate", "playwright not installed")]
    if chromium is None:
        return [unavailable(f"{label}: frame rate", "chromium not installed")]
    from tickwire.simulators import Universe

    from . import _procs

    symbols = ",".join(Universe.default().symbols[:ROWS])
    with _procs.server("tickwire") as (_, url), sync_playwright() as pw:
        base = url.replace("ws", "http", 1).removesuffix("/v1")
        browser = pw.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1800})
            page.goto("about:blank")
            idle = _frames(page.evaluate(_PROBE, seconds * 1000))
            page.goto(f"{base}/?{urlencode({'symbols': symbols})}")
            page.wait_for_selector("#status[data-state=live]", timeout=20_000)
            page.wait_for_function(_FEEDING)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            before = _metrics(cdp)
            live = _frames(page.evaluate(_PROBE, seconds * 1000))
            after = _metrics(cdp)
        finally:
            browser.close()
    busy = (after["TaskDuration"] - before["TaskDuration"]) / (
        after["Timestamp"] - before["Timestamp"]
    )
    return [
        row(
            f"{label}: frame rate",
            live["fps"],
            "fps",
            "empty page",
            idle["fps"],
            higher=True,
            target=">= 60 fps",
        ),
        row(
            f"{label}: dropped frames",
            live["dropped_pct"],
            "%",
            "empty page",
            idle["dropped_pct"],
            higher=False,
            target="<= 1%",
        ),
        row(f"{label}: main thread busy", busy * 100, "%", higher=False, target="< 30%"),
    ]


def _frames(timestamps: list[float]) -> dict[str, float]:
    """Frame rate, and the share of frames missed (gaps longer than 1.5 median intervals)."""
    gaps = sorted(b - a for a, b in itertools.pairwise(timestamps))
    if not gaps:
        return {"fps": 0.0, "dropped_pct": 100.0}
    median = gaps[len(gaps) // 2]
    span_ms = timestamps[-1] - timestamps[0]
    missed = sum(round(g / median) - 1 for g in gaps if g > 1.5 * median)
    return {"fps": 1000 * len(gaps) / span_ms, "dropped_pct": 100 * missed / (len(gaps) + missed)}


def _metrics(cdp: Any) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(measure(1.0 if "--quick" in sys.argv else 8.0), indent=1))
