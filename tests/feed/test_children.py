"""Children that stop with their parent process, not with the thread that spawned them.

Real processes: a parent interpreter spawns a child through `_children.python_child` from a
thread that then exits (as trio retires its idle worker threads); the child must still answer,
and must stop once the parent is SIGKILLed. Every wait is bounded by a selector timeout.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tickwire.feed.server import children as _children

CHILD = """
import os, signal, sys
signal.signal(signal.SIGUSR1, lambda *_: print("pong", flush=True))
print("child", os.getpid(), flush=True)
while True:
    signal.pause()
"""

PARENT = """
import subprocess, sys, threading
from tickwire.feed.server import children as _children
def spawn():
    argv, options = _children.python_child("lifeline_child")
    subprocess.Popen(argv, stdin=subprocess.DEVNULL, **options)
thread = threading.Thread(target=spawn)
thread.start()
thread.join()
print("thread gone", flush=True)
sys.stdin.read()  # until the test kills us
"""


def _line(proc: subprocess.Popen[str], timeout_s: float = 20) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            raise AssertionError(f"nothing within {timeout_s} s")
    return proc.stdout.readline()


def test_a_child_outlives_the_thread_that_spawned_it_and_not_its_parent(tmp_path: Path) -> None:
    (tmp_path / "lifeline_child.py").write_text(textwrap.dedent(CHILD))
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,  # the child inherits it: EOF here once both are gone
        text=True,
        env=env,
    )
    try:
        lines = sorted(_line(parent) for _ in range(2))
        assert lines[0].startswith("child ") and lines[1] == "thread gone\n", lines
        pid = int(lines[0].split()[1])
        os.kill(pid, signal.SIGUSR1)  # alive after its spawning thread ended
        assert _line(parent) == "pong\n"
        parent.kill()  # SIGKILL: nothing in the parent runs, the kernel closes its lifeline
        parent.wait()
        assert _line(parent) == ""  # EOF: the child is gone too
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        assert parent.stdin is not None and parent.stdout is not None
        parent.stdin.close()
        parent.stdout.close()


def test_pdeathsig_is_refused_off_the_main_thread() -> None:
    """PDEATHSIG follows the spawning thread: a foreign child may only be spawned from the
    main thread, which lives as long as the process."""
    assert callable(_children.die_with_parent())
    errors: list[BaseException] = []

    def off_main() -> None:
        try:
            _children.die_with_parent()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=off_main)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "main thread" in str(errors[0])


def test_the_launcher_runs_the_module_with_its_arguments(tmp_path: Path) -> None:
    (tmp_path / "echo_args.py").write_text("import sys\nprint(sys.argv[1:])\n")
    argv, options = _children.python_child("echo_args", "a", "--b")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, **options)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "['a', '--b']\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_pdeathsig_stops_a_foreign_child_with_its_parent(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys\n"
            "from tickwire.feed.server import children as _children\n"
            "subprocess.Popen(['sleep', '600'], preexec_fn=_children.die_with_parent())\n"
            "print('spawned', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert _line(parent) == "spawned\n"
        parent.kill()
        parent.wait()
        assert _line(parent) == ""  # `sleep` held our stdout too: EOF means it is gone
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        assert parent.stdin is not None and parent.stdout is not None
        parent.stdin.close()
        parent.stdout.close()
