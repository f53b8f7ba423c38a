"""`tickwire record URL --out FILE`: subscribe and write every update to a file, until Ctrl+C.

Thin by rule: the client is `client.connect` (every update, binary), the files are
`record.Recorder`. A progress line on stderr; SIGINT/SIGTERM stop cleanly with every file
complete, and exit 130 with one line saying what is on disk (cut short, if --duration or
--count was not reached). A killed recorder loses its open Parquet part: say so up front, and
suggest --rotate.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TextIO

import numpy as np
import trio
from numpy.typing import NDArray

from tickwire.feed.cli.args import (
    add_cafile_argument,
    duration_s,
    positive_int,
    split_symbols,
    ssl_context_from,
)
from tickwire.feed.client.events import (
    Batch,
    BookUpdate,
    Gap,
    ProtocolError,
    ScenarioChange,
    Status,
    TickwireError,
    TradingStatus,
)
from tickwire.feed.client.feed import DEFAULT_URL, Feed, connect
from tickwire.feed.record import Recorder, check_out, parse_rotate
from tickwire.feed.runner import cancel_on_signal, run_trio
from tickwire.simulators import Universe
from tickwire.simulators.book import LEVEL_DTYPE
from tickwire.simulators.errors import Interrupted, UserError

_PROGRESS_S = 0.5  # how often the progress line is redrawn (every 5 s when not a terminal)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ap = sub.add_parser(
        "record",
        help="write every update from a server to a file (.parquet, .npy, .csv)",
        description="Subscribe to a running server and write every update it sends, in order, "
        "to --out, until Ctrl+C (or --duration/--count). The files are the ones `tickwire "
        "simulate` writes; `tickwire serve --replay FILE` serves them again.",
        epilog="examples:\n  tickwire record ws://127.0.0.1:8765/v1 --out ticks.parquet\n"
        "  tickwire record --out day.parquet --rotate 1h\n"
        "  tickwire record --out aapl.csv --symbols AAPL,MSFT --duration 5m",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("url", nargs="?", help=f"server (default {DEFAULT_URL}); or --url URL")
    ap.add_argument("--url", dest="url_flag", metavar="URL", help="server, as `tail` takes it")
    ap.add_argument("--out", required=True, metavar="FILE", help="FILE.parquet, .npy or .csv")
    ap.add_argument(
        "--symbols",
        default="*",
        help="symbols, AAPL,MSFT or 'AAPL MSFT', or '*' for all (default)",
    )
    ap.add_argument("--token", help="token, if the server requires one")
    add_cafile_argument(ap)
    ap.add_argument(
        "--rotate",
        type=_rotate,
        metavar="WHEN",
        help="start a new part file (FILE-0001.parquet, ...) after a time (30m, 1h) or a size "
        "(500MB): a killed recorder then loses at most the open part",
    )
    ap.add_argument(
        "--duration", type=duration_s, metavar="DURATION", help="stop after this long (5s, 1h)"
    )
    ap.add_argument("--count", type=positive_int, metavar="N", help="stop after N ticks")
    ap.add_argument(
        "--book",
        action="store_true",
        help="also record the order books (Parquet only): every level change at the server's"
        " --book-depth, to FILE.book.parquet beside the ticks (replay serves any depth up to it)",
    )
    ap.set_defaults(func=_record)


def _rotate(text: str) -> object:
    try:
        return parse_rotate(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--rotate takes ")) from None


def _record(args: argparse.Namespace) -> int:
    if args.url and args.url_flag and args.url != args.url_flag:
        raise UserError(f"two servers given ({args.url} and --url {args.url_flag}): give one")
    args.url = args.url or args.url_flag or DEFAULT_URL
    out = Path(args.out)
    check_out(out)
    if args.book and out.suffix.lower() != ".parquet":  # before connecting
        raise UserError(f"--book records to Parquet only: --out must end in .parquet, not {out}")
    symbols = split_symbols(args.symbols) or ["*"]
    ssl_context = ssl_context_from(args.cafile)
    err = sys.stderr
    tty = err.isatty()
    box: list[Recorder] = []
    got: list[int] = []  # the signal that stopped the recording, if one did

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_on_signal, nursery.cancel_scope, got)
            book = True if args.book else None  # the server's depth: every change, none conflated
            async with connect(
                args.url, token=args.token, encoding="binary", ssl_context=ssl_context
            ) as feed:
                if args.book:
                    feed.keep_book_levels()  # what the book file is made of
                # Before the file is opened: a typo neither clobbers a file nor leaves an empty one.
                named = feed.resolve(symbols)
                universe = Universe.from_reference(await feed.symbols())
                depth = _book_depth(book, int(feed.welcome.get("book_depth", 0)))
                t0 = trio.current_time()
                rec = Recorder(
                    out,
                    universe,
                    rotate=args.rotate,
                    now_s=t0,
                    book_depth=depth,
                    books_now=lambda: _books_now(feed, universe),
                )
                box.append(rec)
                if out.suffix.lower() != ".csv":
                    print(
                        f"# recording to {rec.part_path}: it is complete once closed (Ctrl+C);"
                        " if the recorder is killed, the open part is lost"
                        f"{'' if args.rotate else ' (--rotate bounds it)'}",
                        file=err,
                    )
                await feed.subscribe(named, snapshot=False, mode="all", book=book)
                with trio.move_on_after(args.duration if args.duration else float("inf")):
                    await _consume(feed, rec, args.count, t0, err)
            nursery.cancel_scope.cancel()

    summary = ""
    try:
        run_trio(main)
    except ProtocolError as exc:  # the message alone, as tail says it: the wire code means nothing
        raise UserError(exc.message) from None
    except TickwireError as exc:
        raise UserError(str(exc)) from None
    finally:
        if box:  # whatever ended the recording, leave complete files behind
            rec = box[0]
            paths = rec.close(0.0)
            summary = (
                f"recorded {rec.ticks:,} ticks"
                f"{f', {rec.levels:,} level updates' if rec.book_depth is not None else ''}"
                f" ({rec.bytes_on_disk() / 1e6:.1f} MB)"
                f" to {', '.join(paths)}"
            )
            if not got:
                print(f"{chr(13) if tty else ''}{summary}", file=err)
    if got:  # stopped by a signal: exit 130 with one line saying what is on disk
        if tty:
            print("\r", end="", file=err)
        how = "Ctrl+C" if got[0] == signal.SIGINT else "SIGTERM"
        bound = args.duration is not None or args.count is not None
        raise Interrupted(
            f"stopped by {how}{', cut short' if bound else ''}: {summary or 'nothing recorded'}"
            f"{', complete and readable up to the stop' if summary else ''}"
        )
    return 0


async def _consume(feed: Feed, rec: Recorder, count: int | None, t0: float, err: TextIO) -> None:
    """Write every event's records until `count` ticks (or the end), with a progress line."""
    tty = err.isatty()
    shown = t0
    async for event in feed:
        now = trio.current_time()
        if isinstance(event, Batch):
            ticks = event.ticks
            if count is not None:
                ticks = ticks[: count - rec.ticks]
            rec.write(ticks, now)
            if count is not None and rec.ticks >= count:
                break
        elif isinstance(event, BookUpdate):
            if event.levels is not None and rec.book_depth is not None:
                whole = event.kind == "book_snapshot" or event.conflated > 0
                rec.write_book(event.levels, whole, now)
        elif not isinstance(event, TradingStatus | ScenarioChange):  # not recorded
            _report(event, err, tty)
        if now - shown >= (_PROGRESS_S if tty else 5.0):
            shown = now
            line = rec.progress(now - t0)
            print(f"\r{line}" if tty else line, end="" if tty else "\n", file=err)
            err.flush()


