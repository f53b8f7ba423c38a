"""Child processes that do not outlive their parent (the supervisor's workers, the bench's servers
and clients): a parent that is killed, even with SIGKILL, leaves no orphan holding a port or a CPU.

Our own Python children hold a lifeline: the read end of a pipe whose write end only the parent
process holds (it is never inherited, and never written). The kernel closes it when the parent
process exits, however it exits, so a thread in the child that reads the pipe sees EOF exactly
then and sends its own process SIGTERM (each command's usual stop: a server drains). The child
runs through this module (`python -m tickwire.feed.server.children FD MODULE ARGS...`), so
every entry point gets the lifeline without knowing about it.

Why not prctl(PR_SET_PDEATHSIG) for these: Linux fires it when the *thread* that forked the child
exits, not the process, and trio's `open_process` forks from a worker thread that trio retires
after 10 idle seconds; every supervised worker was drained and restarted ~15 s after its start.
A pipe is tied to the process, works on any POSIX system, and has no start-up race (a parent gone
before the child looks is already an EOF). Programs that are not ours (redis-server) cannot watch
a pipe: `die_with_parent` keeps PDEATHSIG for those, and insists on the main thread.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1
_lifeline_w: int | None = None  # the write end, held (never written) for this process's life
_lifeline_r: int | None = None
_lifeline_lock = threading.Lock()  # children may be spawned from several threads


def python_child(module: str, *args: str) -> tuple[list[str], dict[str, Any]]:
    """The argv and the Popen/`open_process` options that run `python -m MODULE ARGS` in this
    interpreter as a child that stops (SIGTERM) when this process dies, whichever thread
    spawns it."""
    global _lifeline_r, _lifeline_w
    with _lifeline_lock:
        if _lifeline_r is None:
            _lifeline_r, _lifeline_w = os.pipe()  # both non-inheritable (PEP 446)
    argv = [sys.executable, "-m", __name__, str(_lifeline_r), module, *args]
    return argv, {"pass_fds": (_lifeline_r,)}


def watch_parent(fd: int, on_death: Callable[[], None] | None = None) -> threading.Thread:
    """In the child: a daemon thread that calls `on_death` (default: SIGTERM to this process)
    once `fd`, the lifeline, reaches EOF."""

    def watch() -> None:
        try:
            while os.read(fd, 1):  # the parent never writes: this returns b"" at its death
                pass
        except OSError:
            pass
        (on_death or _terminate_self)()

    thread = threading.Thread(target=watch, name="tickwire-lifeline", daemon=True)
    thread.start()
    return thread


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def die_with_parent() -> Callable[[], None]:
    """For a child that is not ours (it cannot watch a lifeline): a `preexec_fn` that asks Linux
    to SIGTERM it when this process's *main thread* dies. PDEATHSIG follows the forking thread,
    so this may only spawn from the main thread (a RuntimeError otherwise); elsewhere than
    Linux, nothing."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("die_with_parent: spawn from the main thread (PDEATHSIG follows it)")
    parent = os.getpid()

    def preexec() -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the parent died before prctl: no signal would come
                os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def main(argv: Sequence[str]) -> None:
    """`python -m tickwire.feed.server.children FD MODULE ARGS...`: watch lifeline FD, run it."""
    fd, module, *rest = argv
    watch_parent(int(fd))
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
