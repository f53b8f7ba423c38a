"""`tickwire simulate`, and the market flags `tickwire serve` shares with it.

`simulate` steps a seeded `Market` one simulated second at a time as fast as it can, streams the
records to `--out` (.csv, .npy, .parquet) and can print the stylized-facts table of
`stylized.report`. Records are only held in memory when `--report` or `--figure` needs them: a
trading day of 500 symbols is hundreds of millions of ticks. Optional extras (pyarrow, matplotlib,
rich's progress bar) are imported lazily; importing this module costs only argparse and numpy,
because `tickwire serve` imports it to build its parser. Never imports trio or the feed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import signal
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from ._cli_book import BookSink, add_book_arguments
from ._cli_report import Progress, busy, call, sim_time, stylized_module, table
from .durations import DurationError, parse_duration
from .errors import Interrupted, UserError
from .numbers import positive_float
from .ticks import MAX_SYMBOLS, TICK_DTYPE, TickBatch
from .universe import Universe
from .writers import EXTRAS, Writer, check_writable, open_writer

# Simulated time starts at a fixed open so the same flags give the same bytes, timestamps
# included: Monday 2025-01-06 09:30 New York (14:30 UTC). Sessions follow back to back.
START_NS = 1_736_173_800 * 1_000_000_000
SESSION_S = {"6.5h": 23_400, "24h": 86_400}  # what one "d" of --duration means
_FLUSH_RECORDS = 1 << 18  # buffer ~16 MB of records between writes: few, large writes


# --------------------------------------------------------------------------- shared flags


def add_market_arguments(
    parser: argparse.ArgumentParser, *, session_default: str | None = "6.5h"
) -> None:
    """Add --seed, --symbols/--universe, --activity and --session (read by `universe_from_args`).

    `session_default=None` leaves --session unset when not given (`session_of` resolves it)."""
    parser.add_argument(
        "--seed", type=seed_value, default=0, help="market seed (default %(default)s)"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--symbols",
        type=symbol_count,
        metavar="N",
        help=f"a synthetic universe of N symbols (1 to {MAX_SYMBOLS}) instead of the default one",
    )
    which.add_argument(
        "--universe",
        metavar="FILE",
        help="a built-in universe (default, or crypto: BTC-USD, ETH-USD, ...) or one from a .csv "
        "or .toml file (columns/keys: symbol,name,sector,price,tick_size,lot_size,activity"
        "[,kind,base,quote]; symbol and price required; kind stock, etf or crypto)",
    )
    parser.add_argument(
        "--activity",
        type=positive_float,
        default=1.0,
        metavar="X",
        help="scale every trade and quote rate (default %(default)s)",
    )
    parser.add_argument(
        "--session",
        choices=tuple(SESSION_S),
        default=session_default,
        help="6.5h: back-to-back trading sessions with an intraday shape; 24h: around the clock "
        f"(default {session_default or '24h for a crypto universe, else 6.5h'})",
    )


def universe_from_args(args: argparse.Namespace) -> Universe | None:
    """The universe the market flags ask for; None means `Universe.default()`.

    Crypto pairs are served like stocks: sizes stay integer counts of each symbol's `size_unit`
    (its lot), which the `symbols` reply gives, and every consumer shows size x size_unit.
    """
    universe = None
    name = getattr(args, "universe", None)
    if name in ("default", "crypto"):
        universe = Universe.builtin(name)
    elif name:
        if not Path(name).suffix and not Path(name).exists():  # a name, not a file
            raise UserError(
                f"--universe {name}: no such built-in universe (default, crypto); "
                "or give a .csv or .toml file"
            )
        universe = Universe.load(name)
    elif getattr(args, "symbols", None):
        universe = Universe.synthetic(args.symbols, args.seed)
    return universe


def session_of(args: argparse.Namespace, universe: Universe) -> str:
    """--session as given, else 24h for an all-crypto universe and 6.5h otherwise."""
    given: str | None = getattr(args, "session", None)
    if given:
        return given
    return "24h" if universe.crypto.all() else "6.5h"


def seed_value(text: str) -> int:
    """What numpy's SeedSequence takes: a whole number from 0 to 2**64 - 1."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n < 2**64:
        raise argparse.ArgumentTypeError(
            f"seed must be a whole number from 0 to {2**64 - 1}, got {text!r}"
        )
    return n


def symbol_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_SYMBOLS:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 1 to {MAX_SYMBOLS}, got {text!r}"
        )
    return n


