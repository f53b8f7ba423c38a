"""`tickwire serve`'s scale-out: --bus, --role, --bus-namespace, --workers (`serve_settings`).

Thin, like `_cli_serve`: check the combination (each mistake one line saying what to do), then
run a producer or a gateway (`_gateway`), or supervise one of each per worker (`_supervise`).
Plain `tickwire serve` never reaches this module's runners, so it never imports coredis.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import trio

from tickwire.feed import extras, oplog
from tickwire.feed.bus.url import check_bus_url
from tickwire.feed.runner import run_trio, until_stopped
from tickwire.feed.server import supervise as _supervise
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators.errors import UserError

log = logging.getLogger("tickwire")

_MARKET_FLAGS = ("replay", "symbols", "seed", "activity", "universe", "session", "speed")


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.bus or args.role or args.workers)


def require_extras(args: argparse.Namespace) -> None:
    """--bus needs coredis: said once, before anything starts (and before any worker does)."""
    if args.bus:
        extras.require("--bus", "redis", "coredis", otherwise="or serve without --bus")


def serve_bus(
    args: argparse.Namespace,
    config: ServerConfig,
    market: Any,
    sources: dict[str, str],
) -> int:
    """Run what --bus/--role/--workers ask for; every bad combination is one line."""
    if args.workers and not args.bus:
        raise UserError(
            "--workers needs a bus: start Redis (`redis-server --port 6379`) and add "
            "--bus redis://127.0.0.1:6379/0, or drop --workers"
        )
    if not args.bus:
        raise UserError("--role needs --bus redis://HOST:PORT/DB (the Redis the roles share)")
    check_bus_url(args.bus)  # one line for a bad port, host or db, before anything connects
    role = args.role
    given = {d for d, where in sources.items() if where != "default"}
    market_flags = sorted(d for d in _MARKET_FLAGS if d in given)
    if role == "gateway" and market_flags and not args.worker:  # a worker's are its parent's
        raise UserError(
            f"--{market_flags[0].replace('_', '-')} belongs to the producer: a gateway "
            "serves the universe and ticks it reads from the bus"
        )
    if args.workers:
        if role == "producer":
            raise UserError(
                "--workers N starts gateways (and a producer unless --role gateway); "
                "run a lone producer without --workers"
            )
        return _supervise.supervise(args, config, with_producer=role is None)
    if role is None:
        raise UserError(
            "--bus needs --role producer or --role gateway (or --workers N for a producer "
            "and N gateways on this machine)"
        )
    if role == "producer" and market is not None and getattr(market, "paced_by_readers", False):
        raise UserError(
            "--speed 0 paces a replay by its clients, and a producer's clients are on the "
            "gateways: give a speed > 0"
        )
    if args.worker:
        config.reuse_port = True
    # coredis logs every retry and dropped connection at INFO: the bus says down/up once itself.
    logging.getLogger("coredis").setLevel(logging.WARNING)

    async def stop(server: Server) -> None:
        await until_stopped(server, args.drain_s, args.drain_min_s)

    summaries = None
    if args.log_every > 0:

        async def summaries(server: Server) -> None:
            await log_summaries(server, args.log_every)

    ns = args.bus_namespace
    if role == "gateway":
        from tickwire.feed.server.busrun import run_gateway

        run_trio(lambda: run_gateway(config, args.bus, ns, stop=stop, summaries=summaries))
    else:
        from tickwire.feed.server.busrun import run_producer

        listen = "port" in given and not args.worker
        run_trio(
            lambda: run_producer(
                config, market, args.bus, ns, listen=listen, stop=stop, summaries=summaries
            )
        )
    return 0


async def log_summaries(server: Server, every_s: float) -> None:
    """The periodic one-line summary (`--log-every`), from two `statistics()` a period apart;
    a gateway's adds its id, its bus state and its lag."""
    prev, prev_s = server.statistics(), trio.current_time()
    while True:
        await trio.sleep(every_s)
        cur, now_s = server.statistics(), trio.current_time()
        line, fields = oplog.summary(prev, cur, now_s - prev_s)
        if "gateway" in cur:
            line += f"; gateway {cur['gateway']}, bus {cur['bus']}, lag {cur['bus_lag_ms']} ms"
            fields = {**fields, "gateway": cur["gateway"], "bus_lag_ms": cur["bus_lag_ms"]}
        log.info(line, extra=fields)
        prev, prev_s = cur, now_s


def child_argv() -> list[str]:
    """This invocation's arguments, for a supervised child to parse the same way."""
    return sys.argv[1:]
