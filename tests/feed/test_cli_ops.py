"""`tickwire symbols` and `tickwire stats`, the real command against a real `tickwire serve`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from _support import serve_process, tickwire_cmd


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tickwire_cmd(*args), capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_process("--token", "s3cret") as (_, url):
        yield url


def test_symbols_table(url: str) -> None:
    out = run("symbols", "--url", url, "--token", "s3cret")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["symbol", "id", "name", "sector", "kind", "price", "tick", "lot"]
    aapl = next(line for line in lines if line.startswith("AAPL "))
    assert "Apple" in aapl and "Technology" in aapl and "189.50" in aapl
    assert lines[-1] == "53 symbols (all prices simulated)"


def test_symbols_json(url: str) -> None:
    out = run("symbols", "--url", url, "--token", "s3cret", "--json")
    symbols = json.loads(out.stdout)
    assert len(symbols) == 53
    assert symbols[0]["symbol"] == "AAPL" and symbols[0]["id"] == 0
    assert all(s["simulated"] is True for s in symbols)


def test_stats_table_and_json(url: str) -> None:
    out = run("stats", "--url", url, "--token", "s3cret")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("server\n")
    assert "this connection" in out.stdout
    assert any(line.split()[:1] == ["ticks_published"] for line in out.stdout.splitlines())
    stats = json.loads(run("stats", "--url", url, "--token", "s3cret", "--json").stdout)
    assert stats["server"]["clients"] == 1  # this command's own connection
    assert stats["server"]["ticks_published"] > 0
    assert stats["subscriptions"] == [] and stats["encoding"] == "tickwire.v1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--token", "wrong"), "refused the token"),
        ((), "refused the token (none given: try --token)"),
    ],
)
def test_refused_token_is_one_line(url: str, args: tuple[str, ...], message: str) -> None:
    for command in ("symbols", "stats"):
        out = run(command, "--url", url, *args)
        assert out.returncode == 2
        assert out.stderr.strip() == f"tickwire: error: {url} {message}"
        assert out.stdout == ""


def test_server_down_is_one_line() -> None:
    out = run("stats", "--url", "ws://127.0.0.1:9/v1")
    assert out.returncode == 2
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("tickwire: error: cannot connect to ws://127.0.0.1:9/v1: ")
    assert line.count("ws://127.0.0.1:9/v1") == 1 and "Traceback" not in line
