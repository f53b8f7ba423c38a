"""What `tickwire simulate` shows: its progress bar and spinner, and the stylized-facts report.

The report and figure come from `stylized`, imported lazily (and optional); rich too, so that
importing this module costs only numpy. A CLI module: only CLI modules import it.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


def stylized_module() -> Any:
    name = f"{__package__}.stylized"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


def call(fn: Any, start_ns: int, *args: Any) -> Any:
    """Call a stylized function, telling it where the run started when it asks.

    A short run leaves some statistics undefined (NaN, shown as n/a); numpy's warnings about
    them would only bury the table.
    """
    kwargs = {"start_ns": start_ns} if "start_ns" in inspect.signature(fn).parameters else {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def table(rows: list[Any]) -> str:
    head = ("statistic", "value", "target", "result")
    body = [
        (
            str(r.name),
            "n/a" if not math.isfinite(r.value) else f"{r.value:.4g}",
            str(r.target),
            "n/a" if not math.isfinite(r.value) else "pass" if r.passed else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(4)]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(w) if i == 1 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    # A statistic the run cannot measure is neither met nor missed: it is not counted.
    measured = [r for r in rows if math.isfinite(r.value)]
    passed = sum(r.passed for r in measured)
    rule = "  ".join("-" * w for w in widths)
    summary = f"{passed} of {len(measured)} statistics pass"
    if len(measured) < len(rows):
        summary += (
            f"; {len(rows) - len(measured)} n/a: the run is too short for them"
            " (returns need a whole session: try --duration 2d)"
        )
    return "\n".join([line(head), rule, *map(line, body), rule, summary])


def sim_time(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


@contextmanager
def busy(what: str) -> Iterator[None]:
    """A spinner on stderr while a long step without steps of its own runs (TTY only)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(f"{what}…"):
        yield


class Progress:
    """Sim-time done/total and ticks/s on stderr, with rich; silent when stderr is not a TTY."""

    def __init__(self, total_s: int) -> None:
        self._total_s = total_s
        self._bar: Any = None
        self._task: Any = None
        self._last = 0.0

    def __enter__(self) -> Progress:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("simulating"),
                BarColumn(),
                TextColumn("{task.fields[sim]}"),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(
                "simulate", total=self._total_s, sim=self._sim(0), rate=""
            )
        return self

    def _sim(self, done_s: int) -> str:
        return f"{sim_time(done_s)} / {sim_time(self._total_s)}"

    def update(self, done_s: int, ticks: int, wall_s: float) -> None:
        if self._bar is None or (wall_s - self._last < 0.1 and done_s < self._total_s):
            return
        self._last = wall_s
        rate = f"{ticks / max(wall_s, 1e-9):,.0f} ticks/s"
        self._bar.update(self._task, completed=done_s, sim=self._sim(done_s), rate=rate)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
