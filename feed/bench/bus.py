"""Scale-out rows (issue 11): the same feed through producer -> Redis -> gateway(s), vs in-process;
and the producer alone: records, entries and bytes a second into Redis, CPU per published tick.

Each measurement starts its own throwaway `redis-server` (unix socket, no persistence), a
`tickwire serve --role producer` and one or two `tickwire serve --role gateway` processes, and
drives them with the fan-out rows' load clients: two gateways each get their own load-client
process (as two machines behind an L4 balancer would share clients). Baselines run in the same
bench run: the in-process `tickwire serve` for the bus's cost, one gateway for two. Server CPU
is the sum over the producer, the gateways and Redis. Rows are n/a when `redis-server` or
coredis is not installed. Imports no trio: everything runs in other processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from tickwire.feed.server.children import die_with_parent
from tickwire.simulators import Universe

from . import _procs
from ._table import NAN, Row, row, unavailable
from .fanout import SYMBOLS, _expect, _tell, load_on

STORM_N = 300  # issue 11: "300 clients reconnecting at once while 300 others stream on '*'"


def missing() -> str:
    """Why the bus rows cannot run here, or "" when they can."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        return "redis-server not installed (apt-get install redis-server)"
    try:
        __import__("coredis")
    except ImportError:
        return "coredis not installed: pip install 'tickwire[redis]'"
    return ""


@contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A throwaway redis-server on a unix socket; yields its bus URL and process."""
    with tempfile.TemporaryDirectory(prefix="tickwire-bench-") as tmp:
        sock = os.path.join(tmp, "redis.sock")
        args = ["redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700"]
        args += ["--save", "", "--appendonly", "no", "--dir", tmp]
        proc = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),  # a foreign program: PDEATHSIG
            process_group=0,  # a Ctrl+C reaches the bench alone (see _procs.spawn)
        )
        try:
            wait_ping(sock, proc)
            yield f"unix://{sock}", proc
        finally:
            proc.kill()
            proc.wait()


def wait_ping(sock: str, proc: subprocess.Popen[bytes]) -> None:
    """Until the redis-server `proc` answers PING on unix socket `sock` (at most 10 s); the
    bench's servers and the tests' use it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # nothing to wait on but the socket: poll, bounded
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1)
                s.connect(sock)
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith((b"+PONG", b"-NOAUTH")):  # up (with a password)
                    return
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("redis-server did not answer PING within 10 s")


@dataclass
class Feed:
    """A running feed: the URLs clients connect to and every process whose CPU it costs."""

    urls: list[str]
    pids: list[int]


@contextmanager
def feed(gateways: int, market_args: tuple[str, ...] = ()) -> Iterator[Feed]:
    """`gateways` 0: one in-process `tickwire serve`; otherwise Redis, a producer and that many
    gateways, each on its own port."""
    with ExitStack() as stack:
        if gateways == 0:
            proc, url = stack.enter_context(_procs.server("tickwire", *market_args))
            yield Feed([url], [proc.pid])
            return
        bus, redis = stack.enter_context(redis_server())
        producer = _serve(stack, "--bus", bus, "--role", "producer", *market_args)
        _procs.readline(producer)  # its ready line
        pids, urls = [redis.pid, producer.pid], []
        for _ in range(gateways):
            gw = _serve(stack, "--bus", bus, "--role", "gateway", "--port", "0")
            line = _procs.readline(gw)
            if " on ws" not in line:
                raise RuntimeError(f"a gateway did not start: {line!r}")
            urls.append(line.rsplit(" on ", 1)[1].split()[0].rstrip(";"))
            pids.append(gw.pid)
        yield Feed(urls, pids)


def _serve(stack: ExitStack, *args: str) -> subprocess.Popen[str]:
    proc = _procs.spawn("tickwire.feed.cli.main", "serve", "--log-level", "warning", *args)
    stack.callback(_procs.stop, proc, 0)
    return proc


