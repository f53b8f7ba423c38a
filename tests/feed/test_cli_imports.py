"""What a one-shot command imports: `tickwire tail` and `tickwire --help` start light.

`tickwire tail AAPL --count 1` pays for every module it imports before it can print a tick; the
order book code, the simulators' model and numpy's ~70 ms used to come with `import
tickwire.feed`. These tests run fresh interpreters and read `sys.modules`, so an import that
comes back at module level fails here, not only in the bench's timings.
"""

from __future__ import annotations

import json
import subprocess
import sys

from _support import serve_process

from tickwire.feed.cli.main import build_parser
from tickwire.feed.client.stream import StreamState

# The order book code a JSON or table tail never needs (a `--book` tail or `book=` does).
_BOOK_MODULES = (
    "tickwire.feed.client.book",
    "tickwire.feed.client.dense",
    "tickwire.feed.protocol.book",
    "tickwire.feed.cli.tail_book",
    "tickwire.simulators.book",
)
# What of the simulators the CLI's flags and errors use: plain Python, no numpy.
_PLAIN_SIMULATORS = {
    "tickwire.simulators",
    "tickwire.simulators.errors",
    "tickwire.simulators.numbers",
}


def _modules(script: str) -> tuple[list[str], list[str]]:
    """Run `script` in a fresh interpreter: its stdout lines before the last, and the modules
    loaded at its end (the last line)."""
    script += "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    *lines, last = out.stdout.splitlines()
    return lines, json.loads(last)


def test_importing_tail_loads_no_numpy_no_books_no_model() -> None:
    _, modules = _modules("import tickwire.feed.cli.main, tickwire.feed.cli.tail")
    for heavy in ("numpy", "textual", "decimal", *_BOOK_MODULES, "tickwire.feed.server.server"):
        assert heavy not in modules, heavy
    simulators = {m for m in modules if m.startswith("tickwire.simulators")}
    assert simulators <= _PLAIN_SIMULATORS, simulators - _PLAIN_SIMULATORS
    assert "trio_websocket" in modules  # the client itself is there: the test sees imports


def test_a_tail_without_books_never_loads_the_book_code() -> None:
    with serve_process() as (_, url):
        lines, modules = _modules(
            "from tickwire.feed.cli.main import main\n"
            f"assert main(['tail', 'AAPL', '--count', '1', '--json', '--url', {url!r}]) == 0\n"
        )
    assert len(lines) == 1 and json.loads(lines[0])["symbol"] == "AAPL"
    loaded = [m for m in (*_BOOK_MODULES, "textual", "tickwire.simulators.market") if m in modules]
    assert not loaded, loaded
    assert "numpy" in modules  # a batch's ticks are numpy records: loaded with the first one


def test_help_imports_no_command_and_says_what_the_commands_register() -> None:
    lines, modules = _modules(
        "from tickwire.feed.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
    )
    assert "\n".join(lines) + "\n" == build_parser().format_help()  # every command's own help
    commands = [m for m in modules if m.startswith("tickwire.feed.cli.")]
    assert commands == ["tickwire.feed.cli.main"], commands
    for heavy in ("numpy", "trio", "textual", "tickwire.dashboard", "tickwire.feed.bench"):
        assert heavy not in modules, heavy


def test_a_feed_makes_its_books_at_the_first_use_with_what_it_learnt() -> None:
    stream = StreamState()
    stream.welcomed({"book_depth": 7})
    stream.learn([{"symbol": "AAPL", "id": 0, "tick_size": 0.01}])
    stream.forget(["AAPL"])
    assert stream.held_books is None and not stream.books_to_fetch()
    books = stream.books  # a book asked for: made now, with the welcome's depth and universe
    assert stream.held_books is books
    assert books.server_depth == 7 and books.names == ["AAPL"]
    stream.welcomed({"book_depth": 9})  # later news reaches the books made
    assert books.server_depth == 9
