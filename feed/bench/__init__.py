"""`tickwire bench`: every figure beside a baseline measured in the same run, and their ratio.

The machine may be shared and noisy, so an absolute number means little: each row's baseline runs
right next to it. Rows: generator, encode/decode, fan-out (tickwire serve vs naive, plain
trio-websocket and websockets.broadcast servers, load clients in other processes), exchange
dialects (N Binance clients vs N `/v1` JSON clients), memory, handshake latency and
idle CPU, a one-shot `tail --count 1` from start to exit, dashboard, web page (headless
chromium), physical limit; every-update delivery, history and replay (in the hub); scale-out
through Redis: the bus's added latency, gateways 2 vs 1, a reconnect storm; the order book's cost
in the market step and its level updates per second (`book.py`); a connection's send path with
an injected-fault layer that fires nothing (`faults.py`). One module per row family;
servers and clients are separate processes (`_baselines`, `_loadclient`). Never imports the
dashboard (see `dashboard.py`) nor trio here. `--only` runs the families a substring names.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from tickwire.simulators.errors import Interrupted, UserError

from . import _markdown
from ._table import Row, print_table, unavailable

log = logging.getLogger("tickwire.bench")

# Each row family, in the order measured: its name, and how its rows' names start. `--only S`
# runs a family when S is in one of these or one of these is in S (so `--only "fan-out N=100"`
# runs the fan-out family alone), then keeps its rows whose name holds S (`Only.rows`).
FAMILIES: dict[str, tuple[str, ...]] = {
    "generator": ("generator",),
    "order book": ("market step with books", "book level updates", "client library: book"),
    "encode/decode": ("encode", "decode"),
    "every update, history, replay": ("every update", "history memory", "resume", "replay"),
    "fault injection": ("fault injection",),
    "fan-out": ("fan-out",),
    "order book fan-out": ("book fan-out",),
    "venues": ("venue",),
    "Binance depth": ("Binance diff depth", "REST depth"),
    "scale-out": ("bus", "idle bus", "gateways", "reconnect storm"),
    "memory": ("RSS",),
    "handshake": ("handshake",),
    "idle CPU": ("idle server CPU",),
    "tail --count 1": ("tail",),
    "dashboard": ("dashboard",),
    "dashboard on a real server": ("dashboard default watchlist",),
    "web page": ("web page",),
    "physical limit": ("raw", "tickwire best"),
}


class Only:
    """What `--only` selects (every family and row without it); matching ignores case."""

    def __init__(self, substrings: list[str] | None) -> None:
        self.words = [w.lower() for w in substrings or []]
        for given, w in zip(substrings or [], self.words, strict=True):
            if not any(self._related(w, f) for f in FAMILIES):
                raise UserError(
                    f"--only {given!r} names no row family nor the start of a row's name; "
                    f"families: {', '.join(FAMILIES)} (rows are named as in the table)"
                )

    @staticmethod
    def _related(word: str, family: str) -> bool:
        keys = [k.lower() for k in (family, *FAMILIES[family])]
        return any(word in k or k in word for k in keys)

    def family(self, family: str) -> bool:
        return not self.words or any(self._related(w, family) for w in self.words)

    def rows(self, family: str, got: list[Row]) -> list[Row]:
        """The rows of `family` to keep: those whose name holds a substring, every error row,
        and all of them for a substring in the family's name that is in none of its rows."""
        names = [r["name"].lower() for r in got]
        if not self.words or any(
            w in family.lower() and not any(w in n for n in names) for w in self.words
        ):
            return got
        return [
            r
            for r, n in zip(got, names, strict=True)
            if r["status"] == "error" or any(w in n for w in self.words)
        ]


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
        "--only",
        action="append",
        metavar="SUBSTRING",
        help="measure only the row families and rows whose name holds SUBSTRING (repeatable; "
        "e.g. --only 'fan-out N=100' --only encode); families: " + ", ".join(FAMILIES),
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

    only = Only(args.only)
    if args.update_readme:
        if args.only:
            raise UserError(
                "--only measures some rows, --update-readme writes the README's whole table: "
                "drop one of them"
            )
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
    with _progress(None if args.only else units) as advance:

        def step(what: str) -> None:
            doing[0] = what
            advance(what)

        before = signal.signal(signal.SIGINT, _first_ctrl_c_only)
        try:
            _measure(quick, full, step, rows, notes, only)
        except KeyboardInterrupt:  # the children stop at once (_procs.stop): report what we have
            cut_short = True
            notes.insert(0, f"cut short by Ctrl+C during {doing[0]}: {len(rows)} rows measured")
        finally:
            if not cut_short:
                signal.signal(signal.SIGINT, before)
    if args.only and not rows and not cut_short:
        notes.insert(0, "no row measured matched --only: its families ran, none of their rows")
    notes.append(
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{'quick' if quick else 'full' if full else 'default'} run in "
        f"{time.perf_counter() - t0:.0f} s"
    )
    kind = " --quick" if quick else " --full" if full else ""
    kind += "".join(f" --only {shlex.quote(w)}" for w in args.only or [])
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
    quick: bool,
    full: bool,
    advance: Callable[[str], None],
    rows: list[Row],
    notes: list[str],
    only: Only,
) -> None:
    """Every row family (`only` selects) in turn, appending to `rows` and `notes`."""
    from . import (
        book,
        bookclient,
        bookfan,
        bus,
        codec,
        dashboard,
        fanout,
        faults,
        generator,
        handshake,
        history,
        idle,
        memory,
        page,
        physical,
        tail,
        venuedepth,
        venues,
    )

    fan: list[Row] = []

    def step(family: str, fn: Callable[[], list[Row]], progress: bool = True) -> list[Row]:
        """Measure one family (`progress`: advance the bar to it; False for those that do it
        themselves). A failing family becomes an error row (traceback logged); the others
        still run."""
        if not only.family(family):
            return []
        if progress:
            advance(family)
        try:
            got = fn()
        except Exception as exc:  # the bench's boundary: report, keep measuring the rest
            log.exception("bench: %s failed", family)
            got = [unavailable(family, f"error: {exc}", status="error")]
        rows.extend(only.rows(family, got))
        return got

    step("generator", lambda: generator.generator_rows(quick))
    step("order book", lambda: book.book_rows(quick) + bookclient.book_client_rows(quick))
    step("encode/decode", lambda: codec.codec_rows(quick))
    step("every update, history, replay", lambda: history.history_rows(quick))
    step("fault injection", lambda: faults.fault_rows(quick))

    def fan_rows() -> list[Row]:
        got, fan_notes = fanout.fanout(quick, full, advance)
        notes.extend(fan_notes)
        fan.extend(got)
        return got

    step("fan-out", fan_rows, progress=False)
    step("order book fan-out", lambda: bookfan.book_fanout_rows(quick))
    step("venues", lambda: venues.venue_rows(quick, full, advance), progress=False)
    step("Binance depth", lambda: venuedepth.depth_rows(quick, advance), progress=False)

    def bus_rows() -> list[Row]:
        got, bus_notes = bus.bus_rows(quick, advance)
        notes.extend(bus_notes)
        return got

    step("scale-out", bus_rows, progress=False)
    step("memory", lambda: memory.memory_rows(quick, full, advance), progress=False)
    step("handshake", lambda: handshake.handshake_rows(quick, advance), progress=False)
    step("idle CPU", lambda: idle.idle_rows(quick, advance), progress=False)
    step("tail --count 1", lambda: tail.tail_rows(quick, advance), progress=False)
    step("dashboard", lambda: dashboard.dashboard_rows(quick))
    step("dashboard on a real server", lambda: dashboard.dashboard_live_rows(quick))
    step("web page", lambda: page.page_rows(quick))
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

    def __init__(self, total: int | None) -> None:
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
