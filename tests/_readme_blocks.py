"""Running the README's code blocks: finding them, and their commands as real processes.

`block(phrase)` is the one fenced block of README.md containing `phrase`; `commands` splits a
shell block as sh would; `Child` runs a command with its output read by threads (so a test waits
for a line with a deadline and a full pipe never blocks the child); `running` holds a server of a
block until the test is done, then stops it with Ctrl+C and requires exit 0. Used by
tests/test_readme.py only.
"""

from __future__ import annotations

import os
import pty
import queue
import re
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from _support import tickwire_cmd

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.M | re.S)


def blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block of the README, in order."""
    return [(m[1].strip(), m[2]) for m in FENCE.finditer(README.read_text())]


def block(phrase: str) -> str:
    """The one block that contains `phrase`."""
    found = [text for _, text in blocks() if phrase in text]
    assert len(found) == 1, f"{len(found)} README blocks contain {phrase!r}"
    return found[0]


def commands(text: str) -> list[list[str]]:
    """A shell block's command lines, split as sh would (comments dropped)."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            out.append(argv)
    return out


def tickwire(argv: list[str]) -> list[str]:
    """A README `tickwire ...` line as the real console script of this environment."""
    assert argv[0] == "tickwire", argv
    return tickwire_cmd(*argv[1:])


def child_env(tmp: Path) -> dict[str, str]:
    """Unbuffered output (so lines arrive as printed) and a home of its own (no saved state)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", HOME=str(tmp))
    env.update(XDG_CONFIG_HOME=str(tmp / ".config"), XDG_DATA_HOME=str(tmp / ".local"))
    return env


class Child:
    """A command of a block, its stdout read line by line by a thread (so a test can wait for a
    line with a deadline) and its stderr collected by another (so a full pipe never blocks it)."""

    def __init__(self, argv: list[str], tmp: Path) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            cwd=tmp,
            env=child_env(tmp),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, killed whole if it misbehaves
        )
        self.seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._err: list[str] = []
        self._threads = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self._err.extend(self.proc.stderr)

    @property
    def stderr(self) -> str:
        return "".join(self._err)

    def until(self, done: Callable[[list[str]], bool], timeout: float) -> list[str]:
        """Lines so far, once `done(lines)` holds; fails at the deadline or at end of output."""
        deadline = time.monotonic() + timeout
        while not done(self.seen):
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(self.why("no such output in time")) from None
            if line is None:
                raise AssertionError(self.why(f"exited ({self.proc.wait()})"))
            self.seen.append(line)
        return self.seen

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        """Send `sig` and wait for the exit (20 s at most); its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=20)
        finally:
            self.kill()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for t in self._threads:
            t.join(timeout=10)

    def why(self, what: str) -> str:
        out, err = self.seen[-20:], self.stderr[-2000:]
        return f"{shlex.join(self.argv)}: {what}; stdout {out}; stderr {err}"


@contextmanager
def running(
    argv: list[str], tmp: Path, ready: Callable[[list[str]], bool], timeout: float = 60
) -> Iterator[Child]:
    """A long-running command of a block, until `ready(lines)`; Ctrl+C at the end: exit 0."""
    child = Child(argv, tmp)
    try:
        child.until(ready, timeout)
        yield child
        assert child.proc.poll() is None, child.why("exited early")
        code = child.stop()
        assert code == 0, child.why(f"Ctrl+C: exit {code}")
    finally:
        child.kill()


def listening(lines: list[str]) -> bool:
    return any(" on ws://" in line for line in lines)


def url_of(lines: list[str]) -> str:
    """The feed URL from a server's start line (`... on ws://HOST:PORT/v1 ...`)."""
    line = next(line for line in lines if " on ws://" in line)
    return line.split(" on ", 1)[1].split()[0]


def redis_ready(lines: list[str]) -> bool:
    return any("Ready to accept connections" in line for line in lines)


def run_python(code: str, tmp: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp,
        env=child_env(tmp),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tail_lines(url: str, symbols: list[str], tmp: Path, count: int) -> list[str]:
    """`tickwire tail SYMBOLS --url URL`, its first `count` lines, then Ctrl+C (exit 0)."""
    with running(tickwire(["tickwire", "tail", *symbols, "--url", url]), tmp, bool) as tail:
        got = tail.until(lambda seen: len(seen) >= count, 30)
    return got[:count]


def assert_demo_draws(argv: list[str], tmp: Path) -> None:
    """Run the dashboard in a terminal of its own until it shows live symbols, then end it."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal's side
        env = child_env(tmp)
        env.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
        os.execve(argv[0], argv, env)
    screen = b""
    deadline = time.monotonic() + 60
    try:
        while not all(s in screen for s in (b"AAPL", b"MSFT")):
            assert time.monotonic() < deadline, f"no live watchlist: {screen[-2000:]!r}"
            if select.select([fd], [], [], 1)[0]:
                try:
                    screen += os.read(fd, 65536)
                except OSError:  # the terminal closed: the demo exited
                    raise AssertionError(f"the demo exited: {screen[-2000:]!r}") from None
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def redis_argv(argv: list[str], port: int) -> list[str]:
    """A README redis-server line on a free port, on loopback instead of another host."""
    assert argv[0] == "redis-server", argv
    out = [str(port) if a == "6379" else a for a in argv]
    return [a if not a.startswith("10.0.0.") else "127.0.0.1" for a in out]


def local(argv: list[str], redis_port: int, port: int) -> list[str]:
    """A README `tickwire serve` line with this test's Redis and port, on loopback."""
    out = []
    for a in argv:
        a = re.sub(r"redis://[0-9.]+:6379/", f"redis://127.0.0.1:{redis_port}/", a)
        out.append({"8765": str(port), "0.0.0.0": "127.0.0.1"}.get(a, a))
    return out
