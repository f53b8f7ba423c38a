"""Chromium for the page tests: Debian's chromium driven by Playwright's sync API.

Owns finding the browser (skip without chromium or playwright locally, fail under CI=true; the
`chromium` fixture in tests/feed/conftest.py calls it), running a browser script in a worker
thread, the page's address on a feed's own port, and collecting a page's uncaught errors. A
script reaches the trio side (a server) with `trio.from_thread`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
import trio

from tickwire.feed.bench.page import CHROMIUM_ARGS as BENCH_ARGS

T = TypeVar("T")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = list(BENCH_ARGS)  # headless, no sandbox, no GPU, no background traffic


def require_chromium() -> None:
    """Skip without chromium and playwright locally; under CI=true, fail instead."""
    missing = []
    if CHROMIUM is None:
        missing.append("chromium (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    if missing:
        why = f"browser tests need {' and '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


async def in_browser(script: Callable[[Any], T], *, color_scheme: str = "light") -> T:
    """Run `script(context)` in a fresh headless chromium, in a worker thread."""

    def run() -> T:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(
                    viewport={"width": 1280, "height": 800},
                    color_scheme=color_scheme,  # type: ignore[arg-type]
                )
                context.set_default_timeout(30_000)  # a shared 2-core CI machine is slow
                return script(context)
            finally:
                browser.close()

    return await trio.to_thread.run_sync(run)


def js_errors(page: Any) -> list[str]:
    """Collect the page's uncaught errors (checked at the end of each test)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def base_of(feed_url: str) -> str:
    """The page's address on a feed's own port: ws://HOST:PORT/v1 -> http://HOST:PORT."""
    return feed_url.replace("ws", "http", 1).removesuffix("/v1")


def page_url(feed_url: str, **params: str) -> str:
    """The page served by the feed at `feed_url`, using its default feed (no ?url=)."""
    return f"{base_of(feed_url)}/" + (f"?{urlencode(params)}" if params else "")
