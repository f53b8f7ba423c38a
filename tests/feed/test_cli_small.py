"""Small CLI contracts: the start-up hint names the universe's own symbols, symbol lists take
spaces or commas on every command, internal flags stay out of --print-config."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from _support import serve_process, tickwire_cmd

from tickwire.feed.cli import main as cli
from tickwire.feed.cli.serve import hint_symbols


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tickwire_cmd(*args), capture_output=True, text=True, timeout=60)


def test_the_start_up_hint_names_symbols_the_server_has() -> None:
    proc = subprocess.Popen(
        tickwire_cmd("serve", "--port", "0", "--symbols", "5"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        hint = line.split("(try: ", 1)[1].split(";", 1)[0]
        words = hint.split()
        assert words[:2] == ["tickwire", "tail"] and words[4] == "--url"
        tail = _run(*words[1:], "--count", "2")  # the hint, as printed, works
        assert tail.returncode == 0, tail.stderr
        assert {row.split()[1] for row in tail.stdout.splitlines()} <= set(words[2:4])
        assert "AAPL" not in line  # a synthetic universe has no AAPL
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_hint_symbols_prefers_the_familiar_pair() -> None:
    assert hint_symbols(["SPY", "AAPL", "MSFT"]) == ["AAPL", "MSFT"]
    assert hint_symbols(["BTCUSDT", "ETHUSDT", "SOLUSDT"]) == ["BTCUSDT", "ETHUSDT"]
    assert hint_symbols(["ONLY"]) == ["ONLY"]


def test_symbol_lists_take_commas_or_spaces(tmp_path: Path) -> None:
    out = tmp_path / "two.csv"
    with serve_process() as (_, url):
        commas = _run("tail", "AAPL,msft", "--count", "6", "--url", url)
        mixed = _run("tail", "AAPL, MSFT", "SPY", "--count", "6", "--url", url)
        spaces = _run("record", url, "--out", str(out), "--symbols", "AAPL MSFT", "--count", "50")
    assert commas.returncode == 0, commas.stderr
    assert {row.split()[1] for row in commas.stdout.splitlines()} == {"AAPL", "MSFT"}
    assert mixed.returncode == 0, mixed.stderr
    assert {row.split()[1] for row in mixed.stdout.splitlines()} == {"AAPL", "MSFT", "SPY"}
    assert spaces.returncode == 0, spaces.stderr
    rows = out.read_text().splitlines()[1:]
    assert len(rows) == 50 and {r.split(",", 1)[0] for r in rows} <= {"AAPL", "MSFT"}


def test_print_config_hides_internal_flags(capsys: pytest.CaptureFixture[str]) -> None:
    printed = _run("serve", "--print-config")
    assert printed.returncode == 0, printed.stderr
    keys = [line.lstrip("# ").split(" =", 1)[0] for line in printed.stdout.splitlines()]
    assert "workers" in keys and "worker" not in keys
    with pytest.raises(SystemExit):
        cli.main(["serve", "--print-config", "--wrker"])
    assert "did you mean --workers?" in capsys.readouterr().err
