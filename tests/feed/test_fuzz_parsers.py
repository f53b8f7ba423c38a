"""A bounded atheris run over the parsers that read what a peer sends (slow; issue 9).

The harness is `tests/feed/fuzz_parsers.py`; this runs it for a fixed number of inputs from a
fixed seed (about half a minute), so a crash it finds is reproducible with the same command.
Skips without atheris (`pip install 'tickwire[fuzz]'`).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent / "fuzz_parsers.py"
RUNS = 500_000


@pytest.mark.slow
def test_fuzz_parsers_bounded(tmp_path: Path) -> None:
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed: pip install 'tickwire[fuzz]'")
    cmd = [sys.executable, str(HARNESS), f"-runs={RUNS}", "-seed=1", str(tmp_path / "corpus")]
    proc = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    out = proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} found a crash:\n{out[-4000:]}"
    assert f"Done {RUNS} runs" in out, out[-2000:]
