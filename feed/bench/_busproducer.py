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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

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


Reading = Callable[[], tuple[float, ...]]


@contextmanager
def _bus_producer(symbols: int, watch_s: float) -> Iterator[tuple[float, Reading]]:
    """Redis and a producer of `symbols` stepping at the cadence; yields when it was started
    (perf_counter) and a reading of (records published, stream entries added, bytes Redis
    received, the producer's CPU seconds, Redis's)."""
    with ExitStack() as stack:
        bus, redis = stack.enter_context(redis_server())
        sock = bus.removeprefix("unix://")
        # What a gateway with subscribers says: the producer then steps at the cadence (with
        # nobody watching it steps every 50 ms, and this row would measure that).
        redis_cli(sock, "SET", "tickwire:watched", "1", "PX", str(int(watch_s * 1000)))
        spawned = time.perf_counter()
        producer = serve(stack, "--bus", bus, "--role", "producer", *_market(symbols))
        _procs.readline(producer)

        def read() -> tuple[float, ...]:
            cpu = _procs.cpu_s(producer.pid), _procs.cpu_s(redis.pid)
            return *_bus_counts(sock), *cpu

        yield spawned, read


@contextmanager
def _in_process(symbols: int, _watch_s: float) -> Iterator[tuple[float, Reading]]:
    """The same market in one `tickwire serve`, stepped every millisecond as a producer is
    (one idle client holds one symbol): the market and the hub, i.e. what a producer does
    besides writing to Redis. Yields when it was started and a reading of (records published,
    steps, 0, its CPU seconds, 0)."""

    def read() -> tuple[float, ...]:
        cmd = ("tickwire.feed.cli.main", "stats", "--url", url, "--json")
        out = subprocess.run(
            [sys.executable, "-m", *cmd], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        server = json.loads(out)["server"]
        return server["ticks_published"], server["generation"], 0, _procs.cpu_s(proc.pid), 0

    quiet = Universe.synthetic(symbols).symbols[-1]
    spawned = time.perf_counter()
    with _procs.server("tickwire", *_market(symbols)) as (proc, url), ExitStack() as stack:
        client = _procs.spawn(
            "tickwire.feed.bench._loadclient", "idle", url, "1", quiet, stdin=True
        )
        stack.callback(_procs.stop, client)
        _expect([client], "connected", 30)
        _tell([client], "subscribe")
        _expect([client], "ready", 30)
        yield spawned, read


def _market(symbols: int) -> tuple[str, ...]:
    return ("--symbols", str(symbols), "--no-capacity-check")


def _producer(symbols: int, window_s: float, lead_s: float) -> dict[str, float]:
    """A producer of `symbols` writing to Redis, then its baseline, the in-process server:
    CPU per published record, records and steps a second, each over the `window_s` that starts
    `lead_s` after its process was started (or as long after as the baseline's client took to
    connect, the baseline being measured first).

    The same seconds of the same market for both: the market's rate of records climbs over its
    first seconds (at 500 symbols ~13k/s in the first, ~25k/s in the fifth, ~36k/s after 15 s),
    and a step costs about as much with more records in it, so the baseline as it was measured
    (later in its market: after its client had connected) had ~15% more records a second and
    looked that much cheaper per record. (Run at the same time instead, at 5000 symbols the two
    markets starved each other of CPU.)"""
    got: dict[str, float] = {}
    for name, measured in (("base_", _in_process), ("", _bus_producer)):
        with measured(symbols, 3 * (lead_s + window_s) + 60) as (spawned, read):
            _procs.settle(max(spawned + lead_s - time.perf_counter(), 0))
            (n0, k0, y0, c0, rc0), t0 = read(), time.perf_counter()
            _procs.settle(window_s)
            (n1, k1, y1, c1, rc1), secs = read(), time.perf_counter() - t0
        n = n1 - n0
        got[f"{name}records_per_s"] = n / secs
        got[f"{name}steps_per_s"] = (k1 - k0) / secs  # a producer writes one entry a step
        got[f"{name}cpu_us_tick"] = (c1 - c0) / n * 1e6 if n else NAN
        got[f"{name}start_s"] = t0 - spawned
        lead_s = max(lead_s, t0 - spawned)  # a baseline slower to start: the producer waits as long
        if not name:
            got["bytes_per_s"], got["redis_core"] = (y1 - y0) / secs, (rc1 - rc0) / secs
    return got


def producer_rows(quick: bool, advance: Callable[[str], None]) -> list[Row]:
    # Each window starts this long after its process did: past the start-up and a client's
    # connection under load, the same for the producer and its baseline.
    window_s, lead_s = (0.5, 4.0) if quick else (5.0, 6.0)
    rows: list[Row] = []
    for symbols in (500,) if quick else (500, 5000):
        label = f"bus producer, {symbols} symbols"
        advance(label)
        got = _producer(symbols, window_s, lead_s)
        rows += [
            row(f"{label}: records/s to Redis", got["records_per_s"], "r/s", higher=True),
            row(f"{label}: Redis entries/s", got["steps_per_s"], "e/s", higher=True),
            row(f"{label}: bytes/s to Redis", got["bytes_per_s"], "B/s", higher=True),
            row(
                f"{label}: CPU per published tick",
                got["cpu_us_tick"],
                "us",
                "in-process server, same market, 1 ms steps",
                got["base_cpu_us_tick"],
                higher=False,
                target="<= 1.5x",
                redis_core=got["redis_core"],
                steps_per_s=got["steps_per_s"],
                base_steps_per_s=got["base_steps_per_s"],
                base_records_per_s=got["base_records_per_s"],
                start_s=got["start_s"],  # the window's start after the process's, in seconds
                base_start_s=got["base_start_s"],
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
