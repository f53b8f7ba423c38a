"""`tickwire serve`: parse flags, build a server, run it.

Thin by rule: the server is `server.Server`. It stops cleanly on SIGINT/SIGTERM and exits 0 with
no traceback. Its SIGINT closes every client with 1001 at once; its first SIGTERM drains
(`Server.drain`: 1012 spread over --drain-s, the port open with /readyz 503 for --drain-min-s),
and a second SIGTERM or a SIGINT during the drain stops at once. `tail` is `_cli_tail`.
"""

from __future__ import annotations

import argparse
import gc
import logging
from typing import Any

import trio

from tickwire.feed import oplog
from tickwire.feed import protocol as p
from tickwire.feed.cli import bus as _cli_bus
from tickwire.feed.cli import config as _config
from tickwire.feed.cli.serve_settings import SERVE, server_config
from tickwire.feed.runner import run_trio, until_stopped
from tickwire.feed.server import capacity as _capacity
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators.errors import UserError

log = logging.getLogger("tickwire")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = ServerConfig()
    ap = sub.add_parser(
        "serve",
        help="run the feed server with its built-in simulated market",
        description="Run the WebSocket feed: a simulated market stepped every --cadence ms and "
        "pushed to every client for the symbols it subscribed to. With no flags it serves the "
        f"default universe on ws://{d.host}:{d.port}/v1; watch it with `tickwire tail AAPL MSFT` "
        "or `tickwire dashboard`.",
        epilog="examples:\n  tickwire serve\n  tickwire serve --symbols 5000 --activity 0.5\n"
        "  tickwire serve --host 0.0.0.0 --token s3cret --certfile cert.pem --keyfile key.pem\n"
        "  tickwire serve --bus redis://127.0.0.1:6379/0 --workers 2   # producer + 2 gateways\n"
        "  tickwire serve --bus redis://10.0.0.5:6379/0 --role gateway --host 0.0.0.0",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Every setting's flag, and --config FILE, --print-config; TICKWIRE_* for each of them.
    _config.add_arguments(ap, SERVE)
    ap.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    sources = _config.resolve(SERVE, args)  # flags > TICKWIRE_* > --config file > defaults
    if args.print_config:
        _config.print_config(SERVE, args, sources)
        return 0
    level = logging.DEBUG if args.verbose else getattr(logging, args.log_level.upper())
    oplog.setup(level, args.log_format)
    _cli_bus.require_extras(args)  # a missing extra is one line before any work
    if args.scenario and args.replay:
        raise UserError(
            "--scenario plays its events on the simulated market; it cannot be used with "
            "--replay (drop one of them)"
        )
    config = server_config(args)
    config.ssl_context()  # a bad certificate is a one-line error before anything starts
    config.policy()  # so is a bad --allow-origin
    _capacity.check(args, config, replay=bool(args.replay))  # one line if it cannot keep up
    source = None
    if args.replay:
        from tickwire.simulators.replay import open_replay

        source = open_replay(
            args.replay,
            speed=args.speed,
            start=args.start,
            end=args.end,
            loop=args.loop,
            universe=config.universe if args.universe else None,
            columns=args.columns,
            strict=args.strict,
            book_depth=config.book_depth or None,
        )
    if _cli_bus.wanted(args):
        return _cli_bus.serve_bus(args, config, source, sources)
    run_trio(lambda: _run(args, config, source))
    return 0


async def _run(args: argparse.Namespace, config: ServerConfig, source: Any) -> None:
    """The in-process server until SIGINT (1001 to all) or SIGTERM (the drain)."""
    server = Server(config, market=source)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(server.run)
        # Everything alive now (modules, the market, the hub) lives as long as the process:
        # out of the collector's sight, a full collection scans ~10x fewer objects. Measured
        # at 100 clients: the longest GC pause 40 ms -> 3 ms, i.e. the p99.9 latency spike.
        gc.collect()
        gc.freeze()
        n = len(server.hub)
        auth = " --token TOKEN" if config.tokens else ""
        what = "simulated" if source is None else f"replayed (x{args.speed:g})"
        page = url.replace("ws", "http", 1).removesuffix(p.PATH) + "/"
        print(
            f"tickwire serving {n} {what} symbols on {url}"
            f" (try: tickwire tail {' '.join(hint_symbols(server.hub.names.tolist()))}"
            f" --url {url}{auth}; the page: {page}"
            f"{'?token=TOKEN' if auth else ''}); Ctrl+C to stop",
            flush=True,
        )
        if args.log_every > 0:
            nursery.start_soon(_cli_bus.log_summaries, server, args.log_every)
        await until_stopped(server, args.drain_s, args.drain_min_s)
        log.info(
            "shutting down: closing %s with 1001",
            oplog.counted(len(server.connections), "client"),
        )
        await server.shutdown()
        nursery.cancel_scope.cancel()  # the summary task


def hint_symbols(names: list[str]) -> list[str]:
    """Two symbols of this universe for the start-up hint: AAPL MSFT when it has them."""
    if "AAPL" in names and "MSFT" in names:
        return ["AAPL", "MSFT"]
    return names[:2]