def _latency(
    gateways: int, n: int, market_args: tuple[str, ...], window_s: float, warmup_s: float
) -> dict[str, float]:
    def client_args(k: int, first: int) -> tuple[str, ...]:
        return ("count", str(k), str(first), "0", "*", *market_args)

    with feed(gateways, market_args) as f:
        results, cpu, wall = load_on(f.urls, f.pids, client_args, n, window_s, warmup_s)
    secs = max(r["secs"] for r in results)
    ticks = sum(r["ticks"] for r in results)
    lat_ms = np.array([x for r in results for x in r["lat_ns"]], dtype=np.float64) / 1e6
    p50, p99 = np.percentile(lat_ms, [50, 99]) if lat_ms.size else (NAN, NAN)
    return {
        "ticks_per_s": ticks / secs,
        "p50": float(p50),
        "p99": float(p99),
        "cpu_pct": cpu / wall * 100,
        "client_cpu_pct": sum(r["cpu_s"] for r in results) / secs * 100,
    }


def _storm(gateways: int, streaming: int, storming: int) -> dict[str, float]:
    """`streaming` clients on `*`, then `storming` more opened at once: handshake p99 and the
    time until the last of them has its first data message, both from the storm's start."""

    def client_args(k: int, first: int) -> tuple[str, ...]:
        return ("count", str(k), str(first), "0", "*")

    with feed(gateways) as f, ExitStack() as stack:

        def spawn(*args: str) -> subprocess.Popen[str]:
            proc = _procs.spawn("tickwire.feed.bench._loadclient", *args, stdin=True)
            stack.callback(_procs.stop, proc)
            return proc

        shares = zip(f.urls, _split(streaming, len(f.urls)), strict=True)
        load = [
            spawn(*client_args(k, i * k)[:1], url, *client_args(k, i * k)[1:])
            for i, (url, k) in enumerate(shares)
        ]
        _expect(load, "connected", 30 + streaming * 0.2)
        _tell(load, "subscribe")
        _expect(load, "ready", 30)
        _tell(load, "go")
        shares = zip(f.urls, _split(storming, len(f.urls)), strict=True)
        storms = [spawn("storm", url, str(k)) for url, k in shares]
        _expect(storms, "connected", 30)
        _tell(storms, "subscribe")
        _expect(storms, "ready", 30)
        _tell(storms, "go")
        got = [json.loads(_procs.readline(s, 120)) for s in storms]
    hs = np.array([x for g in got for x in g["handshake_ms"]])
    live = [x for g in got for x in g["live_ms"]]
    failed = sum(g["failed"] for g in got) + storming - len(live)
    return {
        "p99": float(np.percentile(hs, 99)) if hs.size else NAN,
        "all_live_ms": max(live) if live and not failed else NAN,
        "failed": failed,
    }


def _cli(sock: str, *args: str) -> str:
    """One redis-cli command on the bench's own Redis (its plain output; entries hold raw
    records, so bytes are read as Latin-1)."""
    cmd = ["redis-cli", "-s", sock, *args]
    return subprocess.run(cmd, capture_output=True, timeout=10, check=True).stdout.decode("latin-1")


def _bus_counts(sock: str) -> tuple[int, int, int]:
    """Records published so far (the producer's next stream offset), stream entries added, and
    bytes Redis has received."""
    offset = int(_cli(sock, "GET", "tickwire:offset").strip() or 0)
    info = _cli(sock, "XINFO", "STREAM", "tickwire:ticks:0").split()
    entries = int(info[info.index("entries-added") + 1]) if "entries-added" in info else 0
    found = re.search(r"total_net_input_bytes:(\d+)", _cli(sock, "INFO", "stats"))
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
        _cli(sock, "SET", "tickwire:watched", "1", "PX", str(watch_ms))
        producer = _serve(stack, "--bus", bus, "--role", "producer", *market)
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


def _producer_rows(quick: bool, advance: Callable[[str], None]) -> list[Row]:
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


def _idle_row(quick: bool, advance: Callable[[str], None]) -> tuple[Row, str]:
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


def _takeover_ms() -> float:
    """An active producer SIGKILLed beside its standby: ms until the standby has written its
    meta (its epoch), which it does right before its first flush."""
    with ExitStack() as stack:
        bus, _ = stack.enter_context(redis_server())
        sock = bus.removeprefix("unix://")
        first = _serve(stack, "--bus", bus, "--role", "producer")
        _procs.readline(first)
        second = _serve(stack, "--bus", bus, "--role", "producer")
        if "standby" not in _procs.readline(second):
            raise RuntimeError("the second producer did not stand by")
        old = json.loads(_cli(sock, "GET", "tickwire:meta"))["epoch"]
        first.kill()
        t0 = time.perf_counter()
        while json.loads(_cli(sock, "GET", "tickwire:meta"))["epoch"] == old:
            if time.perf_counter() - t0 > 10:
                raise RuntimeError("no takeover within 10 s")
            time.sleep(0.005)  # polling Redis from outside: no event to wait on
        return (time.perf_counter() - t0) * 1000


