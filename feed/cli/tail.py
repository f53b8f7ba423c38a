"""`tickwire tail`: print live ticks from a server, one line each.

Thin by rule: the client is `client.connect`, exactly what any user's code gets. It stops cleanly
on SIGINT/SIGTERM and exits 0 with no traceback. Imports the client library only, never the
server: a `tail --count 1` costs the client's start-up and one round trip, little more. numpy
loads with the first batch, the order book code only for `--book`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, TextIO

import orjson
import trio

from tickwire.feed import protocol as p
from tickwire.feed.cli.args import (
    add_cafile_argument,
    non_negative_int,
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
from tickwire.feed.quantity import Quantities, unit_places
from tickwire.feed.runner import cancel_on_signal, run_trio
from tickwire.simulators.errors import UserError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ap = sub.add_parser(
        "tail",
        help="print live ticks from a server, one line each",
        description="Subscribe to SYMBOLS on a running server and print each tick as it arrives. "
        "Symbols are case-insensitive. Status, gaps and restarts go to stderr, so stdout stays "
        "pipe-friendly. A server that cannot be reached, or refuses the token, is one line on "
        "stderr and exit status 2; a connection that drops later is reopened.",
        epilog="examples:\n  tickwire tail AAPL MSFT\n"
        "  tickwire tail '*' --count 100 --json | jq .bid\n"
        "  tickwire tail SPY --throttle 1000 --binary\n"
        "  tickwire tail --book AAPL\n"
        "  tickwire tail AAPL --url wss://feed.example:8765/v1 --cafile ca.pem --token s3cret",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "symbols", nargs="*", metavar="SYMBOL", help="symbols (AAPL MSFT or AAPL,MSFT), or '*'"
    )
    ap.add_argument(
        "--book",
        metavar="SYMBOL",
        help="print SYMBOL's order book instead, its top levels live (with --count: N ladders)",
    )
    ap.add_argument("--url", default=DEFAULT_URL, help="server URL (default %(default)s)")
    ap.add_argument("--token", help="token, if the server requires one")
    add_cafile_argument(ap)
    fmt = ap.add_mutually_exclusive_group()
    fmt.add_argument(
        "--json",
        action="store_true",
        help="print JSON lines instead of a table: the /v1 tick objects, sizes in counts of each"
        " symbol's size_unit (`tickwire symbols --json`)",
    )
    ap.add_argument("--binary", action="store_true", help="use the binary encoding on the wire")
    ap.add_argument("--count", type=positive_int, metavar="N", help="stop after N ticks")
    ap.add_argument(
        "--throttle",
        type=non_negative_int,
        metavar="MS",
        help="at most one line per symbol per MS: server-side conflation, and the snapshot "
        "line counts as the first of its interval",
    )
    ap.add_argument("--no-snapshot", action="store_true", help="skip the initial snapshot")
    ap.set_defaults(func=_tail)


def _tail(args: argparse.Namespace) -> int:
    out = sys.stdout
    encoding: Literal["json", "binary"] = "binary" if args.binary else "json"
    ssl_context = ssl_context_from(args.cafile)
    if not args.symbols and not args.book:
        raise UserError("tail needs SYMBOLs to print ticks (or '*'), or --book SYMBOL")

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_on_signal, nursery.cancel_scope)
            async with connect(
                args.url, token=args.token, encoding=encoding, ssl_context=ssl_context
            ) as feed:
                refs = [] if args.json else await feed.symbols()
                qty = Quantities(refs)  # sizes as the asset's quantity, prices at their tick
                places = {int(r["id"]): unit_places(float(r["tick_size"])) for r in refs}
                if args.book:
                    from tickwire.feed.cli.tail_book import tail_book

                    book = feed.resolve([args.book])[0]
                    if not feed.welcome.get("book_depth"):
                        raise UserError(
                            "this server keeps no order books; start it with --book-depth N"
                            f" (or tail {book} without --book)"
                        )
                    await tail_book(feed, book, out, count=args.count, qty=qty)
                else:
                    await _tail_ticks(feed, args, out, qty, places)
            # Only once the feed is closed (a clean close, 1000): cancelling inside it would
            # cut its closing handshake short.
            nursery.cancel_scope.cancel()

    try:
        run_trio(main)
    except ProtocolError as exc:  # the message alone: the wire code means nothing here
        raise UserError(exc.message) from None
    except TickwireError as exc:
        raise UserError(str(exc)) from None
    except BrokenPipeError:  # `tickwire tail ... | head`: the reader is done, so are we
        sys.stderr.close()
    return 0


async def _tail_ticks(
    feed: Feed, args: argparse.Namespace, out: TextIO, qty: Quantities, places: dict[int, int]
) -> None:
    """Print ticks of `args.symbols`, one line each, until `args.count` lines (or forever)."""
    symbols = feed.resolve(split_symbols(args.symbols))
    if args.throttle is not None:
        await feed.throttle(args.throttle)
    await feed.subscribe(symbols, snapshot=not args.no_snapshot)
    left = args.count
    # Columns as wide as the names and the finest size unit need (AAPL 6, DOGE-USD 8; sizes:
    # shares 6, BTC's 0.00001 lots 8), so that every line keeps them.
    shown = feed.symbol_names().tolist() if "*" in symbols else symbols
    widths = (max(6, *map(len, shown)), max(6, max(qty.places.values(), default=0) + 3))
    fresh = _Fresh((args.throttle or 0) / 1000)
    async for event in feed:
        if isinstance(event, Batch):
            import numpy as np  # loaded with the batch: a dict lookup

            ticks = fresh.filter(event.kind, event.ticks, trio.current_time())
            ticks = np.sort(ticks, order="ts")  # a batch is by symbol: by time
            names = event.names
            lines = (
                _json_lines(ticks, names)
                if args.json
                else _table_lines(ticks, names, qty, places, widths)
            )
            if left is not None:
                lines = lines[:left]
                left -= len(lines)
            out.write("".join(lines))
            out.flush()
            if left == 0:
                return
        elif not isinstance(event, BookUpdate):
            _print_event(event, sys.stderr)


class _Fresh:
    """With --throttle, the snapshot line starts its symbol's interval.

    The server's throttle window starts at the subscription, so its first throttled update can
    follow the snapshot by a few milliseconds: two lines for one symbol at once, which reads as
    a broken throttle. An update inside the snapshot's interval is skipped; the next one
    carries the latest state, as every throttled update does.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.until: dict[int, float] = {}  # symbol id -> end of its snapshot's interval

    def filter(self, kind: str, ticks: NDArray[np.void], now: float) -> NDArray[np.void]:
        if not self.interval_s:
            return ticks
        if kind == "snapshot":
            for sym in ticks["sym"].tolist():
                self.until[sym] = now + self.interval_s
            return ticks
        if not self.until:
            return ticks
        import numpy as np

        keep = [now >= self.until.get(sym, 0.0) for sym in ticks["sym"].tolist()]
        self.until = {s: t for s, t in self.until.items() if t > now}
        return ticks[np.array(keep, dtype=bool)] if not all(keep) else ticks


