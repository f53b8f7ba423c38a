"""`tickwire serve`: parse flags, build a server, run it.

Thin by rule: the server is `server.Server`. It stops cleanly on SIGINT/SIGTERM and exits 0 with
no traceback. Its SIGINT closes every client with 1001 at once; its first SIGTERM drains
(`Server.drain`: 1012 spread over --drain-s, the port open with /readyz 503 for --drain-min-s),
and a second SIGTERM or a SIGINT during the drain stops at once. `tail` is `_cli_tail`.
"""

from __future__ import annotations

import argparse
import functools
import gc
import logging
from typing import Any

import trio

from tickwire.feed import oplog
from tickwire.feed import protocol as p
from tickwire.feed.cli import bus as _cli_bus
from tickwire.feed.cli import config as _config
from tickwire.feed.cli.args import (
    _duration_s,
    _non_negative_float,
    _non_negative_int,
    _port,
    _positive_float,
    _positive_int,
    _seed,
    server_token,
)
from tickwire.feed.runner import run_trio, until_stopped
from tickwire.feed.server import capacity as _capacity
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.feed.v1 import state as st

log = logging.getLogger("tickwire")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _register_serve(sub)


def _register_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    ap.add_argument("--host", default=d.host, help="address to bind (default %(default)s)")
    ap.add_argument(
        "--port",
        type=_port,
        default=d.port,
        help="TCP port, 0 for any free port (default %(default)s)",
    )
    ap.add_argument(
        "--cadence",
        type=_positive_float,
        default=d.cadence_ms,
        metavar="MS",
        help="generator and flush interval in ms (default %(default)s)",
    )
    _add_market_arguments(ap)
    ap.add_argument(
        "--token",
        action="append",
        default=[],
        type=server_token,
        metavar="TOKEN",
        help="require this token (repeat for several); clients send "
        "'Authorization: Bearer TOKEN' or ?token=TOKEN",
    )
    ap.add_argument("--certfile", help="TLS certificate (PEM): serve wss://")
    ap.add_argument("--keyfile", help="TLS private key (PEM), if not inside --certfile")
    ap.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="URL",
        help="let web pages from this origin connect, e.g. https://example.com (repeat for "
        "several; '*' for any). Pages served from the server's own host are always allowed, "
        "other browser origins get HTTP 403; clients that send no Origin (not browsers) pass",
    )
    ap.add_argument(
        "--max-connections",
        type=_positive_int,
        default=d.max_connections,
        help="sockets held at once, handshakes included; clients beyond this are closed "
        "with 1013, once sockets that sent no request yet have been shed (default %(default)s)",
    )
    ap.add_argument(
        "--max-connections-per-ip",
        type=_non_negative_int,
        default=d.max_connections_per_ip,
        metavar="N",
        help="sockets one client address may hold, checked at accept: a new one replaces its "
        "oldest socket that sent no request yet, else gets HTTP 429 (default 0: no limit; "
        "behind a proxy every client has the proxy's address)",
    )
    ap.add_argument(
        "--heartbeat-ms",
        type=_non_negative_int,
        default=d.heartbeat_ms,
        help="heartbeat after this much silence, 0 to disable (default %(default)s)",
    )
    ap.add_argument(
        "--stall-ms",
        type=_positive_int,
        default=d.stall_ms,
        help="close a client (1008) whose socket accepts nothing this long (default %(default)s)",
    )
    ap.add_argument(
        "--max-symbols",
        type=_positive_int,
        default=st.Limits().max_symbols,
        help="explicit symbols per connection (default %(default)s; '*' always allowed)",
    )
    ap.add_argument(
        "--alpaca-connections-per-key",
        type=_non_negative_int,
        default=d.alpaca_connections_per_key,
        metavar="N",
        help="authenticated /alpaca/ connections per key and feed; more get Alpaca's 406 "
        "(default %(default)s, as at Alpaca; 0: no limit, e.g. for many bots on one key)",
    )
    ap.add_argument(
        "--binance-weight-per-min",
        type=_positive_int,
        default=d.binance_weight_per_min,
        metavar="N",
        help="REST request weight per address and minute under /binance/api/; more gets "
        "Binance's 429 with Retry-After (default %(default)s, as at Binance)",
    )
    rp = ap.add_argument_group(
        "replay", "serve recorded or real ticks instead of the model (same protocol)"
    )
    rp.add_argument(
        "--replay",
        nargs="+",
        metavar="FILE",
        help="tickwire .parquet/.npy/.csv (from record or simulate), or quote/trade CSVs "
        "(.csv or .csv.gz, e.g. Tardis quotes and trades), merged in time order",
    )
    rp.add_argument(
        "--speed",
        type=_non_negative_float,
        default=1.0,
        metavar="X",
        help="1 real time, 10 ten times faster, 0 as fast as the clients read (default 1)",
    )
    rp.add_argument("--start", metavar="TIME", help="from this time (ISO 8601, ns, or +10m)")
    rp.add_argument("--end", metavar="TIME", help="up to this time (ISO 8601, ns, or +10m)")
    rp.add_argument("--loop", action="store_true", help="start over at the end, forever")
    rp.add_argument(
        "--strict",
        action="store_true",
        help="refuse a file with any row that cannot be replayed (a NaN price, a crossed quote, "
        "a value out of range), naming it; by default such rows are skipped and counted in a log "
        "line",
    )
    rp.add_argument(
        "--columns",
        metavar="MAP",
        help="column names of a CSV when they differ, e.g. ts=time,symbol=ticker,bid=bp,ask=ap,"
        "bid_size=bs,ask_size=as,price=px,size=qty,side=side",
    )
    ap.add_argument(
        "--history",
        type=_duration_s,
        default=d.history_s,
        metavar="DURATION",
        help="keep this much recent data for every-update readers and resumes, e.g. 60s, 5m, "
        "0 for none (default %(default)gs)",
    )
    ap.add_argument(
        "--history-mb",
        type=_positive_float,
        default=d.history_mb,
        metavar="MB",
        help="memory cap of that history; the older data goes first (default %(default)g)",
    )
    ap.add_argument(
        "--max-lag",
        type=_duration_s,
        default=d.max_lag_s,
        metavar="DURATION",
        help="an every-update reader further behind the newest data than this (event time) gets "
        "the latest state of each changed symbol instead (per-symbol seq jumps, counted in "
        "ticks_conflated), then every update again; a resuming client first gets all it missed; "
        "0: no bound but --history (default %(default)gs)",
    )
    ap.add_argument(
        "--drain-s",
        type=_non_negative_float,
        default=10.0,
        metavar="SECONDS",
        help="on SIGTERM, close the clients with 1012 spread over this long (default "
        "%(default)s); a second SIGTERM or Ctrl+C stops at once",
    )
    ap.add_argument(
        "--drain-min-s",
        type=_non_negative_float,
        default=5.0,
        metavar="SECONDS",
        help="on SIGTERM, keep the port open this long (/readyz 503, new clients refused) so a "
        "load balancer's health check sees it, even with no client; 0 without a balancer "
        "(default %(default)s)",
    )
    _cli_bus.add_bus_arguments(ap)
    _add_logging(ap)
    ap.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="log lines as text or as JSON objects for log shippers (default %(default)s)",
    )
    ap.add_argument(
        "--log-every",
        type=_non_negative_float,
        default=60.0,
        metavar="SECONDS",
        help="log a one-line summary (clients, msgs/s, ticks/s, overruns) this often, 0 for "
        "never (default %(default)s)",
    )
    _capacity.add_argument(ap)  # --no-capacity-check
    _config.install(ap)  # --config FILE, --print-config, TICKWIRE_* for every flag above
    ap.set_defaults(func=functools.partial(_serve, parser=ap))


