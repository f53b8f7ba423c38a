"""The dashboard's rows of `tickwire bench`: frame time and fps on a 1 kHz feed; frame time and
data age with the default watchlist on a real server (`measure_live`, beside a plain client).

`measure()` runs the real app headless (Textual's `run_test`) on a `FakeFeed` that moves every
watched symbol in every batch at `feed_hz`, with the render timer at `fps`. It uses only public
API: our own `flush()`, each widget's `render_lines` (the compositor asks every widget on screen
for its lines through it) and `App.post_display_hook` (called when a screen update is done).
A frame is the sum of:

1. our `flush()`: dirty rows -> `refresh_line`, the status bar;
2. the screen update it causes, from the compositor's first `render_lines` call on any widget to
   `post_display_hook`: our `render_line` for each changed line, Textual's styling, cropping and
   chopping of every line in the update;
3. the escape-sequence encoding a terminal would get for the table lines rendered in (2)
   (`Strip.render`, which the headless driver skips).

Screen bookkeeping before the first `render_lines` (dirty-region union, a layout pass) is not
included. Run it with `python -m tickwire.dashboard.bench` (`live` for `measure_live`, `detail`
for `measure_detail`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from textual.geometry import Region
from textual.strip import Strip

from tickwire.feed.client.book import Book
from tickwire.feed.protocol import SUBPROTOCOL_JSON
from tickwire.simulators import Universe

from .app import DashboardApp
from .config import DEFAULT_FPS, DEFAULT_WATCHLIST
from .detail import DetailScreen
from .fake import FakeFeed, fake_connector
from .local_server import demo_server


def measure(
    rows: int = 50,
    size: tuple[int, int] = (120, 60),
    seconds: float = 5.0,
    fps: float = 30.0,
    feed_hz: float = 1000.0,
) -> dict[str, Any]:
    """Median and p99 frame time (ms) and achieved vs requested fps; see the module docstring."""
    return asyncio.run(_measure(rows, size, seconds, fps, feed_hz))


class _Frames:
    """Accumulates the three parts of a frame and closes it at each display."""

    def __init__(self) -> None:
        self.frames: list[float] = []
        self.flushes = 0
        self.pending = 0.0  # flush time waiting for its screen update
        self.paint_start: float | None = None
        self.strips: list[Strip] = []  # table lines rendered in this update, to encode
        self.ages_ms: list[float] = []  # the app's data age at each frame

    def paint_started(self) -> None:
        if self.paint_start is None:
            self.paint_start = time.perf_counter()

    def displayed(self, encode: Callable[[Strip], object]) -> None:
        if self.paint_start is None:
            return  # nothing was rendered (an empty update)
        t0 = time.perf_counter()
        for strip in self.strips:
            encode(strip)
        end = time.perf_counter()
        self.frames.append((self.pending + (t0 - self.paint_start) + (end - t0)) * 1000)
        self.pending, self.paint_start = 0.0, None
        self.strips.clear()


async def _measure(
    rows: int, size: tuple[int, int], seconds: float, fps: float, feed_hz: float
) -> dict[str, Any]:
    refs = Universe.default().reference()
    while len(refs) < rows:  # more rows than the default universe: synthetic names
        refs = Universe.synthetic(rows).reference()
    symbols = [r["symbol"] for r in refs[:rows]]
    fake = FakeFeed(refs, seed=1, rate_hz=feed_hz, changing=1.0)
    app = DashboardApp(fake_connector(fake), url="fake://bench", watchlist=symbols, fps=fps)
    async with app.run_test(size=size) as pilot:
        deadline = time.perf_counter() + 10
        while len(app.table.rows) < rows or app.state is None or not app.state.have.any():
            if time.perf_counter() > deadline:
                raise RuntimeError("the bench feed did not start")
            await pilot.pause(0.01)
        await pilot.pause(0.5)  # warm up: caches, the first full paint
        acc = _instrument(app)
        ticks0, msgs0 = fake.ticks_received, fake.messages_received
        t0 = time.perf_counter()
        await asyncio.sleep(seconds)  # the measured run itself, not a synchronisation
        elapsed = time.perf_counter() - t0
        ticks, msgs = fake.ticks_received - ticks0, fake.messages_received - msgs0
        paints = len(acc.frames)
        await pilot.press("q")
    frames = sorted(acc.frames[:paints])
    achieved = acc.flushes / elapsed
    return {
        "rows": rows,
        "size": f"{size[0]}x{size[1]}",
        "seconds": round(elapsed, 2),
        "requested_fps": fps,
        "achieved_fps": round(achieved, 1),
        "achieved_ratio": round(achieved / fps, 3),
        "painted_fps": round(paints / elapsed, 1),
        "frame_ms_median": round(statistics.median(frames), 3) if frames else None,
        "frame_ms_p99": round(_p99(frames), 3),
        "frames": len(frames),
        "feed_hz_requested": feed_hz,
        "feed_msgs_per_s": round(msgs / elapsed, 1),
        "feed_ticks_per_s": round(ticks / elapsed, 1),
    }


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else math.nan


def _instrument(app: DashboardApp) -> _Frames:
    """Time every frame of `app` from now on (see the module docstring); data age per frame."""
    acc = _Frames()
    console = app.console
    flush = app.flush
    table = app.table
    render_line = table.render_line

    def encode(strip: Strip) -> str:
        return strip.render(console)  # the escape sequences a terminal would get

    def timed_flush() -> None:
        t0 = time.perf_counter()
        flush()
        acc.pending += time.perf_counter() - t0
        acc.flushes += 1
        if app.data_age_ns is not None:
            acc.ages_ms.append(app.data_age_ns / 1e6)

    def timed_render_line(y: int) -> Strip:
        acc.paint_started()
        strip = render_line(y)
        acc.strips.append(strip)
        return strip

    def wrap(lines: Callable[[Region], list[Strip]]) -> Callable[[Region], list[Strip]]:
        def timed_lines(crop: Region) -> list[Strip]:
            acc.paint_started()
            return lines(crop)

        return timed_lines

    for widget in app.screen.query("*"):
        widget.render_lines = wrap(widget.render_lines)  # type: ignore[method-assign,assignment]
    table.render_line = timed_render_line  # type: ignore[method-assign]
    app.post_display_hook = lambda: acc.displayed(encode)  # type: ignore[method-assign]
    app.flush = timed_flush  # type: ignore[method-assign]
    app.start_render_timer()  # ours: re-arm the render timer with the timed flush
    return acc


def measure_detail(
    size: tuple[int, int] = (120, 60), frames: int = 300, book: bool = True
) -> dict[str, Any]:
    """Frame time (ms) of the detail screen: `frames` frames, each after one new update of its
    symbol (chart full: 512 updates) and, with `book`, a new 20-level book beside it.

    Stepped, not timed: the render timer is off, the fake feed emits one batch a frame and the
    frame is painted before the next, so a frame is measured alone (see the module docstring
    for what it includes), on a machine however loaded, and old and new code compare."""
    return asyncio.run(_measure_detail(size, frames, book))


def _bench_book(symbol: str, step: int) -> Book:
    """A 20-level book whose sizes change at every `step` (as a busy symbol's book does)."""
    k = np.arange(20)
    levels = np.dtype([("price", "f8"), ("size", "u8")])
    bids, asks = np.empty(20, levels), np.empty(20, levels)
    bids["price"], asks["price"] = 189.45 - k * 0.01, 189.47 + k * 0.01
    bids["size"] = 100 + (k * 37 + step * 13) % 900
    asks["size"] = 100 + (k * 41 + step * 17) % 900
    return Book(symbol, bids, asks, seq=step, ts=0, depth=20)


async def _measure_detail(size: tuple[int, int], frames: int, book: bool) -> dict[str, Any]:
    fake = FakeFeed(seed=1, rate_hz=0, changing=1.0, preroll=520)
    symbol = DEFAULT_WATCHLIST[0]
    app = DashboardApp(
        fake_connector(fake), url="fake://bench", watchlist=[symbol], render_timer=False
    )
    step = [0]
    async with app.run_test(size=size) as pilot:
        state = await _until(pilot, lambda: app.state, "the bench feed did not start")
        sid = state.index[symbol]
        await _until(pilot, lambda: state.hist_len[sid] >= 512, "the chart did not fill")
        screen = DetailScreen(
            state, symbol, app.clock, book=(lambda: _bench_book(symbol, step[0])) if book else None
        )
        app.push_screen(screen)
        await _until(pilot, lambda: screen.is_mounted, "the detail screen did not open")
        await pilot.pause()
        acc = _instrument(app)
        painted: list[float] = []  # a frame: its flush and every screen update it caused
        for _ in range(frames):
            sent = fake.ticks_received + 1
            fake.step(1)
            await _until(pilot, lambda n=sent: state.total_updates >= n, "no update")  # type: ignore[misc]
            step[0] += 1
            app.book_dirty = book
            before = len(acc.frames)
            app.flush()
            await pilot.pause()  # the frame is painted before the next
            painted.append(sum(acc.frames[before:]) + acc.pending * 1000)
            acc.pending = 0.0
        await pilot.press("escape", "q")
    painted.sort()
    return {
        "size": f"{size[0]}x{size[1]}",
        "book": book,
        "frames": len(painted),
        "frame_ms_median": round(statistics.median(painted), 3) if painted else None,
        "frame_ms_p99": round(_p99(painted), 3),
    }


async def _until(pilot: Any, value: Callable[[], Any], failure: str) -> Any:
    """`value()` once it is truthy: the app and its feed run meanwhile; fail after 10 s."""
    deadline = time.perf_counter() + 10
    while not (got := value()):
        if time.perf_counter() > deadline:
            raise RuntimeError(failure)
        await pilot.pause(0.005)
    return got


def measure_live(
    seconds: float = 5.0, size: tuple[int, int] = (120, 36), fps: float = DEFAULT_FPS
) -> dict[str, Any]:
    """The default watchlist on a real server (as `tickwire demo` runs it), three ways in turn.

    `plain`: a `websockets` client on the same watchlist, every update, no screen: the data
    age it would show at `fps` (the floor: the server's and the wire's share). `every`: the
    dashboard taking every update (what it did before asking for the latest state). `latest`:
    the dashboard as it is. Data age: at each frame, now minus the newest record's `ts`.
    """
    with demo_server(seed=0, activity=1.0) as url:
        plain = asyncio.run(_plain_ages(url, seconds, fps))
        every = asyncio.run(_measure_app(url, size, seconds, fps, latest=False))
        latest = asyncio.run(_measure_app(url, size, seconds, fps, latest=True))
    return {
        "seconds": seconds,
        "fps": fps,
        "size": f"{size[0]}x{size[1]}",
        "plain": _summary([], plain),
        "every": every,
        "latest": latest,
    }


def _summary(frames: list[float], ages: list[float]) -> dict[str, Any]:
    return {
        "frames": len(frames),
        "frame_ms_median": round(statistics.median(frames), 3) if frames else None,
        "frame_ms_p99": round(_p99(frames), 3) if frames else None,
        "age_ms_median": round(statistics.median(ages), 2) if ages else None,
        "age_ms_p99": round(_p99(ages), 2) if ages else None,
        "age_ms_max": round(max(ages), 2) if ages else None,
    }


async def _measure_app(
    url: str, size: tuple[int, int], seconds: float, fps: float, *, latest: bool
) -> dict[str, Any]:
    from tickwire.feed import connect

    app = DashboardApp(functools.partial(connect, url), url=url, fps=fps, latest=latest)
    async with app.run_test(size=size) as pilot:
        deadline = time.perf_counter() + 15
        while app.data_age_ns is None:
            if time.perf_counter() > deadline:
                raise RuntimeError("the dashboard got no data from the bench server")
            await pilot.pause(0.01)
        await pilot.pause(0.5)  # warm up: caches, the first full paint
        acc = _instrument(app)
        await asyncio.sleep(seconds)  # the measured run itself, not a synchronisation
        frames, ages = list(acc.frames), list(acc.ages_ms)
        await pilot.press("q")
    return _summary(frames, ages)


async def _plain_ages(url: str, seconds: float, fps: float) -> list[float]:
    """What a screenless `websockets` client on the default watchlist sees, sampled at `fps`."""
    import orjson
    import websockets

    newest = [0]

    async def read(ws: Any) -> None:
        async for message in ws:
            msg = orjson.loads(message)
            if msg.get("type") == "ticks" and msg["ticks"]:
                newest[0] = max(newest[0], max(int(t["ts"]) for t in msg["ticks"]))

    ages: list[float] = []
    async with websockets.connect(url, subprotocols=[SUBPROTOCOL_JSON]) as ws:  # type: ignore[list-item]
        request = {"op": "subscribe", "symbols": list(DEFAULT_WATCHLIST)}
        await ws.send(orjson.dumps(request).decode())  # requests are text frames
        reader = asyncio.create_task(read(ws))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while not newest[0]:
            if loop.time() > deadline or reader.done():
                raise RuntimeError("the plain client got no data from the bench server")
            await asyncio.sleep(0.01)
        end = loop.time() + seconds
        while loop.time() < end:
            await asyncio.sleep(1 / fps)  # a frame's pace: the sampling period
            ages.append((time.time_ns() - newest[0]) / 1e6)
        reader.cancel()
    return ages


if __name__ == "__main__":
    runs: dict[str, Callable[[], dict[str, Any]]] = {"live": measure_live, "detail": measure_detail}
    print(json.dumps(runs.get("".join(sys.argv[1:2]), measure)(), indent=2))
