"""The dashboard's row of `tickwire bench`: frame render time and achieved fps under a 1 kHz feed.

`measure()` runs the real app headless (Textual's `run_test`) on a `FakeFeed` that moves every
watched symbol in every batch at `feed_hz`, with the render timer at `fps`. A frame is one
`flush()` (dirty rows -> `refresh_line`) plus the screen update it causes: the compositor asking
the table for its changed lines and encoding them to the terminal's escape sequences (which the
headless driver would otherwise skip). Run it with `python -m tickwire.dashboard.bench`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from rich.console import RenderableType
from textual.screen import Screen

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


async def _measure(
    rows: int, size: tuple[int, int], seconds: float, fps: float, feed_hz: float
) -> dict[str, Any]:
    refs = Universe.default().reference()
    while len(refs) < rows:  # more rows than the default universe: synthetic names
        refs = Universe.synthetic(rows).reference()
    symbols = [r["symbol"] for r in refs[:rows]]
    fake = FakeFeed(refs, seed=1, rate_hz=feed_hz, changing=1.0)
    app = DashboardApp(fake_connector(fake), url="fake://bench", watchlist=symbols, fps=fps)
    frames: list[float] = []
    flushes = paints = 0
    pending = 0.0
    async with app.run_test(size=size) as pilot:
        deadline = time.perf_counter() + 10
        while len(app.table.rows) < rows or app.state is None or not app.state.have.any():
            if time.perf_counter() > deadline:
                raise RuntimeError("the bench feed did not start")
            await pilot.pause(0.01)
        await pilot.pause(0.5)  # warm up: caches, the first full paint
        screen = app.screen
        console = app.console
        flush = app.flush
        refresh = screen._compositor_refresh

        def timed_flush() -> None:
            nonlocal pending, flushes
            t0 = time.perf_counter()
            flush()
            pending += time.perf_counter() - t0
            flushes += 1

        def timed_refresh() -> None:
            nonlocal pending, paints
            t0 = time.perf_counter()
            refresh()
            frames.append((pending + time.perf_counter() - t0) * 1000)
            pending = 0.0
            paints += 1

        def encode(_screen: Screen[Any], renderable: RenderableType | None) -> None:
            if renderable is not None and hasattr(renderable, "render_segments"):
                renderable.render_segments(console)  # the escape sequences a terminal would get

        app.flush = timed_flush  # type: ignore[method-assign]
        screen._compositor_refresh = timed_refresh  # type: ignore[method-assign]
        app._display = encode  # type: ignore[method-assign,assignment]
        app._start_render_timer()
        ticks0, msgs0 = fake.ticks_received, fake.messages_received
        t0 = time.perf_counter()
        await asyncio.sleep(seconds)  # the measured run itself, not a synchronisation
        elapsed = time.perf_counter() - t0
        ticks, msgs = fake.ticks_received - ticks0, fake.messages_received - msgs0
        await pilot.press("q")
    frames.sort()
    p99 = frames[min(len(frames) - 1, int(len(frames) * 0.99))] if frames else float("nan")
    achieved = flushes / elapsed
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
