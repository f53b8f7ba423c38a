"""The README's command lines typed as a newcomer types them, against one real `tickwire serve`.

Each test is a mistake or a pipe a user makes on the first day: what the command says then is
one line that tells what to do, and nothing the user had is lost.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support import serve_process, tickwire_cmd

DEADLINE_S = 60


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_process("--drain-min-s", "0", "--book-depth", "0") as (_, url):
        yield url


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tickwire_cmd(*args), capture_output=True, text=True, timeout=DEADLINE_S)


def test_record_of_an_unknown_symbol_keeps_the_file_and_says_the_closest(
    url: str, tmp_path: Path
) -> None:
    out = tmp_path / "ticks.csv"
    out.write_text("an earlier recording\n")
    done = _run("record", url, "--out", str(out), "--symbols", "APPL", "--count", "1")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "tickwire: error: unknown symbol 'APPL' (did you mean AAPL?); the server has 53 symbols"
    ]
    assert out.read_text() == "an earlier recording\n"


def test_record_takes_symbols_in_any_case(url: str, tmp_path: Path) -> None:
    out = tmp_path / "ticks.csv"
    done = _run("record", url, "--out", str(out), "--symbols", "aapl", "--count", "5")
    assert done.returncode == 0, done.stderr
    rows = out.read_text().splitlines()[1:]
    assert len(rows) == 5 and all(row.startswith("AAPL,") for row in rows)


@pytest.mark.parametrize("command", ["symbols", "stats"])
def test_a_reader_that_stops_early_ends_the_command_quietly(url: str, command: str) -> None:
    proc = subprocess.Popen(
        tickwire_cmd(command, "--json", "--url", url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # as `| head -1` does once it has its line: every write now fails
    _, err = proc.communicate(timeout=DEADLINE_S)
    assert (proc.returncode, err) == (0, "")


def test_symbols_writes_crypto_ticks_lots_and_prices_with_their_decimals() -> None:
    with serve_process("--universe", "crypto", "--drain-min-s", "0", "--book-depth", "0") as (
        _,
        url,
    ):
        done = _run("symbols", "--url", url)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[2:-1]}
    assert rows["BTC-USD"][-3:] == ["95000.00", "0.01", "0.00001"]
    assert rows["DOGE-USD"][-3:] == ["0.32000", "0.00001", "1"]
    assert "e-0" not in done.stdout


def test_a_server_that_is_not_there_is_named_once() -> None:
    done = _run("symbols", "--url", "ws://127.0.0.1:9/v1")
    assert done.returncode == 2
    assert done.stderr.count("ws://127.0.0.1:9/v1") == 1, done.stderr


@pytest.mark.parametrize("command", ["serve", "tail", "record", "dashboard", "simulate", "demo"])
def test_help_names_what_each_flag_takes(command: str) -> None:
    """`--stall-ms MS`, not `--stall-ms STALL_MS`: a placeholder says what to type."""
    done = _run(command, "--help")
    assert done.returncode == 0
    derived = re.findall(r"--[a-z-]+ [A-Z]+_[A-Z_]+", done.stdout)
    assert not derived, derived


def test_tail_book_on_a_server_without_books_says_how_to_get_them(url: str) -> None:
    done = _run("tail", "--book", "aapl", "--url", url, "--count", "1")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "tickwire: error: this server keeps no order books; start it with --book-depth N"
        " (or tail AAPL without --book)"
    ]


def test_scenario_run_counts_its_events_and_names_a_refused_connection_plainly() -> None:
    with serve_process("--drain-min-s", "0", "--book-depth", "0", "--admin-token", "adm") as (
        _,
        url,
    ):
        http = url.replace("ws://", "http://").removesuffix("/v1")
        done = _run("scenario", "run", "flash-crash", "--url", http, "--token", "adm")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("scenario flash-crash started: 1 event, time 0 in ")
    done = _run("scenario", "run", "halt", "--url", "http://127.0.0.1:9", "--token", "adm")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "tickwire: error: cannot reach http://127.0.0.1:9/admin/scenario: connection refused;"
        " is `tickwire serve` running?"
    ]


@pytest.mark.parametrize("seed", ["-1", "x"])
def test_demo_takes_the_seeds_serve_takes(seed: str) -> None:
    done = _run("demo", "--seed", seed)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"tickwire demo: error: argument --seed: seed must be a whole number from 0 to"
        f" {2**64 - 1}, got {seed!r} (see `tickwire demo --help`)"
    ]


def test_tail_at_a_port_that_is_no_tickwire_server_asks_whether_one_listens(
    tmp_path: Path,
) -> None:
    """Another program's HTTP server answers /v1 with 404, or refuses the upgrade with a page:
    pointing at /v1 cannot be the fix, and a page's first line of HTML says nothing."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        port = other.server_address[1]
        done = _run("tail", "AAPL", "--url", f"ws://127.0.0.1:{port}/v1", "--count", "1")
        posted = _run("tail", "AAPL", "--url", f"ws://127.0.0.1:{port}/", "--count", "1")
    finally:
        other.shutdown()
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"tickwire: error: no tickwire feed at /v1 on 127.0.0.1:{port} (HTTP 404): is a"
        " `tickwire serve` listening on that port?"
    ]
    assert posted.returncode == 2 and "<" not in posted.stderr, posted.stderr


def test_tail_keeps_its_columns_for_crypto_sizes() -> None:
    with serve_process("--universe", "crypto", "--drain-min-s", "0", "--book-depth", "0") as (
        _,
        url,
    ):
        done = _run("tail", "BTC-USD", "ETH-USD", "DOGE-USD", "--url", url, "--count", "60")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 60
    for column in (" x ", " last ", " vol "):
        assert len({line.index(column, 40 if column == " x " else 0) for line in lines}) == 1, (
            column,
            lines[:5],
        )


def test_every_command_that_connects_takes_cafile_as_its_hint_says(tmp_path: Path) -> None:
    """A wss:// server with a private CA: the certificate error tells every command to pass
    --cafile CA.pem, so symbols, stats and record take it as tail and the dashboard do."""
    import trustme

    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    cafile = ("--cafile", str(tmp_path / "ca.pem"))
    tls = ("--certfile", str(pem), "--admin-token", "adm")
    with serve_process("--drain-min-s", "0", "--book-depth", "0", *tls) as (_, url):
        assert url.startswith("wss://")
        https = url.replace("wss://", "https://").removesuffix("/v1")
        refused = _run("scenario", "run", "halt", "--url", https, "--token", "adm")
        assert refused.returncode == 2 and refused.stderr.endswith("pass --cafile CA.pem\n")
        plain = _run("scenario", "run", "halt", "--url", "http" + https[5:], "--token", "adm")
        assert plain.returncode == 2 and "use https://" in plain.stderr, plain.stderr
        untrusted = _run("symbols", "--url", url)
        assert untrusted.returncode == 2 and "pass --cafile CA.pem" in untrusted.stderr
        out = tmp_path / "ticks.csv"
        for argv in (
            ("symbols", "--url", url, *cafile),
            ("stats", "--url", url, "--json", *cafile),
            ("record", url, "--out", str(out), "--count", "3", *cafile),
            ("scenario", "run", "halt", "--url", https, "--token", "adm", *cafile),
        ):
            done = _run(*argv)
            assert done.returncode == 0, (argv, done.stderr)
    assert len(out.read_text().splitlines()) == 4
