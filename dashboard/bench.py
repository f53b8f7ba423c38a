"""The dashboard's row of `tickwire bench`: frame render time and achieved fps under a 1 kHz feed.

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
included. Run it with `python -m tickwire.dashboard.bench`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from textual.geometry import Region
from textual.strip import Strip

from tickwire.simulators import Universe

from .app import DashboardApp
from .fake import FakeFeed, fake_connector


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
    acc = _Frames()
    async with app.run_test(size=size) as pilot:
        deadline = time.perf_counter() + 10
        while len(app.table.rows) < rows or app.state is None or not app.state.have.any():
            if time.perf_counter() > deadline:
                raise RuntimeError("the bench feed did not start")
            await pilot.pause(0.01)
        await pilot.pause(0.5)  # warm up: caches, the first full paint
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
        app._start_render_timer()  # ours: re-arm the render timer with the timed flush
        ticks0, msgs0 = fake.ticks_received, fake.messages_received
        t0 = time.perf_counter()
        await asyncio.sleep(seconds)  # the measured run itself, not a synchronisation
        elapsed = time.perf_counter() - t0
        ticks, msgs = fake.ticks_received - ticks0, fake.messages_received - msgs0
        paints = len(acc.frames)
        await pilot.press("q")
    frames = sorted(acc.frames[:paints])
    p99 = frames[min(len(frames) - 1, int(len(frames) * 0.99))] if frames else float("nan")
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
        "frame_ms_p99": round(p99, 3),
        "frames": len(frames),
        "feed_hz_requested": feed_hz,
        "feed_msgs_per_s": round(msgs / elapsed, 1),
        "feed_ticks_per_s": round(ticks / elapsed, 1),
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