def _table_lines(
    t: NDArray[np.void],
    names: NDArray[np.object_],
    qty: Quantities,
    places: dict[int, int],
    widths: tuple[int, int] = (6, 6),
) -> list[str]:
    """One line per tick: prices with their tick's decimals (at least 2), sizes as the asset's
    quantity (units x size_unit, exact), in columns as wide as the finest unit needs."""
    sw, w = widths
    lines = []
    for sid, sym, ts, bid, ask, bs, asz, last, ls, vol, flags in zip(
        t["sym"].tolist(),
        names[t["sym"]].tolist(),
        *(
            t[f].tolist()
            for f in (
                "ts",
                "bid",
                "ask",
                "bid_size",
                "ask_size",
                "last",
                "last_size",
                "volume",
                "flags",
            )
        ),
        strict=True,
    ):
        when = datetime.fromtimestamp(ts / 1e9, UTC).strftime("%H:%M:%S.%f")
        side = "BUY " if flags & 2 else "SELL" if flags & 4 else "    "
        d = max(2, places.get(sid, 2))
        if qty.whole(sid):
            vol = f"{vol:,}"
        else:  # crypto: 0.00210, never the count of lots
            bs, asz, ls, vol = (qty.text(sid, u) for u in (bs, asz, ls, vol))
        lines.append(
            f"{when}  {sym:<{sw}} {bid:>10.{d}f} x {ask:<10.{d}f} {bs:>{w}} x {asz:<{w}}"
            f" last {last:>10.{d}f} {ls:>{w}} {side}  vol {vol:>12}\n"
        )
    return lines


def _json_lines(ticks: NDArray[np.void], names: NDArray[np.object_]) -> list[str]:
    """The wire's own tick objects (PROTOCOL.md), one per line."""
    return [orjson.dumps(d).decode() + "\n" for d in p.tick_dicts(ticks, names)]


def _print_event(event: Gap | Status | TradingStatus | ScenarioChange, err: TextIO) -> None:
    if isinstance(event, TradingStatus):
        print(f"# {event.symbol} {event.status} ({event.reason})", file=err)
    elif isinstance(event, ScenarioChange):
        print(f"# scenario {event.name} {event.state}", file=err)
    elif isinstance(event, Status):
        if event.state == "reconnecting":
            print(f"# reconnecting in {event.retry_in_s:.1f} s ({event.error})", file=err)
        elif event.state == "live" and event.attempt:
            print("# reconnected", file=err)
    elif event.reason == "restarted":
        now = datetime.now(UTC).strftime("%H:%M:%S")
        print(f"# feed restarted: history before {now} UTC is gone", file=err)
    else:
        if event.recovered is not None:
            what = f"{event.recovered:,} missed updates recovered, none lost"
        else:
            what = f"{event.lost:,} updates missed" if event.lost else "nothing missed"
        over = f" over {event.downtime_s:.1f} s" if event.downtime_s else ""
        print(f"# gap: {event.reason}, {what}{over}", file=err)
