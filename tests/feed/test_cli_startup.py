"""A one-shot command starts light: `tickwire tail` loads the client, never the server.

`tickwire tail AAPL --count 1` is what a user types to see the feed work; its cost is the
interpreter, the client library's imports and a few round trips. It used to import every
command's module (the whole server, the metrics, the venues) before parsing, and its close waited
2 s. The bench's row for it runs the real command against a websockets script.
"""

from __future__ import annotations

import json
import subprocess
import sys

from _support import serve_process

from tickwire.feed.bench import tail
from tickwire.feed.cli import main as cli

_SERVER_MODULES = (
    "tickwire.feed.server.server",
    "tickwire.feed.ws.http",
    "tickwire.feed.server.metrics",
)


def test_the_command_table_is_what_the_modules_register():
    full = cli.build_parser()
    listed = [c for commands in cli._SUBCOMMANDS.values() for c in commands]
    assert full.commands is not None and list(full.commands.choices or ()) == listed
    for module, commands in cli._SUBCOMMANDS.items():
        for command in commands:
            alone = cli.build_parser(command)
            assert alone.commands is not None
            assert list(alone.commands.choices or ()) == list(commands), module


def test_tail_never_imports_the_server():
    with serve_process() as (_, url):
        script = (
            "import json, sys\n"
            "from tickwire.feed.cli.main import main\n"
            f"rc = main(['tail', 'AAPL', '--count', '1', '--url', {url!r}])\n"
            "print(json.dumps([rc, sorted(sys.modules)]))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
    assert out.returncode == 0, out.stderr
    tick, last = out.stdout.splitlines()
    assert tick.split()[1] == "AAPL"
    rc, modules = json.loads(last)
    assert rc == 0
    loaded = [m for m in _SERVER_MODULES if m in modules]
    assert not loaded, loaded
    assert "tickwire.simulators.market" not in modules  # the model, too, stays unloaded


def test_bench_row_times_the_real_tail_against_a_websockets_script():
    rows = tail.tail_rows(quick=True, advance=lambda what: None)  # one run of each
    assert [r["status"] for r in rows] == ["ok", "ok"]
    ours, floor = rows
    assert ours["baseline"] == "websockets script" and ours["target"] == "< 1000 ms, <= 1.5x"
    assert 0 < ours["baseline_value"] < ours["value"] < 30_000
    assert floor["value"] == ours["value"] and floor["baseline_value"] > 0
