"""`tickwire serve`'s bus flags: every wrong combination is one line before anything starts.

No Redis needed: each of these is refused before a connection is tried.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from _support import tickwire_cmd


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--workers", "2"], "start Redis (`redis-server --port 6379`)"),
        (["--role", "gateway"], "--role needs --bus"),
        (["--bus", "http://127.0.0.1:6379"], "--bus must be redis://HOST:PORT/DB or unix:///"),
        (["--bus", "redis://127.0.0.1:1/0"], "--bus needs --role producer or --role gateway"),
        (["--bus", "redis://127.0.0.1:1/0", "--role", "gateway", "--symbols", "9"], "producer"),
        (["--bus", "redis://127.0.0.1:1/0", "--role", "producer", "--workers", "2"], "lone"),
    ],
)
def test_bad_bus_flags_are_one_line(args: list[str], says: str) -> None:
    out = subprocess.run(tickwire_cmd("serve", *args), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert out.stdout == "" and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("tickwire: error: ") and says in out.stderr, out.stderr


def test_plain_serve_never_imports_coredis() -> None:
    code = (
        "import sys; from tickwire.feed.cli.main import build_parser; build_parser(); "
        "import tickwire.feed.server.server, tickwire.feed.cli.bus, tickwire.feed.server.gateway; "
        "assert 'coredis' not in sys.modules, 'coredis imported'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
