"""Every code block of the README runs as written, against the real `tickwire` command.

Each block is claimed by exactly one test below, found by a phrase only it contains;
`test_every_block_is_checked` fails on a block no test claims, so a new example cannot go
untested. The only edits to a block are addresses: the server's `127.0.0.1:8765` becomes the
test server's, `--port 8765` a free port, Redis's 6379 a free port, other hosts' addresses
(10.0.0.x) and `0.0.0.0` this machine's loopback. Servers are stopped with SIGINT and must exit 0,
as the README says. Blocks that are not programs (the TOML file, the tick object, the HAProxy
configuration) are parsed and checked against the code that reads or writes them. Blocks that need
redis-server skip without it, and fail under CI=true.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from _readme_blocks import (
    ROOT,
    Child,
    assert_demo_draws,
    block,
    blocks,
    commands,
    listening,
    local,
    redis_argv,
    redis_ready,
    run_python,
    running,
    tail_lines,
    tickwire,
    url_of,
)
from _redis import free_port, require_redis
from _support import serve_process, tickwire_cmd

from tickwire.feed.cli.main import build_parser
from tickwire.feed.protocol import tick_dicts
from tickwire.simulators import TICK_DTYPE

LANGS = {"sh", "python", "toml", "json", "haproxy", "text"}

# The phrase that picks each block, in README order; each test below claims one.
QUICK_START = "pip install . && tickwire demo"
TEST_RUN = "python -m pytest"
SUBSCRIBE = "from tickwire.feed import Batch, connect"
SERVE_AND_TAIL = "tickwire tail AAPL MSFT"
CONFIG = "# tickwire.toml"
SIMULATE = "tickwire simulate --symbols 30"
SCENARIO_FILE = 'name = "bad-morning"'
SCENARIO_RUN = "--scenario flash-crash"
TICK = '"symbol": "AAPL"'
RAW_BINARY = "tickwire.v1.binary"
RECORD_REPLAY = "tickwire record"
ALPACA = "StockDataStream"
BINANCE = "BinanceSocketManager"
CRYPTOFEED = "from cryptofeed import FeedHandler"
CCXT = "ccxt.binance("
CCXT_PRO = "ccxt.pro.coinbaseexchange("
KRAKEN_BOOK = "/kraken/v2"
ALPACA_BOOKS = "subscribe_orderbooks"
CCXT_BOOK = "ccxt.pro.binance("  # "watch_order_book" is in the Coinbase block too
BUS = "# a producer + 2 gateways"
TWO_MACHINES = "--role producer"
HAPROXY = "backend gateways"
LAYOUT = "feed/cli/       the `tickwire` command"
CLAIMED = (
    QUICK_START,
    TEST_RUN,
    SUBSCRIBE,
    SERVE_AND_TAIL,
    CONFIG,
    SIMULATE,
    SCENARIO_FILE,
    SCENARIO_RUN,
    TICK,
    RAW_BINARY,
    RECORD_REPLAY,
    ALPACA,
    BINANCE,
    CRYPTOFEED,
    CCXT_PRO,
    KRAKEN_BOOK,
    ALPACA_BOOKS,
    CCXT,
    CCXT_BOOK,
    BUS,
    TWO_MACHINES,
    HAPROXY,
    LAYOUT,
)


# -- the inventory -------------------------------------------------------------------------------


def test_every_block_is_checked() -> None:
    found = blocks()
    assert len(found) == len(CLAIMED), [text.splitlines()[0] for _, text in found]
    for lang, text in found:
        assert lang in LANGS, f"a README block without a known language ({lang!r}): {text[:80]}"
        claims = [phrase for phrase in CLAIMED if phrase in text]
        assert len(claims) == 1, f"claimed by {claims}, not by exactly one test: {text[:80]}"


# -- quick start ---------------------------------------------------------------------------------


def quick_start_pieces() -> list[str]:
    pieces = [p.strip() for p in block(QUICK_START).strip().split("&&")]
    assert pieces == [
        "python3 -m venv .venv",
        ". .venv/bin/activate",
        "pip install .",
        "tickwire demo",
    ], pieces
    return pieces


def test_quick_start_pieces_are_valid(tmp_path: Path) -> None:
    """A fresh venv and `pip install .` take minutes (the slow test below runs them): here each
    piece is checked. A venv is created and activates; `.` is an installable project whose
    dependencies carry what `tickwire demo` needs and which installs the `tickwire` command;
    and `tickwire demo` itself draws a live watchlist."""
    quick_start_pieces()
    venv = tmp_path / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    out = subprocess.run(
        ["sh", "-c", f". {venv}/bin/activate && command -v python"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"{venv}/bin/python"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    assert project["project"]["scripts"]["tickwire"] == "tickwire.feed.cli.main:main"
    deps = {re.split(r"[<>=\[ ]", d, maxsplit=1)[0] for d in project["project"]["dependencies"]}
    assert {"numpy", "trio", "trio-websocket", "wsproto", "h11", "textual"} <= deps
    assert_demo_draws(tickwire(["tickwire", "demo"]), tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_start_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    """The quick start's line, as written, in a copy of the repository: minutes of installing."""
    quick_start_pieces()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    for sub in ("feed", "simulators", "dashboard", "pyproject.toml"):  # the work tree as it is
        subprocess.run(["cp", "-r", str(ROOT / sub), str(clone)], check=True)
    setup = block(QUICK_START).strip().removesuffix("&& tickwire demo").strip()
    subprocess.run(["sh", "-c", setup], cwd=clone, check=True, timeout=800)
    assert_demo_draws([str(clone / ".venv" / "bin" / "tickwire"), "demo"], tmp_path)


