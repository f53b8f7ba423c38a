"""The bench's other processes: start a server (tickwire or a baseline), read its CPU and RSS.

Servers and load clients run as their own processes so the server measured has a core to itself
as far as a 2-core machine allows; CPU and RSS are read from /proc (Linux), no extra dependency.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tickwire.feed import extras
from tickwire.feed.server import children as _children

_CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 20.0


def serve_args(args: tuple[str, ...]) -> tuple[str, ...]:
    """`tickwire serve` arguments as the bench runs them: a synthetic universe (`--symbols`)
    measures the tick path as it always has, without books unless asked (books have their own
    rows: `book`, `bookfan`, `bookclient`); the default universe runs as users get it, books on."""
    if "--symbols" in args and "--book-depth" not in args:
        return (*args, "--book-depth", "0")
    return args


def spawn(*args: str, stdin: bool = False) -> subprocess.Popen[str]:
    """`python -m ARGS` in this interpreter; stdout is the line protocol with the bench. It
    stops when the bench dies, however it dies (a bench killed midway leaves no server running)."""
    argv, options = _children.python_child(*args)
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
        # Its own process group: a Ctrl+C in the terminal reaches the bench alone, which then
        # stops its children itself (they used to die mid-row with tracebacks of their own).
        process_group=0,
    )


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (/proc/PID/stat utime, stime)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_kib(pid: int) -> int:
    """Resident set size of process `pid` in KiB (/proc/PID/status VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def readline(proc: subprocess.Popen[str], timeout_s: float = START_TIMEOUT_S) -> str:
    """The process's next stdout line, or a RuntimeError with its stderr if it died or hung."""
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            stop(proc, grace_s=0)
            raise RuntimeError(f"{_who(proc)} said nothing in {timeout_s:.0f} s")
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        last = err.strip().splitlines()[-1] if err.strip() else f"exit code {proc.wait()}"
        raise RuntimeError(f"{_who(proc)} exited: {last}")
    return line.strip()


def stop(proc: subprocess.Popen[str], grace_s: float = 3.0) -> None:
    """Close its stdin (a load client's cue to disconnect and exit), wait `grace_s`, then kill.

    Servers get no grace: the bench has its numbers, and a graceful close would wait on the
    stalled client for nothing. Nor does anything while Ctrl+C unwinds the bench. Always
    reaped."""
    if interrupted():
        grace_s = 0
    if proc.stdin is not None and not proc.stdin.closed:
        with suppress(BrokenPipeError):
            proc.stdin.close()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def interrupted() -> bool:
    """True while a Ctrl+C (KeyboardInterrupt) unwinds the bench: stop children at once."""
    return isinstance(sys.exc_info()[1], KeyboardInterrupt)


SERVERS = ("tickwire", "naive", "plain", "peer")


@contextmanager
def server(kind: str, *extra: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run server `kind` (tickwire serve, or a baseline of `_baselines`) and yield (proc, url)."""
    if kind == "tickwire":
        head = ("tickwire.feed.cli.main", "serve", "--port", "0", "--log-level", "warning")
        args = (*head, *serve_args(extra))
        proc = spawn(*args)
        line = readline(proc)
        if " on ws" not in line:
            stop(proc, grace_s=0)
            raise RuntimeError(f"tickwire serve did not start: {line!r}")
        url = line.split(" on ", 1)[1].split()[0]
    else:
        proc = spawn("tickwire.feed.bench._baselines", kind, *extra)
        url = readline(proc)
    try:
        yield proc, url
    finally:
        stop(proc, grace_s=0)


def require_extras() -> None:
    """The load clients and baselines need picows and websockets: the `bench` extra."""
    extras.require("the bench", "bench", "picows", "websockets")


def settle(seconds: float) -> None:
    """Let a process reach steady state before a measurement (a measurement, not a sync)."""
    time.sleep(seconds)


def _who(proc: subprocess.Popen[str]) -> str:
    """The module and subcommand a child was spawned with (after `python -m
    tickwire.feed.server.children FD`), for error messages."""
    args = proc.args
    return " ".join(str(a) for a in args[4:6]) if isinstance(args, (list, tuple)) else str(args)
