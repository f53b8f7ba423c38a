"""A command that needs an optional extra says so in one line before any work.

"Not installed" is simulated for the whole process tree with public mechanisms only: a
`sitecustomize.py` on PYTHONPATH puts a finder first on `sys.meta_path` that refuses the
modules named in BLOCK_IMPORTS, so the supervisor's workers lack them too.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from _support import tickwire_cmd

from tickwire.feed import extras
from tickwire.simulators.errors import UserError

SITECUSTOMIZE = """
import os, sys

BLOCKED = set(os.environ.get("BLOCK_IMPORTS", "").split(","))


class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Blocker())
"""


def run_without(tmp_path: Path, modules: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWIRE_")}
    env |= {"PYTHONPATH": str(tmp_path), "BLOCK_IMPORTS": modules}
    return subprocess.run(tickwire_cmd(*args), env=env, capture_output=True, text=True, timeout=30)


def test_require_names_the_missing_modules_and_the_extra() -> None:
    extras.require("x", "redis", "os", "json")  # present: nothing
    with pytest.raises(UserError) as err:
        extras.require("--thing", "things", "os", "tickwire_no_such_a", "tickwire_no_such_b")
    assert str(err.value) == (
        "--thing needs tickwire_no_such_a and tickwire_no_such_b: pip install 'tickwire[things]'"
    )


def test_bus_with_workers_without_coredis_is_one_line_before_any_worker(tmp_path: Path):
    out = run_without(
        tmp_path, "coredis", "serve", "--bus", "redis://127.0.0.1:1/0", "--workers", "2"
    )
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    assert out.stderr.splitlines() == [  # once: not once per worker and restart
        "tickwire: error: --bus needs coredis: pip install 'tickwire[redis]'; "
        "or serve without --bus"
    ]


def test_record_parquet_without_pyarrow_fails_before_connecting(tmp_path: Path) -> None:
    out = run_without(  # nothing listens on port 1: connecting first would say so instead
        tmp_path, "pyarrow", "record", "--out", str(tmp_path / "t.parquet"), "ws://127.0.0.1:1/v1"
    )
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        f"tickwire: error: --out {tmp_path / 't.parquet'} needs pyarrow: "
        "pip install 'tickwire[parquet]'; or record to .npy or .csv"
    ]
    assert not list(tmp_path.glob("t*.parquet"))


def test_bench_without_its_extra_is_one_line(tmp_path: Path) -> None:
    out = run_without(tmp_path, "picows,websockets", "bench", "--quick")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "tickwire: error: the bench needs picows and websockets: pip install 'tickwire[bench]'"
    ]
