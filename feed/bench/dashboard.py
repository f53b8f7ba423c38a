"""Dashboard rows: frame render time and achieved fps on a scripted 1 kHz feed
(`tickwire.dashboard.bench.measure`), the detail screen's frame beside it (`measure_detail`:
stepped, a new update and book each frame, at 80x24 and 200x50); frame time and data age with
the default watchlist on a real server (`measure_live`), beside the dashboard taking every
update and a plain client.

The dashboard is another package that imports `feed`, so feed never imports it: the measurement
runs in a child process (`python -c`), which also keeps Textual's headless app away from the
progress bar. When the dashboard or its bench is not installed the rows say n/a.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Any

from ._table import Row, row, unavailable

FPS = 30.0
ROWS, SIZE, FEED_HZ = 50, (120, 60), 1000.0
_CODE = (
    "import json, sys\n"
    "from tickwire.dashboard.bench import measure\n"
    "print(json.dumps(measure(rows={rows}, size={size}, seconds={secs}, fps={fps},"
    " feed_hz={hz})))\n"
)
DETAIL_SIZES = ((80, 24), (200, 50))
_DETAIL_CODE = (
    "import json\n"
    "from tickwire.dashboard.bench import measure_detail\n"
    "print(json.dumps([measure_detail(size=s, frames={frames}) for s in {sizes}]))\n"
)
_LIVE_CODE = (
    "import json\n"
    "from tickwire.dashboard.bench import measure_live\n"
    "print(json.dumps(measure_live(seconds={secs})))\n"
)


def _available() -> bool:
    try:
        return importlib.util.find_spec("tickwire.dashboard.bench") is not None
    except ModuleNotFoundError:  # tickwire.dashboard itself is absent
        return False


def dashboard_rows(quick: bool) -> list[Row]:
    label = f"dashboard {ROWS} rows {SIZE[0]}x{SIZE[1]}, all changing, {FEED_HZ:g} Hz feed"
    if not _available():
        return [unavailable(f"{label}: frame", "dashboard not built")]
    secs = 1.0 if quick else 4.0
    m = _child(_CODE.format(rows=ROWS, size=SIZE, secs=secs, fps=FPS, hz=FEED_HZ), secs)
    frames = 60 if quick else 300
    details: list[dict[str, Any]] = _child(
        _DETAIL_CODE.format(frames=frames, sizes=DETAIL_SIZES), frames / 10
    )
    watchlist_ms = m["frame_ms_median"]
    return [
        *(
            row(
                f"dashboard detail screen {d['size']}, new update and book a frame: frame median",
                d["frame_ms_median"],
                "ms",
                "watchlist frame median",
                watchlist_ms,
                higher=False,
                target=f"< {1000 / FPS:.0f} ms",  # a frame within 1/fps
                frame_ms_p99=d["frame_ms_p99"],
            )
            for d in details
        ),
        row(
            f"{label}: frame median",
            m["frame_ms_median"],
            "ms",
            "target",
            8.0,
            higher=False,
            target="< 8 ms",
        ),
        row(
            f"{label}: frame p99",
            m["frame_ms_p99"],
            "ms",
            "budget 1/fps",
            1000 / FPS,
            higher=False,
        ),
        row(
            f"{label}: achieved fps",
            m["achieved_fps"],
            "fps",
            "requested",
            FPS,
            higher=True,
            target=">= 0.95x",
        ),
    ]


def dashboard_live_rows(quick: bool) -> list[Row]:
    """The default watchlist on a real server, as `tickwire demo` runs it (20 fps, 120x36)."""
    label = "dashboard default watchlist, real server"
    if not _available():
        return [unavailable(f"{label}: frame", "dashboard not built")]
    secs = 1.0 if quick else 8.0
    m = _child(_LIVE_CODE.format(secs=secs), 3 * secs)
    latest, every, plain = m["latest"], m["every"], m["plain"]
    return [
        row(
            f"{label}: frame median",
            latest["frame_ms_median"],
            "ms",
            "every update",
            every["frame_ms_median"],
            higher=False,
            target="< 8 ms",
            frame_ms_p99=latest["frame_ms_p99"],
        ),
        row(
            f"{label}: data age p99",
            latest["age_ms_p99"],
            "ms",
            "plain websockets client",
            plain["age_ms_p99"],
            higher=False,
            target="< 100 ms",
            age_ms_median=latest["age_ms_median"],
            every_update_age_ms_p99=every["age_ms_p99"],
        ),
    ]


def _child(code: str, secs: float) -> Any:
    """What the child printed last, as JSON (a dict of figures, or a list of them)."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=secs + 90
    )
    if out.returncode != 0:
        raise RuntimeError(f"dashboard bench failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
