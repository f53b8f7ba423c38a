"""The live page in a real browser: Debian's chromium driven by Playwright.

The page is loaded from the feed's own port (an in-process `Server`, and the real `tickwire serve`
command) and connects to its default feed, the same host and port at /v1.
Playwright's sync API blocks, so a test runs its browser script in a worker thread
(`trio.to_thread.run_sync`) and reaches the trio side (the server) with `trio.from_thread`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import trio
from _browser import base_of, in_browser, js_errors, page_url
from _support import serve_process

from tickwire.feed.server.server import Server, ServerConfig

pytestmark = pytest.mark.usefixtures("chromium")  # _browser.require_chromium


def cell_text(page: Any, symbol: str, cls: str) -> str:
    return str(page.locator(f'tr[data-symbol="{symbol}"] td.{cls}').inner_text())


def wait_for_price_change(page: Any, symbol: str) -> tuple[str, str]:
    """Wait until `symbol`'s row shows a price, then until that price changes."""
    page.wait_for_function(
        "s => /\\d/.test(document.querySelector(`tr[data-symbol='${s}'] td.bid`)?.textContent)",
        arg=symbol,
    )
    first = cell_text(page, symbol, "bid") + "/" + cell_text(page, symbol, "ask")
    # The predicate returns the new quote itself: read afterwards, it may have bounced back.
    changed = page.wait_for_function(
        """([s, first]) => {
            const q = (c) => document.querySelector(`tr[data-symbol='${s}'] td.${c}`).textContent;
            const now = q('bid') + '/' + q('ask');
            return now !== first && now;
        }""",
        arg=[symbol, first],
    )
    return first, str(changed.json_value())


# --------------------------------------------------------------------------- tests


def subscriptions(server: Server) -> list[object]:
    """The watchlists' subscriptions (binary; a page's ladder keeps its book on JSON)."""
    now = trio.current_time()
    return [
        c.core.statistics(now)["subscriptions"]
        for c in server.connections
        if c.encoding == "tickwire.v1.binary"
    ]


def save_screenshot(page: Any, path: Path) -> None:
    page.screenshot(path=str(path))
    readme = os.environ.get("TICKWIRE_PAGE_SCREENSHOT")  # regenerate the README's picture
    if readme:
        page.set_viewport_size({"width": 1200, "height": 560})
        page.screenshot(path=readme)


async def test_page_streams_and_edits_its_watchlist(server: Server, tmp_path: Path) -> None:
    def script(ctx: Any) -> dict[str, Any]:
        page = ctx.new_page()
        errors = js_errors(page)
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_url(server.url))
        page.wait_for_selector("#status[data-state=live]")
        before, after = wait_for_price_change(page, "AAPL")
        page.wait_for_function("() => parseInt(document.getElementById('rate').textContent) > 0")
        page.wait_for_function("() => /ms$/.test(document.getElementById('latency').textContent)")
        subs_before = trio.from_thread.run_sync(subscriptions, server)
        encodings = trio.from_thread.run_sync(lambda: [c.encoding for c in server.connections])
        # Remove MSFT, then add TSLA: requests are handled in order, so once TSLA's prices
        # show, the server has handled the unsubscribe as well.
        page.click('tr[data-symbol="MSFT"] td.rm button')
        assert page.locator('tr[data-symbol="MSFT"]').count() == 0
        page.fill("#add-input", "tsla")
        page.press("#add-input", "Enter")
        wait_for_price_change(page, "TSLA")
        subs_after = trio.from_thread.run_sync(subscriptions, server)
        page.fill("#add-input", "NOPE")
        page.press("#add-input", "Enter")
        page.wait_for_function(
            "() => document.getElementById('form-msg').textContent.includes('not in this market')"
        )
        page.click('tr[data-symbol="TSLA"]')
        page.wait_for_function("() => document.getElementById('detail-sym').textContent === 'TSLA'")
        save_screenshot(page, tmp_path / "page.png")
        return {
            "changed": (before, after),
            "subs": (subs_before, subs_after),
            "encodings": encodings,
            "errors": errors,
            "requests": requests,
        }

    with trio.fail_after(90):
        out = await in_browser(script)
    assert out["changed"][0] != out["changed"][1]
    [before], [after] = out["subs"]
    assert "MSFT" in before and "TSLA" not in before
    assert "MSFT" not in after and "TSLA" in after and "AAPL" in after
    # The watchlist's binary connection, and the ladder's JSON one (the server keeps books).
    assert len(out["encodings"]) == 2 and out["encodings"].count("tickwire.v1.binary") == 1
    assert out["errors"] == []
    assert all(u.startswith(base_of(server.url)) or u.startswith("data:") for u in out["requests"])
    assert (tmp_path / "page.png").stat().st_size > 10_000