def _book_depth(book: bool | None, served: int) -> int | None:
    """The depth `--book` records (None: no books), or a UserError if the server has none."""
    if not book:
        return None
    if not served:
        raise UserError(
            "--book: this server keeps no order books; start it with --book-depth N"
            " (or record without --book)"
        )
    return served


def _books_now(feed: Feed, universe: Universe) -> NDArray[np.void]:
    """Every book the feed holds, as snapshot rows (LEVEL_DTYPE, reason 0)."""
    rows = []
    for sym in range(len(universe)):
        book = feed.book(universe.symbols[sym])
        if book is None:
            continue
        out = np.zeros(len(book.bids) + len(book.asks), LEVEL_DTYPE)
        out["price"] = np.concatenate([book.bids["price"], book.asks["price"]])
        out["size"] = np.concatenate([book.bids["size"], book.asks["size"]])
        out["side"][len(book.bids) :] = 1
        tick = float(universe.tick_size[sym])
        for lo, hi in ((0, len(book.bids)), (len(book.bids), len(out))):
            if hi > lo:
                away = np.abs(out["price"][lo:hi] - out["price"][lo])
                out["level"][lo:hi] = np.round(away / tick)
        out["sym"], out["seq"], out["ts"] = sym, book.seq, book.ts
        rows.append(out)
    return np.concatenate(rows) if rows else np.empty(0, LEVEL_DTYPE)


def _report(event: Gap | Status, err: TextIO, tty: bool) -> None:
    prefix = "\n" if tty else ""
    if isinstance(event, Gap):
        what = (
            f"{event.recovered} updates recovered"
            if event.recovered is not None
            else f"{event.lost} updates lost"
        )
        print(f"{prefix}# gap: {event.reason}, {what}", file=err)
    elif event.state == "reconnecting":
        print(f"{prefix}# reconnecting: {event.error}", file=err)
