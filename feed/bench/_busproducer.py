"""The bus's producer side in the bench: what a producer writes to Redis a second and what each
published tick costs it, an idle bus's cores, and a standby's takeover time.

Imports no trio: everything runs in other processes (see `_busfeed`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack

from tickwire.simulators import Universe

from . import _procs
from ._busfeed import feed, redis_cli, redis_server, serve
from ._table import NAN, Row, row
from .fanout import _expect, _tell


def _bus_counts(sock: str) -> tuple[int, int, int]:
    """Records published so far (the producer's next stream offset), stream entries added, and
    bytes Redis has received."""
    offset = int(redis_cli(sock, "GET", "tickwire:offset").strip() or 0)
    info = redis_cli(sock, "XINFO", "STREAM", "tickwire:ticks:0").split()
    entries = int(info[info.index("entries-added") + 1]) if "entries-added" in info else 0
    found = re.search(r"total_net_input_bytes:(\d+)", redis_cli(sock, "INFO", "stats"))
    return offset, entries, int(found[1]) if found else 0


def _producer(symbols: int, window_s: float, settle_s: float) -> dict[str, float]:
    """A producer of `symbols` writing to Redis for `window_s`: records, entries and bytes a
    second, its CPU per published record and Redis's CPU."""
    market = ("--symbols", str(symbols), "--no-capacity-check")
    with ExitStack() as stack:
        bus, redis = stack.enter_context(redis_server())
        sock = bus.removeprefix("unix://")
        # What a gateway with subscribers says: the producer then steps at the cadence (with
        # nobody watching it steps every 50 ms, and this row would measure that).
        watch_ms = int((settle_s + window_s + _procs.START_TIMEOUT_S) * 1000)
        redis_cli(sock, "SET", "tickwire:watched", "1", "PX", str(watch_ms))
        producer = serve(stack, "--bus", bus, "--role", "producer", *market)
        _procs.readline(producer)
        _procs.settle(settle_s)
        (r0, e0, b0), t0 = _bus_counts(sock), time.perf_counter()
        c0, rc0 = _procs.cpu_s(producer.pid), _procs.cpu_s(redis.pid)
        _procs.settle(window_s)
        (r1, e1, b1), secs = _bus_counts(sock), time.perf_counter() - t0
        cpu, redis_cpu = _procs.cpu_s(producer.pid) - c0, _procs.cpu_s(redis.pid) - rc0
    records = r1 - r0
    return {
        "records_per_s": records / secs,
        "entries_per_s": (e1 - e0) / secs,
        "bytes_per_s": (b1 - b0) / secs,
        "cpu_us_tick": cpu / records * 1e6 if records else NAN,
        "redis_core": redis_cpu / secs,
    }


def _in_process(symbols: int, window_s: float, settle_s: float) -> float:
    """The same market in one `tickwire serve`, stepped every millisecond as a producer is (one
    idle client holds one symbol): CPU per generated record, the market and the hub, i.e. what a
    producer does besides writing to Redis."""

    def published(url: str) -> int:
        cmd = ("tickwire.feed.cli.main", "stats", "--url", url, "--json")
        out = subprocess.run(
            [sys.executable, "-m", *cmd], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        return int(json.loads(out)["server"]["ticks_published"])

    market = ("--symbols", str(symbols), "--no-capacity-check")
    quiet = Universe.synthetic(symbols).symbols[-1]
    with _procs.server("tickwire", *market) as (proc, url), ExitStack() as stack:
        client = _procs.spawn(
            "tickwire.feed.bench._loadclient", "idle", url, "1", quiet, stdin=True
        )
        stack.callback(_procs.stop, client)
        _expect([client], "connected", 30)
        _tell([client], "subscribe")
        _expect([client], "ready", 30)
        _procs.settle(settle_s)
        n0, c0 = published(url), _procs.cpu_s(proc.pid)
        _procs.settle(window_s)
        n1, c1 = published(url), _procs.cpu_s(proc.pid)
    return (c1 - c0) / (n1 - n0) * 1e6 if n1 > n0 else NAN


def producer_rows(quick: bool, advance: Callable[[str], None]) -> list[Row]:
    window_s, settle_s = (0.5, 0.5) if quick else (5.0, 2.0)
    rows: list[Row] = []
    for symbols in (500,) if quick else (500, 5000):
        label = f"bus producer, {symbols} symbols"
        advance(label)
        got = _producer(symbols, window_s, settle_s)
        base = _in_process(symbols, window_s, settle_s)
        rows += [
            row(f"{label}: records/s to Redis", got["records_per_s"], "r/s", higher=True),
            row(f"{label}: Redis entries/s", got["entries_per_s"], "e/s", higher=True),
            row(f"{label}: bytes/s to Redis", got["bytes_per_s"], "B/s", higher=True),
            row(
                f"{label}: CPU per published tick",
                got["cpu_us_tick"],
                "us",
                "in-process server, same market, 1 ms steps",
                base,
                higher=False,
                redis_core=got["redis_core"],
            ),
        ]
    return rows


def _idle_cores(gateways: int, window_s: float, settle_s: float) -> list[float]:
    """Cores of each process of an idle feed (no client): the in-process server alone, or
    Redis, the producer and each gateway."""
    with feed(gateways) as f:
        _procs.settle(settle_s)
        c0, t0 = [_procs.cpu_s(p) for p in f.pids], time.perf_counter()
        _procs.settle(window_s)
        c1, secs = [_procs.cpu_s(p) for p in f.pids], time.perf_counter() - t0
    return [(b - a) / secs for a, b in zip(c0, c1, strict=True)]


def idle_row(quick: bool, advance: Callable[[str], None]) -> tuple[Row, str]:
    window_s, settle_s = (0.5, 0.5) if quick else (5.0, 2.0)
    advance("idle bus: a producer and 2 gateways, no client")
    bus = _idle_cores(2, window_s, settle_s)
    base = _idle_cores(0, window_s, settle_s)
    note = (
        f"idle bus cores: Redis {bus[0]:.3f}, producer {bus[1]:.3f}, gateways "
        + ", ".join(f"{c:.3f}" for c in bus[2:])
        + f"; in-process server {base[0]:.3f}"
    )
    label = "idle bus CPU (Redis + producer + 2 gateways), no client"
    return row(
        label, sum(bus), "core", "in-process server", base[0], higher=False, target="<= 0.15 core"
    ), note


def takeover_ms() -> float:
    """An active producer SIGKILLed beside its standby: ms until the standby has written its
    meta (its epoch), which it does right before its first flush."""
    with ExitStack() as stack:
        bus, _ = stack.enter_context(redis_server())
        sock = bus.removeprefix("unix://")
        first = serve(stack, "--bus", bus, "--role", "producer")
        _procs.readline(first)
        second = serve(stack, "--bus", bus, "--role", "producer")
        if "standby" not in _procs.readline(second):
            raise RuntimeError("the second producer did not stand by")
        old = json.loads(redis_cli(sock, "GET", "tickwire:meta"))["epoch"]
        first.kill()
        t0 = time.perf_counter()
        while json.loads(redis_cli(sock, "GET", "tickwire:meta"))["epoch"] == old:
            if time.perf_counter() - t0 > 10:
                raise RuntimeError("no takeover within 10 s")
            time.sleep(0.005)  # polling Redis from outside: no event to wait on
        return (time.perf_counter() - t0) * 1000
