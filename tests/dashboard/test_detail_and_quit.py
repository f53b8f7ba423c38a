"""The detail screen under a burst of updates; quitting (q, Ctrl+C) in the app and the CLI."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from dash_helpers import drive, make_app, until
from textual.pilot import Pilot
from textual.widgets import Static

from tickwire.dashboard.detail import DetailScreen
from tickwire.dashboard.fake import FakeFeed


def test_the_detail_screen_is_never_refreshed_before_it_is_mounted() -> None:
    """A frame that comes between pushing the screen and composing it once crashed the demo
    (`NoMatches: No nodes match '#quote'`, 1 Enter in 25); here a frame comes at once, every time,
    with every symbol changing 200 times a second and the render timer at 60 fps besides."""
    fake = FakeFeed(seed=3, rate_hz=200, changing=1.0)
    app, _ = make_app(fake, fps=60)

    async def script(pilot: Pilot[Any]) -> None:
        state = app.state
        assert state is not None
        for i in range(24):
            symbol = app.table.cursor_symbol
            assert symbol is not None
            app.open_detail(symbol)  # what Enter does
            if i % 2 == 0:  # else the render timer's own frames race the mount
                state.dirty[state.index[symbol]] = True
                app.flush()  # a frame before the pushed screen is composed
            screen = app.screen
            assert isinstance(screen, DetailScreen)
            await until(pilot, lambda: screen.is_mounted, "the detail screen mounted")  # noqa: B023
            quote = str(screen.query_one("#quote", Static).content)
            assert quote.startswith("Bid "), quote  # drawn by on_mount, with data
            await app.pop_screen()
            app.table.action_cursor(1)

    drive(app, script)
    assert app.return_code is None or app.return_code == 0


def test_a_frame_while_the_detail_screen_is_dismissed_draws_nothing() -> None:
    """The mirror of the above: leaving the screen removes its widgets while it is still
    mounted, and a frame that came then crashed (`NoMatches: No nodes match '#quote'`, seen
    under load in the ladder test); here the widgets go first, then a frame comes."""
    fake = FakeFeed(seed=3, rate_hz=200, changing=1.0)
    app, _ = make_app(fake, fps=60)

    async def script(pilot: Pilot[Any]) -> None:
        state = app.state
        assert state is not None
        symbol = app.table.cursor_symbol
        assert symbol is not None
        app.open_detail(symbol)
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        await until(pilot, lambda: screen.is_mounted, "the detail screen mounted")
        await screen.query_one("#quote", Static).remove()  # what dismissing does first
        state.dirty[state.index[symbol]] = True
        app.flush()  # must not raise
        screen.refresh_book()
        await app.pop_screen()

    drive(app, script)
    assert app.return_code is None or app.return_code == 0


@pytest.mark.parametrize("where", ["watchlist", "filter box", "detail screen", "add dialog"])
def test_ctrl_c_quits_from_anywhere(where: str) -> None:
    """Textual's default answers Ctrl+C with "press ctrl+q to quit"; users expect it to quit."""
    app, fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        if where == "filter box":
            await pilot.press("slash", "a")
            assert app.filter_box.has_focus
        elif where == "detail screen":
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail screen")
        elif where == "add dialog":
            await pilot.press("a")
            await until(pilot, lambda: len(app.screen_stack) == 2, "the add dialog")
        t0 = time.perf_counter()
        await pilot.press("ctrl+c")
        await until(pilot, lambda: not app.is_running, "the app to quit")
        assert time.perf_counter() - t0 < 1.0

    drive(app, script)
    assert app.return_code == 0
    assert fake.state == "closed"  # the feed was closed normally, not dropped


def _tickwire() -> list[str]:
    script = Path(sys.executable).with_name("tickwire")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tickwire.feed.cli.main"]


_ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|[@-Z\\-_])")


@pytest.mark.parametrize(("key", "name"), [(b"\x03", "ctrl+c"), (b"q", "q")])
def test_tickwire_demo_quits_within_a_second_in_a_terminal(key: bytes, name: str) -> None:
    """The real `tickwire demo` in a pseudo-terminal: the key, then exit 0 within a second with
    the terminal given back (alternate screen left) and nothing else printed: no traceback."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "36"}
    proc = subprocess.Popen(
        [*_tickwire(), "demo", "--no-config"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    out = bytearray()

    def read(timeout_s: float) -> None:
        if select.select([leader], [], [], timeout_s)[0]:
            with contextlib.suppress(OSError):  # EIO: the child closed the terminal
                out.extend(os.read(leader, 1 << 16))

    try:
        deadline = time.monotonic() + 30
        while b"LIVE" not in out:
            assert time.monotonic() < deadline, f"the demo never went live: {bytes(out[-500:])!r}"
            assert proc.poll() is None, f"the demo ended: {bytes(out[-500:])!r}"
            read(0.1)
        mark = len(out)
        t0 = time.monotonic()
        os.write(leader, key)
        while proc.poll() is None and time.monotonic() - t0 < 10:
            read(0.01)
        took_s = time.monotonic() - t0
        for _ in range(20):
            read(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(leader)
    after = bytes(out[mark:])
    assert proc.returncode == 0, after[-800:]
    assert took_s < 1.0, f"{name} took {took_s:.2f} s"
    assert b"\x1b[?1049l" in after  # the alternate screen was left: the terminal is back
    tail = _ANSI.sub(b"", after.split(b"\x1b[?1049l")[-1]).strip()
    assert tail == b"", tail  # no traceback, no message: a clean quit
    assert b"Traceback" not in out