def test_test_run_is_what_ci_runs() -> None:
    """`pip install '.[test]' && python -m pytest`: the extra exists and CI runs this command."""
    argvs = [shlex.split(p) for p in block(TEST_RUN).strip().split("&&")]
    assert argvs == [["pip", "install", ".[test]"], ["python", "-m", "pytest"]], argvs
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(dep.startswith("pytest>") for dep in extras["test"])
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^python -m pytest$", ci, re.M), "CI runs exactly `python -m pytest`"
    assert "pip install --quiet '.[test]'" in ci


# -- subscribe from your code --------------------------------------------------------------------


def test_subscribe_example_runs(tmp_path: Path) -> None:
    with serve_process() as (_, url):
        out = run_python(block(SUBSCRIBE).replace("ws://127.0.0.1:8765/v1", url), tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) >= 2 and {line.split()[0] for line in lines} <= {"AAPL", "MSFT"}
    for line in lines:  # symbol, bid, ask; bid < ask
        _, bid, ask = line.split()
        assert 0 < float(bid) < float(ask), line


# -- command line --------------------------------------------------------------------------------


def test_serve_and_tail(tmp_path: Path) -> None:
    serve, tail = commands(block(SERVE_AND_TAIL))
    assert serve == ["tickwire", "serve"] and tail[:2] == ["tickwire", "tail"]
    with running(tickwire([*serve, "--port", "0"]), tmp_path, listening) as server:
        url = url_of(server.seen)
        page = url.replace("ws://", "http://").removesuffix("v1")
        with urllib.request.urlopen(page, timeout=10) as reply:  # "its page at http://..."
            assert reply.status == 200 and b"<html" in reply.read().lower()
        got = tail_lines(url, tail[2:], tmp_path, 5)
    assert all(re.search(r"\b(AAPL|MSFT)\b", line) for line in got), got