def _split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def bus_rows(quick: bool, advance: Callable[[str], None]) -> tuple[list[Row], list[str]]:
    why = missing()
    if why:
        return [unavailable("bus latency N=10 '*'", why, status="n/a")], []
    window_s, warmup_s = (0.4, 0.2) if quick else (3.0, 0.5)
    rows: list[Row] = []
    notes: list[str] = []
    n10 = 2 if quick else 10
    label = f"bus latency N={n10} '*', default universe"
    res: dict[Any, dict[str, float]] = {}
    for g in (0, 1):
        advance(f"{label}: {'in-process' if g == 0 else 'through Redis'}")
        res[g] = _latency(g, n10, (), window_s, warmup_s)
    for pct in ("p50", "p99"):
        rows.append(
            row(f"{label}: {pct}", res[1][pct], "ms", "in-process", res[0][pct], higher=False)
        )
    rows.append(
        row(
            f"{label}: added by the bus, p50",
            res[1]["p50"] - res[0]["p50"],
            "ms",
            higher=False,
            target="< 1 ms",
        )
    )
    rows += _producer_rows(quick, advance)
    idle_row, idle_note = _idle_row(quick, advance)
    rows.append(idle_row)
    notes.append(idle_note)
    advance("bus takeover: the active producer killed beside a standby")
    rows.append(
        row(
            "bus takeover, active producer SIGKILLed: standby writing",
            _takeover_ms(),
            "ms",
            higher=False,
            target="< 2000 ms",
        )
    )
    if quick:
        rows.append(unavailable("gateways 2 vs 1", "not in --quick (minutes of load)", "n/a"))
        return rows, notes
    n = 100
    for symbols, tag in ((SYMBOLS, f"{SYMBOLS} symbols"), (None, "default universe")):
        market = ("--symbols", str(symbols)) if symbols else ()
        lbl = f"gateways 2 vs 1, N={n} '*', {tag}"
        for g in (1, 2):
            advance(f"{lbl}: {g}")
            res[lbl, g] = _latency(g, n, market, window_s, warmup_s)
        one, two = res[lbl, 1], res[lbl, 2]
        rows.append(
            row(
                f"{lbl}: ticks/s",
                two["ticks_per_s"],
                "t/s",
                "1 gateway",
                one["ticks_per_s"],
                higher=True,
                target=">= 1.6x" if symbols else "",
            )
        )
        rows.append(
            row(
                f"{lbl}: latency p50",
                two["p50"],
                "ms",
                "1 gateway",
                one["p50"],
                higher=False,
                target="< 1 ms" if not symbols else "",
            )
        )
        notes.append(
            f"{lbl}: feed CPU (producer + gateways + Redis) {one['cpu_pct']:.0f}% with 1, "
            f"{two['cpu_pct']:.0f}% with 2; load clients {one['client_cpu_pct']:.0f}% and "
            f"{two['client_cpu_pct']:.0f}% of 200%"
        )
    lbl = f"reconnect storm {STORM_N} while {STORM_N} stream '*'"
    for g in (0, 1, 2):
        advance(f"{lbl}: {g or 'in-process'} gateway(s)")
        res[lbl, g] = _storm(g, STORM_N, STORM_N)
    for g, base, base_name in ((1, 0, "in-process"), (2, 1, "1 gateway")):
        r, b = res[lbl, g], res[lbl, base]
        name = f"{lbl}, {g} gateway{'s' if g > 1 else ''}"
        rows.append(
            row(
                f"{name}: handshake p99",
                r["p99"],
                "ms",
                base_name,
                b["p99"],
                higher=False,
                target="< 1000 ms",
            )
        )
        rows.append(
            row(
                f"{name}: all live after",
                r["all_live_ms"],
                "ms",
                base_name,
                b["all_live_ms"],
                higher=False,
            )
        )
    return rows, notes