async def test_two_tabs_both_stream_in_dark_mode(server: Server, tmp_path: Path) -> None:
    def script(ctx: Any) -> tuple[list[str], int, str]:
        tabs = [ctx.new_page() for _ in range(2)]
        errors = [e for tab in tabs for e in js_errors(tab)]
        for tab in tabs:
            tab.goto(page_url(server.url, symbols="SPY,QQQ"))
        for tab in tabs:
            wait_for_price_change(tab, "SPY")
            wait_for_price_change(tab, "QQQ")
        clients = trio.from_thread.run_sync(lambda: len(server.connections))
        background = tabs[1].evaluate("getComputedStyle(document.body).backgroundColor")
        tabs[1].screenshot(path=str(tmp_path / "page-dark.png"))
        return errors, clients, background

    with trio.fail_after(90):
        errors, clients, background = await in_browser(script, color_scheme="dark")
    assert errors == []
    assert clients == 4  # per tab: the watchlist's connection and the ladder's book one
    assert background == "rgb(15, 18, 23)"  # the dark theme's --bg


async def test_server_restart_shows_a_banner_and_the_page_recovers(nursery: trio.Nursery) -> None:
    first = Server(ServerConfig(port=0, activity=5.0))
    first_done = trio.Event()

    async def run_first(*, task_status: Any) -> None:
        await first.run(task_status=task_status)
        first_done.set()  # its listening socket is closed

    await nursery.start(run_first)
    port = int(first.url.rsplit(":", 1)[1].split("/")[0])

    async def restart() -> None:
        await first.shutdown()
        await first_done.wait()
        await nursery.start(Server(ServerConfig(port=port, activity=5.0)).run)

    def script(ctx: Any) -> tuple[str, list[str]]:
        page = ctx.new_page()
        errors = js_errors(page)
        page.goto(page_url(first.url, symbols="SPY,AAPL"))
        page.wait_for_selector("#status[data-state=live]")
        # Let the first run's per-symbol seq grow past where a fresh run starts.
        page.wait_for_function(
            "() => +document.getElementById('detail-seq').textContent.replace(/,/g, '') > 200"
        )
        assert page.locator("#banner").is_hidden()
        trio.from_thread.run(restart)
        page.wait_for_selector("#banner[data-kind=restart]", state="visible")
        page.wait_for_selector("#status[data-state=live]")
        wait_for_price_change(page, "SPY")
        return page.inner_text("#banner-text"), errors

    with trio.fail_after(90):
        text, errors = await in_browser(script)
    assert "server restarted" in text.lower()
    assert errors == []


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 in front of a server: `drop()` cuts every connection through it
    (no WebSocket close, a plain TCP close: what a network failure looks like to a browser),
    while the server and the proxy's listener stay up."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.scopes: list[trio.CancelScope] = []
        self.dropped = 0

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client, await trio.open_tcp_stream("127.0.0.1", self.target_port) as upstream:
            with trio.CancelScope() as scope:
                self.scopes.append(scope)
                async with trio.open_nursery() as nursery:

                    async def pipe(src: trio.SocketStream, dst: trio.SocketStream) -> None:
                        try:
                            async for chunk in src:
                                await dst.send_all(chunk)
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            pass  # one side went away: so does the other
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(pipe, client, upstream)
                    nursery.start_soon(pipe, upstream, client)
            self.scopes.remove(scope)

    def drop(self) -> None:
        for scope in self.scopes:
            scope.cancel()
            self.dropped += 1


