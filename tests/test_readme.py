"""The README's code example really runs, against a real server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from _support import serve_process

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "connect(" in b and "trio.run" in b)
    with serve_process() as (_, url):
        code = example.replace("ws://127.0.0.1:8765/v1", url)
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) >= 2 and {line.split()[0] for line in lines} <= {"AAPL", "MSFT"}


def test_readme_test_command_is_what_ci_runs():
    readme = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    command = re.search(r"python -m pytest[^`\n]*", readme).group(0)
    assert command in ci