def test_config_example_is_accepted(tmp_path: Path) -> None:
    text = block(CONFIG)
    settings = tomllib.loads(text)
    config = tmp_path / "tickwire.toml"
    config.write_text(text)
    out = subprocess.run(
        tickwire_cmd("serve", "--config", str(config), "--print-config"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    printed = {line.split(" =")[0].replace("_", "-"): line for line in out.stdout.splitlines()}
    for key in settings:
        assert key in printed and printed[key].endswith(f"# file {config}"), (key, out.stdout)


# -- the simulated market ------------------------------------------------------------------------


def simulate_argv() -> list[str]:
    (argv,) = commands(block(SIMULATE))
    return argv


def test_simulate_example_parses_and_reports_every_fact(tmp_path: Path) -> None:
    """The block's command parses as written, and the same command over half an hour of market
    prints the report (the slow test below runs it as written: about a minute)."""
    argv = simulate_argv()
    assert build_parser().parse_args(argv[1:]).report
    short = list(argv)
    short[short.index("--duration") + 1] = "30m"
    out = subprocess.run(tickwire(short), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert re.search(r"^statistic +value +target +result$", out.stdout, re.M), out.stdout
    assert re.search(r"^\d+ of \d+ statistics pass", out.stdout, re.M), out.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_simulate_example_as_written_meets_every_target() -> None:
    out = subprocess.run(tickwire(simulate_argv()), capture_output=True, text=True, timeout=580)
    assert out.returncode == 0, out.stderr
    assert "19 of 19 statistics pass" in out.stdout, out.stdout


def test_scenario_example_file_plays(tmp_path: Path) -> None:
    """The example file parses; its halt and resume of AAPL come out as status records."""
    from tickwire.simulators import Market, Universe
    from tickwire.simulators.scenario import parse

    universe = Universe.default()
    scenario = parse(block(SCENARIO_FILE), universe, shown="README")
    assert [e.kind for e in scenario.events] == ["flash-crash", "halt", "resume"]
    market = Market(universe, 0, 0, activity=0.05, chunk_s=10.0, scenario=scenario)
    market.step(4300 * 10**9)
    statuses = market.statuses()
    assert statuses["ts"].tolist() == [3600 * 10**9, 4200 * 10**9]  # 1h, 1h10m
    assert (statuses["sym"] == universe.index("AAPL")).all()


def test_scenario_commands_run(tmp_path: Path) -> None:
    """Both commands as written but shorter, the second on the example file."""
    (tmp_path / "bad-morning.toml").write_text(block(SCENARIO_FILE))
    first, second = commands(block(SCENARIO_RUN))
    for argv, duration in ((first, "35m"), (second, "30s")):
        short = list(argv)
        short[short.index("--duration") + 1] = duration
        out = subprocess.run(
            tickwire(short), capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
        assert re.search(r"; scenario [a-z-]+: \d+ symbol halts", out.stdout), out.stdout
    assert re.search(r"^\d+ of \d+ statistics pass", out.stdout, re.M) is None  # no --report
    assert pq.read_table(tmp_path / "day.parquet").num_rows > 0


# -- protocol reference --------------------------------------------------------------------------


def test_tick_object_is_what_the_server_encodes() -> None:
    """The README's tick, turned into a record and encoded by the server's own JSON encoder,
    comes back identical: same fields, same order, same types."""
    tick = json.loads(block(TICK))
    record = np.zeros(1, TICK_DTYPE)
    for field in TICK_DTYPE.names or ():
        if field in tick:
            record[field] = tick[field]
    encoded = tick_dicts(record, np.array([tick["symbol"]], dtype=object))
    assert json.dumps(encoded[0]) == json.dumps(tick)


def test_raw_binary_example_runs(tmp_path: Path) -> None:
    with serve_process() as (_, url):
        out = run_python(block(RAW_BINARY).replace("ws://127.0.0.1:8765/v1", url), tmp_path)
    assert out.returncode == 0, out.stderr
    first, records = out.stdout.splitlines()
    assert first == "welcome"
    syms, bids, asks = re.findall(r"\[([^\]]*)\]", records)
    assert syms.split() and set(syms.split()) == {syms.split()[0]}  # one symbol: AAPL's id
    assert all(0 < float(b) < float(a) for b, a in zip(bids.split(), asks.split(), strict=True))


# -- record and replay ---------------------------------------------------------------------------


def test_record_then_replay(tmp_path: Path) -> None:
    record, replay = commands(block(RECORD_REPLAY))
    with serve_process() as (_, url):
        argv = [url if a == "ws://127.0.0.1:8765/v1" else a for a in record]
        out = subprocess.run(
            tickwire(argv), cwd=tmp_path, capture_output=True, text=True, timeout=90
        )
    assert out.returncode == 0, out.stderr
    assert record[record.index("--duration") + 1] == "10s"
    assert pq.read_metadata(tmp_path / "ticks.parquet").num_rows > 1000  # ~2k ticks a second
    with running(tickwire([*replay, "--port", "0"]), tmp_path, listening) as server:
        assert "replayed (x10)" in server.seen[-1], server.seen
        got = tail_lines(url_of(server.seen), ["AAPL"], tmp_path, 1)  # the snapshot's line
    assert all("AAPL" in line for line in got), got


# -- exchange dialects ---------------------------------------------------------------------------


def test_alpaca_example_prints_quotes_and_trades(tmp_path: Path) -> None:
    pytest.importorskip("alpaca", reason="alpaca-py is not installed (the venues extra)")
    with serve_process() as (_, url):
        code = block(ALPACA).replace("ws://127.0.0.1:8765/", url.removesuffix("v1"))
        stream = Child([sys.executable, "-c", code], tmp_path)  # runs until stopped, as written
        try:
            kinds = lambda seen: {line.split()[0] for line in seen}  # noqa: E731
            seen = stream.until(lambda seen: {"quote", "trade"} <= kinds(seen), 45)
        finally:
            stream.kill()
    err = stream.stderr
    assert "Traceback" not in err and "error" not in err.lower(), err[-3000:]
    for line in seen:
        kind, sym, a, b = line.split()
        assert sym == "AAPL" and float(a) > 0 and float(b) > 0, line
        if kind == "quote":
            assert float(a) < float(b), line


def test_binance_example_prints_a_trade(tmp_path: Path) -> None:
    pytest.importorskip("binance", reason="python-binance is not installed (the venues extra)")
    with serve_process() as (_, url):
        code = block(BINANCE).replace("ws://127.0.0.1:8765/", url.removesuffix("v1"))
        out = run_python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert re.match(r"^\{'e': 'trade', .*'s': 'AAPL'", out.stdout), out.stdout


def test_cryptofeed_example_prints_trades(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("cryptofeed", reason="cryptofeed is not installed (the test extra)")
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    pem, ca_pem = tmp_path / "server.pem", tmp_path / "ca.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_pem))  # the private CA, as the README says
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_pem))
    with serve_process("--certfile", str(pem)) as (_, url):
        host = url.removeprefix("wss://").split("/")[0]
        code = block(CRYPTOFEED).replace("feed.example:8765", host)
        feed = Child([sys.executable, "-c", code], tmp_path)  # runs until stopped, as written
        try:
            seen = feed.until(lambda seen: len(seen) >= 2, 45)
        finally:
            feed.kill()
    assert "Traceback" not in feed.stderr, feed.stderr[-3000:]
    for line in seen:
        symbol, side, amount, price = line.split()
        assert symbol == "AAPL-USD" and side in ("buy", "sell"), line
        assert float(amount) > 0 and float(price) > 0, line


BOOK_SERVER = ("--universe", "crypto", "--book-depth", "20")  # as the README says


def test_ccxt_pro_coinbase_example_watches_the_book(tmp_path: Path) -> None:
    pytest.importorskip("ccxt", reason="ccxt is not installed (the test extra)")
    with serve_process(*BOOK_SERVER) as (_, url):
        base = url.removesuffix("v1")
        code = block(CCXT_PRO).replace("ws://127.0.0.1:8765/", base)
        code = code.replace("http://127.0.0.1:8765/", base.replace("ws://", "http://", 1))
        out = run_python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3, out.stdout
    for line in lines:
        bid, ask = map(float, line.split())
        assert 0 < bid < ask, line


def test_kraken_book_example_prints_a_snapshot_then_updates(tmp_path: Path) -> None:
    pytest.importorskip("websockets")
    with serve_process(*BOOK_SERVER) as (_, url):
        code = block(KRAKEN_BOOK).replace("ws://127.0.0.1:8765/", url.removesuffix("v1"))
        out = run_python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = [line.split() for line in out.stdout.splitlines()]
    assert [kind for kind, _, _ in lines] == ["snapshot", "update", "update"], out.stdout
    assert all(symbol == "BTC/USD" and int(crc) >= 0 for _, symbol, crc in lines), out.stdout


def test_alpaca_crypto_orderbooks_example_prints_books(tmp_path: Path) -> None:
    pytest.importorskip("alpaca", reason="alpaca-py is not installed (the venues extra)")
    with serve_process(*BOOK_SERVER) as (_, url):
        code = block(ALPACA_BOOKS).replace("ws://127.0.0.1:8765/", url.removesuffix("v1"))
        stream = Child([sys.executable, "-c", code], tmp_path)  # runs until stopped, as written
        try:
            seen = stream.until(lambda seen: len(seen) >= 3, 45)
        finally:
            stream.kill()
    assert "Traceback" not in stream.stderr, stream.stderr[-3000:]
    first = seen[0].split()
    assert first[:3] == ["book", "BTC/USD", "True"] and int(first[3]) > 0 < int(first[4]), seen
    assert all(line.split()[2] == "False" for line in seen[1:3]), seen


def test_ccxt_example_reads_ticker_and_klines(tmp_path: Path) -> None:
    pytest.importorskip("ccxt", reason="ccxt is not installed (the test extra)")
    with serve_process() as (_, url):
        base = url.replace("ws://", "http://", 1).removesuffix("v1")
        code = block(CCXT).replace("http://127.0.0.1:8765/", base)
        out = run_python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    last, klines = out.stdout.splitlines()
    assert float(last) > 0, out.stdout
    assert klines.startswith("[[") and "," in klines, out.stdout


def test_ccxt_pro_order_book_example_follows_the_book(tmp_path: Path) -> None:
    pytest.importorskip("ccxt.pro", reason="ccxt is not installed (the test extra)")
    with serve_process("--universe", "crypto", "--book-depth", "20") as (_, url):
        ws = url.removesuffix("v1")
        code = block(CCXT_BOOK).replace("ws://127.0.0.1:8765/", ws)
        code = code.replace("http://127.0.0.1:8765/", ws.replace("ws://", "http://", 1))
        out = run_python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3, out.stdout
    nonces = [int(line.split()[0]) for line in lines]
    assert nonces == sorted(set(nonces)), out.stdout  # a new update each time
    for line in lines:
        bid, ask = re.findall(r"\[([0-9.]+), [0-9.]+\]", line)
        assert float(bid) < float(ask), line


# -- scaling -------------------------------------------------------------------------------------


def test_bus_example_serves_a_producer_and_two_gateways(tmp_path: Path) -> None:
    require_redis()
    redis, serve = commands(block(BUS))
    rport, port = free_port(), free_port()
    with running(redis_argv(redis, rport), tmp_path, redis_ready):
        argv = tickwire(local([*serve, "--port", str(port)], rport, port))
        with running(argv, tmp_path, listening) as server:
            assert "with a producer and 2 gateways" in server.seen[-1], server.seen
            got = tail_lines(url_of(server.seen), ["AAPL"], tmp_path, 2)
    assert all("AAPL" in line for line in got), got


def test_two_machines_example_and_its_balancer_config(tmp_path: Path) -> None:
    """The three hosts' lines, on this machine: Redis, a producer, two gateways; the HAProxy
    configuration's port and health check are the gateways' (`haproxy -c` if installed)."""
    require_redis()
    redis, producer, gateway = commands(block(TWO_MACHINES))
    assert "--role" in producer and "--role" in gateway
    config = block(HAPROXY)
    haproxy_port = int(re.search(r"^\s*bind :(\d+)$", config, re.M)[1])  # type: ignore[index]
    assert gateway[gateway.index("--port") + 1] == str(haproxy_port)
    servers = re.findall(r"^\s*server \w+ ([0-9.]+):(\d+) check", config, re.M)
    assert len(servers) == 2 and {p for _, p in servers} == {str(haproxy_port)}
    check = re.search(r"^\s*option httpchk GET (\S+)$", config, re.M)
    expect = re.search(r"^\s*http-check expect status (\d+)$", config, re.M)
    assert check and expect
    if (haproxy := shutil.which("haproxy")) is not None:
        path = tmp_path / "haproxy.cfg"
        path.write_text(config)
        ok = subprocess.run([haproxy, "-c", "-f", str(path)], capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
    rport, port = free_port(), free_port()
    with running(redis_argv(redis, rport), tmp_path, redis_ready):
        producing = lambda seen: any("producer publishing" in line for line in seen)  # noqa: E731
        with running(tickwire(local(producer, rport, port)), tmp_path, producing):
            argv = tickwire(local(gateway, rport, port))
            with running(argv, tmp_path, listening) as server:
                health = f"http://127.0.0.1:{port}{check[1]}"
                with urllib.request.urlopen(health, timeout=10) as reply:
                    assert reply.status == int(expect[1]), reply.status
                got = tail_lines(url_of(server.seen), ["AAPL"], tmp_path, 1)
    assert "AAPL" in got[0]


# -- design --------------------------------------------------------------------------------------


def test_the_layout_drawing_names_every_folder_and_shared_module_of_the_feed() -> None:
    """The Design section's drawing of `feed/` is the folder itself: each subpackage once, in
    the order of the layers contract (highest first), and every top-level module."""
    drawing = block(LAYOUT)
    drawn = re.findall(r"feed/(\w+)/", drawing)
    feed = ROOT / "feed"
    folders = {p.name for p in feed.iterdir() if (p / "__init__.py").exists()} - {"web"}
    assert sorted(drawn) == sorted(folders), (drawn, folders)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    order = [name.strip() for layer in layers for name in layer.split("|")]
    assert [d for d in drawn if d in order] == order
    modules = {p.name for p in feed.glob("*.py")} - {"__init__.py"}
    shared = drawing[drawing.index("feed/record.py") :]
    named = set(re.findall(r"(\w+\.py)", shared))
    assert named == modules, (named, modules)