async def test_a_dropped_connection_resumes_with_the_missed_updates(
    server: Server, nursery: trio.Nursery
) -> None:
    """The page's connection is cut (not the server): the page reconnects and sends its resume
    position, the server replays what it missed, and no restart banner shows."""
    proxy = DroppingProxy(int(server.url.rsplit(":", 1)[1].split("/")[0]))
    port = await nursery.start(proxy.run)
    feed_url = f"ws://127.0.0.1:{port}/v1"

    def script(ctx: Any) -> dict[str, Any]:
        page = ctx.new_page()
        errors = js_errors(page)
        page.goto(page_url(feed_url, symbols="SPY,AAPL,MSFT,NVDA,QQQ,TSLA,AMZN,JPM"))
        page.wait_for_selector("#status[data-state=live]")
        wait_for_price_change(page, "SPY")
        assert page.get_attribute("#status", "data-missed") is None  # a first connection
        seq_before = int(page.inner_text("#detail-seq").replace(",", ""))
        trio.from_thread.run_sync(proxy.drop)
        page.wait_for_selector("#status[data-recovered=true]")
        # Every missed update arrives: the page counts what it received of the replay.
        page.wait_for_function(
            "() => { const d = document.getElementById('status').dataset;"
            " return +d.missed > 0 && d.replayed === d.missed; }"
        )
        wait_for_price_change(page, "SPY")
        return {
            "missed": int(page.get_attribute("#status", "data-missed") or -1),
            "title": page.get_attribute("#status", "title"),
            "seq": (seq_before, int(page.inner_text("#detail-seq").replace(",", ""))),
            "banner_hidden": page.locator("#banner").is_hidden(),
            "errors": errors,
        }

    with trio.fail_after(90):
        out = await in_browser(script)
    assert proxy.dropped >= 1
    assert out["missed"] > 0
    assert "resumed" in out["title"] and "recovered" in out["title"]
    assert out["seq"][1] > out["seq"][0]  # the same run's numbering carries on
    assert out["banner_hidden"]  # a dropped connection is not a restart
    assert out["errors"] == []


async def test_token_right_wrong_and_missing(nursery: trio.Nursery) -> None:
    server = Server(ServerConfig(port=0, tokens=("s3cret",)))
    await nursery.start(server.run)

    def script(ctx: Any) -> dict[str, str]:
        out = {}
        for name, params in (("wrong", {"token": "nope"}), ("missing", {})):
            page = ctx.new_page()
            page.goto(page_url(server.url, **params))
            page.wait_for_selector("#banner[data-kind=error]", state="visible")
            page.wait_for_selector("#status[data-state=refused]")
            out[name] = page.inner_text("#banner-text")
            page.close()
        page = ctx.new_page()
        errors = js_errors(page)
        page.goto(page_url(server.url, token="s3cret"))
        page.wait_for_selector("#status[data-state=live]")
        wait_for_price_change(page, "AAPL")
        out["footer"] = page.inner_text("footer")
        out["errors"] = ",".join(errors)
        return out

    with trio.fail_after(90):
        out = await in_browser(script)
    assert "token in ?token= may be wrong" in out["wrong"]
    assert "add ?token=YOUR_TOKEN" in out["missing"]
    assert "s3cret" not in out["footer"]  # the page never displays the token
    assert out["errors"] == ""


async def test_real_command_serves_the_page_and_it_survives_a_restart(tmp_path: Path) -> None:
    """`tickwire serve --token`: the page from its own port, then the process is stopped and a
    new one started on the same port; the page shows the restart banner and streams again."""
    args = ("--token", "s3cret", "--activity", "5", "--drain-s", "0", "--drain-min-s", "0")
    with serve_process(*args) as (proc, url):
        port = url.rsplit(":", 1)[1].split("/")[0]

        def restart() -> None:
            proc.terminate()  # SIGTERM: a drain of 0 s (no balancer to tell), exit 0
            assert proc.wait(timeout=20) == 0
            second = serve_process("--port", port, *args)
            second.__enter__()
            restarted.append(second)

        restarted: list[Any] = []

        def script(ctx: Any) -> tuple[str, str, list[str]]:
            page = ctx.new_page()
            errors = js_errors(page)
            wrong = ctx.new_page()
            wrong.goto(page_url(url, token="nope"))
            wrong.wait_for_selector("#banner[data-kind=error]", state="visible")
            wrong_text = wrong.inner_text("#banner-text")
            wrong.close()
            page.goto(page_url(url, token="s3cret", symbols="SPY,AAPL"))
            page.wait_for_selector("#status[data-state=live]")
            wait_for_price_change(page, "SPY")
            page.wait_for_function(
                "() => +document.getElementById('detail-seq').textContent.replace(/,/g, '') > 50"
            )
            restart()
            page.wait_for_selector("#banner[data-kind=restart]", state="visible")
            page.wait_for_selector("#status[data-state=live]")
            wait_for_price_change(page, "SPY")
            page.screenshot(path=str(tmp_path / "page-real.png"))
            return wrong_text, page.inner_text("#banner-text"), errors

        try:
            with trio.fail_after(120):
                wrong_text, text, errors = await in_browser(script)
        finally:
            for cm in restarted:
                cm.__exit__(None, None, None)
    assert "token in ?token= may be wrong" in wrong_text
    assert "server restarted" in text.lower()
    assert errors == []
    assert (tmp_path / "page-real.png").stat().st_size > 10_000
