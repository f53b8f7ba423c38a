"""The processes of a bus feed for the bench: a throwaway redis-server, a producer, gateways.

Owns starting and stopping them (each a child of the bench, stopped with it) and the in-process
`tickwire serve` they are compared with. Imports no trio: everything runs in other processes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from tickwire.feed.server.children import die_with_parent

from . import _procs


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
        producer = serve(stack, "--bus", bus, "--role", "producer", *market_args)
        _procs.readline(producer)  # its ready line
        pids, urls = [redis.pid, producer.pid], []
        for _ in range(gateways):
            gw = serve(stack, "--bus", bus, "--role", "gateway", "--port", "0")
            line = _procs.readline(gw)
            if " on ws" not in line:
                raise RuntimeError(f"a gateway did not start: {line!r}")
            urls.append(line.rsplit(" on ", 1)[1].split()[0].rstrip(";"))
            pids.append(gw.pid)
        yield Feed(urls, pids)


def serve(stack: ExitStack, *args: str) -> subprocess.Popen[str]:
    args = _procs.serve_args(args)
    proc = _procs.spawn("tickwire.feed.cli.main", "serve", "--log-level", "warning", *args)
    stack.callback(_procs.stop, proc, 0)
    return proc


def redis_cli(sock: str, *args: str) -> str:
    """One redis-cli command on the bench's own Redis (its plain output; entries hold raw
    records, so bytes are read as Latin-1)."""
    cmd = ["redis-cli", "-s", sock, *args]
    return subprocess.run(cmd, capture_output=True, timeout=10, check=True).stdout.decode("latin-1")
