"""A throwaway redis-server for the bus tests, and the rule that they skip only outside CI.

Without redis-server (or coredis) a bus test skips with the reason; under CI=true it fails
instead, so CI cannot go green without running them. Never use autojump_clock against it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from _support import tickwire_cmd

from tickwire.feed.bench.bus import wait_ping


def require(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why} (CI must run the bus tests)")
        pytest.skip(why, allow_module_level=True)


def require_redis() -> None:
    require(
        shutil.which("redis-server") is not None,
        "redis-server not installed (apt-get install redis-server)",
    )
    try:
        import coredis  # noqa: F401
    except ImportError:
        require(False, "coredis not installed (pip install 'tickwire[redis]')")


class RedisServer:
    """A redis-server with no persistence on a free port and a unix socket; killed at teardown."""

    def __init__(self, where: Path, *, tcp: bool, password: str = "") -> None:
        self.sock = where / "redis.sock"
        self.port = free_port() if tcp else 0
        self.password = password
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0" if tcp else f"unix://{self.sock}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--unixsocket", str(self.sock), "--unixsocketperm", "700"]
        args += ["--save", "", "--appendonly", "no"]
        args += ["--requirepass", self.password] if self.password else []
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ping(str(self.sock), self.proc)
        except RuntimeError:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """One `tickwire serve` process; its first stdout line is its ready line."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        self._err = log.open("w")
        self.p = subprocess.Popen(
            tickwire_cmd("serve", "--log-every", "0", *args),
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
        )
        self.line = ""

    async def ready(self) -> str:
        assert self.p.stdout is not None
        self.line = await trio.to_thread.run_sync(self.p.stdout.readline, abandon_on_cancel=True)
        assert self.line.startswith("tickwire "), (self.line, self.log.read_text())
        return self.line

    def ready_sync(self) -> str:
        return trio.run(self.ready)

    @property
    def url(self) -> str:
        return self.line.split(" on ", 1)[1].split()[0]  # as tests/_support's serve_process

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._err.close()
        return self.p.returncode

    def logs(self) -> str:
        return self.log.read_text()


@dataclass(frozen=True)
class Bus:
    """Real producers and gateways on one redis-server, started through the `procs` fixture
    (named for their logs, tmp_path/NAME.log); await each one's `ready()`."""

    url: str
    start: Callable[..., Proc]

    def producer(self, name: str = "producer", *args: str) -> Proc:
        return self.start(name, "--bus", self.url, "--role", "producer", *args)

    def gateway(self, name: str = "gateway", *args: str) -> Proc:
        return self.start(name, "--bus", self.url, "--role", "gateway", "--port", "0", *args)


@contextmanager
def supervised(log: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`tickwire serve ARGS` (a supervisor: --workers N) with its stderr in `log`: the process
    and its ready line, printed once every worker is ready; killed at the end if still up."""
    with log.open("w") as err:
        sup = subprocess.Popen(
            tickwire_cmd("serve", *args), stdout=subprocess.PIPE, stderr=err, text=True
        )
    try:
        assert sup.stdout is not None
        yield sup, sup.stdout.readline()
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
        assert sup.stdout is not None
        sup.stdout.close()
