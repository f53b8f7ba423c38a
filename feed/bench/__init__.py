"""`tickwire bench`: every figure beside a baseline measured in the same run, and their ratio.

The machine may be shared and noisy, so an absolute number means little: each row's baseline runs
right next to it. Rows: generator, encode/decode, fan-out (tickwire serve vs naive, plain
trio-websocket and websockets.broadcast servers, load clients in other processes), exchange
dialects (N Binance clients vs N `/v1` JSON clients), memory, handshake latency and
idle CPU, a one-shot `tail --count 1` from start to exit, dashboard, web page (headless
chromium), physical limit; every-update delivery, history and replay (in the hub); scale-out
through Redis: the bus's added latency, gateways 2 vs 1, a reconnect storm; the order book's cost
in the market step and its level updates per second (`book.py`). One module per row family;
servers and clients are separate processes (`_baselines`, `_loadclient`). Never imports the
dashboard (see `dashboard.py`) nor trio here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from tickwire.simulators.errors import Interrupted

from . import _markdown
from ._table import Row, print_table, unavailable

log = logging.getLogger("tickwire.bench")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ap = sub.add_parser(
        "bench",
        help="speed figures, each beside a baseline measured in the same run",
        description="Measure tickwire against baselines in the same run and print ratios: "
        "generator, encode/decode, fan-out of `tickwire serve` to N clients (delivered ticks/s, "
        "server CPU per message, latency) vs naive/plain/peer servers, memory per connection "
        "and behind a stalled reader, handshake latency idle and under load, idle server CPU, "
        "the dashboard's frame time, scale-out through Redis (producer and gateways; needs "
        "redis-server), and the machine's raw send() rate. About eight minutes on 2 cores; "
        "--quick about two. Needs the bench extra for the load clients and baseline servers: "
        "pip install 'tickwire[bench]'.",
    )
    size = ap.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", action="store_true", help="tiny sizes, a minute or two: every row, rough numbers"
    )
    size.add_argument("--full", action="store_true", help="add N=500 clients (a few minutes more)")
    form = ap.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="print rows and notes as JSON on stdout")
    form.add_argument(
        "--markdown", action="store_true", help="print rows and notes as a markdown table"
    )
    ap.add_argument(
        "--update-readme",
        metavar="FILE",
        help="also write the markdown table into FILE, replacing what sits between its "
        f"{_markdown.BEGIN} and {_markdown.END} lines (checked before measuring)",
    )
    ap.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from . import _procs, fanout

    if args.update_readme:
        _markdown.check_markers(args.update_readme)
    _procs.require_extras()
    quick, full = bool(args.quick), bool(args.full)
    when, where = _markdown.today(), _markdown.machine()
    t0 = time.perf_counter()
    units = len(fanout.runs(fanout.scenarios(quick, full), quick)) + (21 if quick else 29)
    rows: list[Row] = []
    notes: list[str] = []
    doing = ["starting"]
    cut_short = False
    with _progress(units) as advance:

        def step(what: str) -> None:
            doing[0] = what
            advance(what)

        before = signal.signal(signal.SIGINT, _first_ctrl_c_only)
        try:
            _measure(quick, full, step, rows, notes)
        except KeyboardInterrupt:  # the children stop at once (_procs.stop): report what we have
            cut_short = True
            notes.insert(0, f"cut short by Ctrl+C during {doing[0]}: {len(rows)} rows measured")
        finally:
            if not cut_short:
                signal.signal(signal.SIGINT, before)
    notes.append(
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{'quick' if quick else 'full' if full else 'default'} run in "
        f"{time.perf_counter() - t0:.0f} s"
    )
    kind = " --quick" if quick else " --full" if full else ""
    table = _markdown.render(rows, notes, command=f"tickwire bench{kind}", when=when, where=where)
    if args.json:
        report: dict[str, Any] = {"rows": rows, "notes": notes}
        if cut_short:
            report["cut_short"] = True
        json.dump(report, sys.stdout, indent=1, allow_nan=True)
        print()
    elif args.markdown:
        sys.stdout.write(table)
    else:
        print_table(rows, notes, sys.stdout)
    sys.stdout.flush()
    if cut_short:
        raise Interrupted(
            f"interrupted during {doing[0]}: printed the {len(rows)} rows measured so far, "
            "marked cut short (the README's table was left as it was)"
        )
    if args.update_readme:
        _markdown.update(args.update_readme, table)
        print(f"bench: wrote the table into {args.update_readme}", file=sys.stderr)
    return 1 if any(r["status"] == "error" for r in rows) else 0


def _first_ctrl_c_only(signum: int, frame: object) -> None:
    """SIGINT: stop measuring (KeyboardInterrupt), and ignore any further Ctrl+C from now on,
    so that a second one cannot cut the report of what was measured."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _measure(
    quick: bool, full: bool, advance: Callable[[str], None], rows: list[Row], notes: list[str]
) -> None:
    """Every row family in turn, appending to `rows` and `notes` as each is measured."""
    from . import (
        book,
        bookfan,
        bus,
        codec,
        dashboard,
        fanout,
        generator,
        handshake,
        history,
        idle,
        memory,
        page,
        physical,
        tail,
        venues,
    )

    fan: list[Row] = []

    def step(family: str, fn: Callable[[], list[Row]]) -> list[Row]:
        """A failing family becomes an error row (traceback logged); the others still run."""
        try:
            got = fn()
        except Exception as exc:  # the bench's boundary: report, keep measuring the rest
            log.exception("bench: %s failed", family)
            got = [unavailable(family, f"error: {exc}", status="error")]
        rows.extend(got)
        return got

    advance("generator")
    step("generator", lambda: generator.generator_rows(quick))
    advance("order book")
    step("order book", lambda: book.book_rows(quick))
    advance("encode/decode")
    step("encode/decode", lambda: codec.codec_rows(quick))
    advance("every update, history, replay")
    step("every update, history, replay", lambda: history.history_rows(quick))

    def fan_rows() -> list[Row]:
        got, fan_notes = fanout.fanout(quick, full, advance)
        notes.extend(fan_notes)
        fan.extend(got)
        return got

    step("fan-out", fan_rows)
    advance("order book fan-out")
    step("order book fan-out", lambda: bookfan.book_fanout_rows(quick))
    step("venues", lambda: venues.venue_rows(quick, full, advance))

    def bus_rows() -> list[Row]:
        got, bus_notes = bus.bus_rows(quick, advance)
        notes.extend(bus_notes)
        return got

    step("scale-out", bus_rows)
    step("memory", lambda: memory.memory_rows(quick, full, advance))
    step("handshake", lambda: handshake.handshake_rows(quick, advance))
    step("idle CPU", lambda: idle.idle_rows(quick, advance))
    step("tail --count 1", lambda: tail.tail_rows(quick, advance))
    advance("dashboard")
    step("dashboard", lambda: dashboard.dashboard_rows(quick))
    advance("dashboard on a real server")
    step("dashboard on a real server", lambda: dashboard.dashboard_live_rows(quick))
    advance("web page")
    step("web page", lambda: page.page_rows(quick))
    advance("physical limit")
    step("physical limit", lambda: physical.physical_rows(_probe(quick), fan))
    advance("done")


def _probe(quick: bool) -> dict[str, float]:
    """The raw socket probe, in a fresh process (it forks)."""
    from . import _procs

    args = ["tickwire.feed.bench.physical", *(["--quick"] if quick else [])]
    proc = _procs.spawn(*args)
    try:
        res: dict[str, float] = json.loads(_procs.readline(proc, 60))
    finally:
        _procs.stop(proc)
    return res


class _progress:
    """A rich progress bar on stderr when it is a terminal; `advance(what)` moves it one unit."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None

    def __enter__(self) -> Callable[[str], None]:
        if not sys.stderr.isatty():
            return lambda what: None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("bench"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.start()
        task = self.bar.add_task("starting", total=self.total)
        first = [True]

        def advance(what: str) -> None:
            self.bar.update(task, description=what, advance=0 if first[0] else 1)
            first[0] = False

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
