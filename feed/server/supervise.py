"""`tickwire serve --bus URL --workers N`: a producer and N gateways on one port, supervised.

Each worker is a child `tickwire serve` of this same invocation with `--role` set and the port
shared through SO_REUSEPORT (the kernel spreads new connections over the gateways). A worker
that exits on its own is logged and restarted after a backoff; one that keeps dying within
seconds of its start is given up on in one line, and then everything stops. Ctrl+C (SIGINT) and
SIGTERM are passed on to every worker (its clients get 1001, or the drain's 1012), and this
process exits 0 once they are all gone. The workers run in their own sessions, so a terminal's
Ctrl+C reaches them once, through here.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import trio

from tickwire.feed import oplog
from tickwire.feed.backoff import Backoff
from tickwire.feed.runner import run_trio
from tickwire.feed.server import children
from tickwire.feed.server.server import ServerConfig
from tickwire.feed.urls import redact
from tickwire.simulators.errors import UserError

log = logging.getLogger("tickwire.supervise")

BACKOFF_S = (0.5, 10.0)  # first and longest wait before a restart
CRASH_WINDOW_S = 10.0  # a worker that exits this soon after starting counts as a crash...
MAX_CRASHES = 5  # ...and this many in a row is a crash loop: give up
STOP_GRACE_S = 5.0  # past a worker's own stop (drain included), it is killed


@dataclass(eq=False)
class Worker:
    name: str
    cmd: list[str]
    options: dict[str, Any] = field(default_factory=dict)  # to open_process (the lifeline)
    proc: trio.Process | None = None
    ready_line: str = ""
    ready: trio.Event = field(default_factory=trio.Event)
    restarts: int = 0


class Supervisor:
    def __init__(self, workers: list[Worker], drain_s: float) -> None:
        self.workers = workers
        self.drain_s = drain_s
        self.stopping = False
        self.gave_up: str | None = None
        self._all_stopped = trio.Event()

    async def keep(self, w: Worker, scope: trio.CancelScope) -> None:
        """Run `w`, restarting it when it exits on its own, until stopping or a crash loop."""
        crashes, backoff = 0, Backoff(*BACKOFF_S)
        while not self.stopping:
            started = trio.current_time()
            # open_process forks from a trio worker thread that may be retired while the
            # worker runs: the worker's lifeline is tied to this process, not to that thread.
            proc = await trio.lowlevel.open_process(
                w.cmd, stdout=subprocess.PIPE, start_new_session=True, **w.options
            )
            w.proc = proc
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_stdout, w, proc)
                code = await proc.wait()
            if self.stopping:
                return
            lived_s = trio.current_time() - started
            crashes = crashes + 1 if lived_s < CRASH_WINDOW_S else 1
            if lived_s >= CRASH_WINDOW_S:
                backoff.reset()
            if crashes >= MAX_CRASHES:
                self.gave_up = (
                    f"worker {w.name} exited {crashes} times in a row within "
                    f"{CRASH_WINDOW_S:g} s of starting (last exit status {code}): giving up; "
                    "its own error is in the log lines above"
                )
                scope.cancel()
                return
            w.restarts += 1
            wait_s = backoff.next()
            log.warning(
                "worker %s (pid %d) exited with status %s after %.1f s; restarting in %.1f s",
                w.name,
                proc.pid,
                code,
                lived_s,
                wait_s,
            )
            await trio.sleep(wait_s)

    async def _read_stdout(self, w: Worker, proc: trio.Process) -> None:
        """Its first line says it is ready; anything later is passed through."""
        assert proc.stdout is not None
        buf = b""
        async for chunk in proc.stdout:
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                if not w.ready.is_set():
                    w.ready_line = text
                    w.ready.set()
                    log.info("worker %s (pid %d) ready", w.name, proc.pid)
                else:
                    print(text, flush=True)

    def signal_all(self, signum: int) -> None:
        for w in self.workers:
            if w.proc is not None and w.proc.returncode is None:
                w.proc.send_signal(signum)

    async def wait_all(self) -> None:
        for w in self.workers:
            if w.proc is not None:
                await w.proc.wait()


def supervise(args: argparse.Namespace, config: ServerConfig, *, with_producer: bool) -> int:
    reserved = None
    port = config.port
    if port == 0:  # choose one port for all: bound here (never listening) until they listen
        reserved = _reserve_port(config.host)
        port = reserved.getsockname()[1]
    base, options = children.python_child(
        "tickwire.feed.cli.main", *sys.argv[1:], "--workers", "0", "--port", str(port), "--worker"
    )
    workers = [
        Worker(f"gateway-{i}", [*base, "--role", "gateway"], options)
        for i in range(1, args.workers + 1)
    ]
    if with_producer:
        workers.insert(0, Worker("producer", [*base, "--role", "producer"], options))
    sup = Supervisor(workers, args.drain_s)

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                for w in workers:
                    nursery.start_soon(sup.keep, w, nursery.cancel_scope)
                ready = await _until_ready(sup, signals)
                if reserved is not None:
                    reserved.close()
                if ready:
                    print(_ready_line(args, workers, with_producer), flush=True)
                    first = await signals.__anext__()
                else:
                    first = signal.SIGINT
                sup.stopping = True
                what = "stopping" if first != signal.SIGTERM else "draining"
                log.info("%s %d workers", what, len(workers))
                sup.signal_all(first)
                with trio.move_on_after(
                    args.drain_s + STOP_GRACE_S if first == signal.SIGTERM else STOP_GRACE_S
                ) as timer:
                    async with trio.open_nursery() as waiting:
                        waiting.start_soon(_forward, sup, signals)
                        await sup.wait_all()
                        waiting.cancel_scope.cancel()
                if timer.cancelled_caught:
                    log.warning("workers still running after the grace period: killing them")
                    sup.signal_all(signal.SIGKILL)
                nursery.cancel_scope.cancel()
        if reserved is not None and reserved.fileno() != -1:
            reserved.close()

    try:
        run_trio(main)
    finally:
        for w in workers:  # nothing outlives the supervisor, whatever happened
            if w.proc is not None and w.proc.returncode is None:
                w.proc.kill()
    if sup.gave_up:
        raise UserError(sup.gave_up)
    return 0


async def _until_ready(sup: Supervisor, signals: AsyncIterator[int]) -> bool:
    """True once every worker said it is ready; False if a signal came first."""
    async with trio.open_nursery() as nursery:
        result = [True]

        async def on_signal() -> None:
            await signals.__anext__()
            result[0] = False
            nursery.cancel_scope.cancel()

        nursery.start_soon(on_signal)
        for w in sup.workers:
            await w.ready.wait()
        nursery.cancel_scope.cancel()
    return result[0]


async def _forward(sup: Supervisor, signals: AsyncIterator[int]) -> None:
    """A second signal while stopping goes on too (the workers then stop at once)."""
    async for signum in signals:
        sup.signal_all(signum)


def _ready_line(args: argparse.Namespace, workers: list[Worker], with_producer: bool) -> str:
    gateway = next(w for w in workers if w.name.startswith("gateway"))
    line = gateway.ready_line
    url = line.split(" on ", 1)[1].split()[0] if " on " in line else "?"
    found = re.search(r"serving (\d+) symbols", line)
    n = found.group(1) if found else "?"
    gateways = len(workers) - with_producer
    who = oplog.counted(gateways, "gateway")
    who = f"a producer and {who}" if with_producer else who
    pids = ", ".join(f"{w.name} {w.proc.pid}" for w in workers if w.proc is not None)
    return (
        f"tickwire serving {n} symbols on {url} with {who} over {redact(args.bus)} namespace "
        f"{args.bus_namespace} (pids: {pids}); Ctrl+C to stop"
    )


def _reserve_port(host: str) -> socket.socket:
    family, kind, proto, _, addr = socket.getaddrinfo(
        host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(addr)
    return sock