# --------------------------------------------------------------------------- simulate


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ap = sub.add_parser(
        "simulate",
        help="generate simulated ticks offline, to a file or a stylized-facts report",
        description="Run the simulated market as fast as it can for --duration of market time, "
        "starting at a fixed open (2025-01-06 09:30 New York), and write the ticks to --out "
        "and/or print how well they match the stylized facts of real markets (--report). "
        "Same flags, same bytes.",
        epilog="examples:\n"
        "  tickwire simulate --symbols 30 --duration 2d --activity 0.05 --report\n"
        "  tickwire simulate --symbols 500 --duration 5d --seed 7 --out ticks.parquet\n"
        "  tickwire simulate --universe mine.csv --duration 2h --out ticks.npy\n"
        "  tickwire simulate --universe crypto --books --duration 10m --report\n"
        "  tickwire simulate --symbols 20 --duration 2h --scenario flash-crash --report\n\n"
        "outputs:\n"
        "  .csv      one line per tick: symbol, then the tick record fields\n"
        "  .npy      the tick records as they are (numpy.load), with the universe beside it\n"
        "            as NAME.universe.csv (symbol id = line order)\n"
        f"  .parquet  needs pyarrow: {EXTRAS['parquet']}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--duration",
        type=_duration,
        default=_duration("1d"),
        metavar="TIME",
        help="market time to simulate, e.g. 90s, 30m, 6h, 5d; a day is one 6.5 h session "
        "(24 h with --session 24h) (default 1d)",
    )
    add_market_arguments(ap, session_default=None)
    ap.add_argument("--out", metavar="FILE", help="write the ticks to FILE (.csv, .npy, .parquet)")
    add_book_arguments(ap)
    ap.add_argument(
        "--scenario",
        metavar="FILE|NAME",
        help="play a market scenario: a .toml file of timed events (halts, flash crash, gap, ...) "
        "or a shipped one by name (flash-crash, halt, opening-gap, drought)",
    )
    ap.add_argument(
        "--report", action="store_true", help="print the stylized-facts table: value, target, pass"
    )
    ap.add_argument(
        "--figure",
        metavar="PATH",
        help=f"save a figure of the stylized facts (e.g. facts.png; {EXTRAS['plot']})",
    )
    ap.set_defaults(func=_simulate)


class _Duration:
    """A --duration as typed; days depend on --session, so seconds are resolved later."""

    def __init__(self, text: str) -> None:
        self.text = text

    def seconds(self, session: str) -> int:
        return round(parse_duration(self.text, day_s=SESSION_S[session], bare=False))


def _duration(text: str) -> _Duration:
    try:
        parse_duration(text, day_s=1.0, bare=False)
    except DurationError:
        raise argparse.ArgumentTypeError(
            f"expected a number followed by s, m, h or d, e.g. 5d, got {text!r}"
        ) from None
    d = _Duration(text.strip())
    if d.seconds("6.5h") < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1s, got {text!r}")
    return d


def _simulate(args: argparse.Namespace) -> int:
    universe = universe_from_args(args) or Universe.default()
    args.session = session_of(args, universe)
    total_s = args.duration.seconds(args.session)
    if not (args.out or args.report or args.figure or args.book_out):  # work, then nothing kept
        raise UserError(
            "nothing to keep: pass --out FILE (.csv, .npy or .parquet) for the ticks, "
            "--report for the stylized facts, --figure FILE or --book-out FILE"
        )
    stylized = stylized_module() if args.report or args.figure else None
    if args.figure:
        if importlib.util.find_spec("matplotlib") is None:
            raise UserError(f"--figure needs matplotlib: {EXTRAS['plot']}")
        check_writable(Path(args.figure))
    scenario = None
    if args.scenario:
        from .scenario import load

        scenario = load(args.scenario, universe)
    writer = open_writer(Path(args.out), universe) if args.out else None
    books = BookSink.from_args(args, universe)
    keep = stylized is not None  # the report and the figure need every record at once
    from .market import Market

    # Batch generation computes 10 s ahead (fewer, larger numpy passes); the live server uses
    # 1 s. Same flags, same bytes either way: the chunk length is fixed per command.
    market = Market(
        universe,
        args.seed,
        START_NS,
        activity=args.activity,
        session=args.session,
        chunk_s=10.0,
        book_depth=books.depth if books else None,
        scenario=scenario,
    )

    wall0 = time.perf_counter()
    try:
        count, kept = _generate(market, total_s, writer, keep, books)
    except OSError as exc:  # disk full, file system gone: the user's to fix, not a bug
        raise UserError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        raise _interrupted(writer, books, complete=False) from None
    wall_s = time.perf_counter() - wall0
    try:
        note = _scenario_note(market)
        return _conclude(
            args, universe, total_s, count, kept, stylized, writer, books, wall_s, note
        )
    except KeyboardInterrupt:
        raise _interrupted(writer, books, complete=True) from None


