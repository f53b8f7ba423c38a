"""`tickwire symbols` and `tickwire stats`: ask a running server, print a table or JSON.

Thin by rule: both are one request through the client library (`connect`, no reconnect), so
they see exactly what any client sees. A server that is down or refuses the token is one line.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio
from trio_websocket import ConnectionRejected

from tickwire.feed.cli.args import add_cafile_argument, ssl_context_from
from tickwire.feed.client.events import AuthError, TickwireError
from tickwire.feed.client.feed import DEFAULT_URL, Feed, connect
from tickwire.feed.quantity import quantity, unit_places
from tickwire.feed.urls import redact
from tickwire.simulators.errors import UserError

TIMEOUT_S = 10.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ap = sub.add_parser(
        "symbols",
        help="list a server's symbols and their reference data",
        description="List the universe a running server streams: symbol, id, name, sector, "
        "kind, start price, tick size, lot size.",
        epilog="examples:\n  tickwire symbols\n  tickwire symbols --json | jq '.[].symbol'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(ap)
    ap.set_defaults(func=_symbols)
    ap = sub.add_parser(
        "stats",
        help="show a server's counters",
        description="Show a running server's counters (clients, messages, ticks, overruns...) "
        "and those of this command's own short connection.",
        epilog="examples:\n  tickwire stats\n  tickwire stats --json | jq .server.clients",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(ap)
    ap.set_defaults(func=_stats)


def _common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--url", default=DEFAULT_URL, help="server URL (default %(default)s)")
    ap.add_argument("--token", help="token, if the server requires one")
    add_cafile_argument(ap)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _symbols(args: argparse.Namespace) -> int:
    symbols: list[dict[str, Any]] = _ask(args, lambda feed: feed.symbols())
    if args.json:
        print(json.dumps(symbols, indent=2))
        return 0
    rows = [
        [
            s["symbol"],
            str(s["id"]),
            s.get("name", ""),
            s.get("sector", ""),
            s.get("kind", ""),
            # Written with the decimals of the symbol's tick and lot: 0.00001, never 1e-05.
            f"{s['price']:.{max(2, unit_places(s.get('tick_size', 0.01)))}f}",
            quantity(1, s.get("tick_size", 0.01)),
            quantity(1, s.get("lot_size", 1)),
        ]
        for s in symbols
    ]
    header = ["symbol", "id", "name", "sector", "kind", "price", "tick", "lot"]
    print(table(header, rows, right={1, 5, 6, 7}))
    print(f"{len(symbols)} symbols (all prices simulated)")
    return 0


def _stats(args: argparse.Namespace) -> int:
    reply: dict[str, Any] = _ask(args, lambda feed: feed.stats())
    reply = {k: v for k, v in reply.items() if k not in ("type", "id")}
    if args.json:
        print(json.dumps(reply, indent=2))
        return 0
    server = reply.pop("server", {})
    rows = [[k, _fmt(v)] for k, v in server.items()]
    print("server")
    print(table(["counter", "value"], rows, right={1}))
    print("\nthis connection")
    print(table(["counter", "value"], [[k, _fmt(v)] for k, v in reply.items()], right={1}))
    return 0


def _ask(args: argparse.Namespace, request: Callable[[Feed], Awaitable[Any]]) -> Any:
    result: list[Any] = []
    context = ssl_context_from(args.cafile)

    async def main() -> None:
        with trio.fail_after(TIMEOUT_S):
            async with connect(
                args.url, token=args.token, reconnect=False, ssl_context=context
            ) as feed:
                result.append(await request(feed))

    url = redact(args.url)  # as printed: credentials masked
    refused = f"{url} refused the token{'' if args.token else ' (none given: try --token)'}"
    try:
        trio.run(main)
    except AuthError:
        raise UserError(refused) from None
    except ConnectionRejected as exc:  # the client library lets this one through today
        if exc.status_code == 401:
            raise UserError(refused) from None
        status = exc.status_code
        raise UserError(f"{url}: the server refused the connection (HTTP {status})") from None
    except TickwireError as exc:
        raise UserError(_about(url, exc)) from None
    except trio.TooSlowError:
        raise UserError(f"{url}: no answer within {TIMEOUT_S:g} s") from None
    except BaseExceptionGroup as group:
        leaves = group.exceptions
        if len(leaves) == 1 and isinstance(leaves[0], TickwireError | trio.TooSlowError):
            raise UserError(_about(url, leaves[0] or "no answer")) from None
        raise
    return result[0]


def _about(url: str, error: object) -> str:
    """The error's line, naming the server once (a connect error names it already)."""
    text = str(error)
    return text if url in text else f"{url}: {text}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """A plain aligned text table (columns in `right` right-aligned)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)