def _add_market_arguments(ap: argparse.ArgumentParser) -> None:
    try:
        from tickwire.simulators.cli import add_market_arguments
    except ImportError:
        ap.add_argument("--seed", type=_seed, default=0, help="market seed (default %(default)s)")
        ap.add_argument(
            "--symbols",
            type=_positive_int,
            metavar="N",
            help="a synthetic universe of N symbols instead of the default one",
        )
        ap.add_argument(
            "--activity",
            type=_positive_float,
            default=1.0,
            help="scale every trade and quote rate (default %(default)s)",
        )
    else:
        add_market_arguments(ap)


def _universe(args: argparse.Namespace) -> Any:
    try:
        from tickwire.simulators.cli import universe_from_args
    except ImportError:
        from tickwire.simulators import Universe

        return Universe.synthetic(args.symbols, args.seed) if args.symbols else None
    return universe_from_args(args)


def _serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    sources = _config.resolve(parser, args)  # flags > TICKWIRE_* > --config file > defaults
    if args.print_config:
        _config.print_config(parser, args, sources)
        return 0
    level = logging.DEBUG if args.verbose else getattr(logging, args.log_level.upper())
    oplog.setup(level, args.log_format)
    _cli_bus.require_extras(args)  # a missing extra is one line before any work
    config = ServerConfig(
        host=args.host,
        port=args.port,
        cadence_ms=args.cadence,
        seed=args.seed,
        universe=_universe(args),
        activity=args.activity,
        session=getattr(args, "session", "6.5h"),
        tokens=tuple(args.token),
        certfile=args.certfile,
        keyfile=args.keyfile,
        max_connections=args.max_connections,
        max_connections_per_ip=args.max_connections_per_ip,
        alpaca_connections_per_key=args.alpaca_connections_per_key,
        binance_weight_per_min=args.binance_weight_per_min,
        allow_origins=tuple(args.allow_origin),
        heartbeat_ms=args.heartbeat_ms,
        stall_ms=args.stall_ms,
        limits=st.Limits(max_symbols=args.max_symbols),
        history_s=args.history,
        history_mb=args.history_mb,
        max_lag_s=args.max_lag,
    )
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
            universe=config.universe if getattr(args, "universe", None) else None,
            columns=args.columns,
            strict=args.strict,
        )
    if _cli_bus.wanted(args):
        return _cli_bus.serve_bus(args, config, source, sources)

    async def main() -> None:
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
                nursery.start_soon(_log_summaries, server, args.log_every)
            await until_stopped(server, args.drain_s, args.drain_min_s)
            log.info(
                "shutting down: closing %s with 1001",
                oplog.counted(len(server.connections), "client"),
            )
            await server.shutdown()
            nursery.cancel_scope.cancel()  # the summary task

    run_trio(main)
    return 0


def hint_symbols(names: list[str]) -> list[str]:
    """Two symbols of this universe for the start-up hint: AAPL MSFT when it has them."""
    if "AAPL" in names and "MSFT" in names:
        return ["AAPL", "MSFT"]
    return names[:2]


# --------------------------------------------------------------------------- helpers


async def _log_summaries(server: Server, every_s: float) -> None:
    """The periodic one-line summary (`--log-every`), from two `statistics()` a period apart."""
    prev, prev_s = server.statistics(), trio.current_time()
    while True:
        await trio.sleep(every_s)
        cur, now_s = server.statistics(), trio.current_time()
        line, fields = oplog.summary(prev, cur, now_s - prev_s)
        log.info(line, extra=fields)
        prev, prev_s = cur, now_s


def _add_logging(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("-v", "--verbose", action="store_true", help="same as --log-level debug")
    ap.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level (default %(default)s)",
    )