def _interrupted(writer: Writer | None, books: BookSink | None, *, complete: bool) -> Interrupted:
    """Ctrl+C: complete files stay; partial ones are removed, so none is ever mistaken for
    the whole run (a seed reproduces it exactly)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl+C must not stop the cleanup
    book_paths = [books.path] if books and books.path else []
    paths = [*(writer.paths if writer else []), *book_paths]
    if not paths:
        return Interrupted("interrupted; no file was to be written")
    if complete:
        return Interrupted(f"interrupted after the ticks were written: {', '.join(paths)}")
    for path in paths:
        with suppress(FileNotFoundError):
            os.unlink(path)
    named = [*(writer.paths[:1] if writer else []), *book_paths]  # not the .npy's sidecar
    return Interrupted(f"interrupted; no file written (removed the partial {', '.join(named)})")


def _conclude(
    args: argparse.Namespace,
    universe: Universe,
    total_s: int,
    count: int,
    kept: list[TickBatch],
    stylized: Any,
    writer: Writer | None,
    books: BookSink | None,
    wall_s: float,
    scenario_note: str = "",
) -> int:
    """The summary line, and the report and figure from the records kept."""
    summary = (
        f"{count:,} ticks, {len(universe):,} symbols, {sim_time(total_s)} of market time "
        f"({args.duration.text}, seed {args.seed}), {wall_s:.1f} s wall, "
        f"{count / max(wall_s, 1e-9):,.0f} ticks/s"
    )
    if books is not None:
        summary += f"; {books.count:,} book level updates"
    if scenario_note:
        summary += f"; {scenario_note}"
    if writer is not None:
        summary += f"; wrote {', '.join(writer.paths)}"
    if books is not None and books.path:
        summary += f"; book updates in {books.path}"
    records = np.concatenate(kept) if kept else np.zeros(0, TICK_DTYPE)
    if args.report:
        if stylized is None or not hasattr(stylized, "report"):
            print("the stylized-facts report is not available in this version of tickwire")
        else:
            with busy("measuring the stylized facts"):
                rows = call(stylized.report, START_NS, records, universe)
                if books is not None and books.keep:
                    rows += call(stylized.book_report, START_NS, records, *books.facts(), universe)
            print(table(rows))
    if args.figure:
        if stylized is None or not hasattr(stylized, "figure"):
            print("the stylized-facts figure is not available in this version of tickwire")
        else:
            with busy(f"drawing {args.figure}"):
                call(stylized.figure, START_NS, records, universe, args.figure)
            summary += f"; figure {args.figure}"
    print(summary)
    return 0


def _scenario_note(market: Any) -> str:
    """What the scenario did, for the summary: its halts and resumptions."""
    if market.play is None:
        return ""
    status = market.statuses()["status"]
    halts, resumes = int((status == 1).sum()), int((status == 0).sum())
    return f"scenario {market.play.name}: {halts:,} symbol halts, {resumes:,} resumptions"


def _generate(
    market: Any, total_s: int, writer: Writer | None, keep: bool, books: BookSink | None = None
) -> tuple[int, list[TickBatch]]:
    """Step `market` second by second; stream to `writer`. Returns (ticks, records if `keep`)."""
    kept: list[TickBatch] = []
    pending: list[TickBatch] = []
    pending_n = count = 0
    wall0 = time.perf_counter()
    try:
        with Progress(total_s) as progress:
            for k in range(1, total_s + 1):
                if books is None:
                    batch = market.step(START_NS + k * 1_000_000_000)
                else:
                    batch, levels = market.step_book(START_NS + k * 1_000_000_000)
                    books.add(levels, market)
                count += len(batch)
                if keep:
                    kept.append(batch)
                if writer is not None:
                    pending.append(batch)
                    pending_n += len(batch)
                    if pending_n >= _FLUSH_RECORDS:
                        writer.write(np.concatenate(pending))
                        pending, pending_n = [], 0
                progress.update(k, count, time.perf_counter() - wall0)
            if writer is not None and pending:
                writer.write(np.concatenate(pending))
    finally:
        if writer is not None:
            writer.close()  # complete, or (Ctrl+C) closed before the caller removes it
        if books is not None:
            books.close()
    return count, kept
