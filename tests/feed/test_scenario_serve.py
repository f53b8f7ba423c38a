"""`tickwire serve --scenario`: the real server plays a scenario, deterministically, on loopback.

Virtual time (trio's MockClock): the server's event time is its start plus trio's clock, so a
halt at 0.2 s for 0.5 s costs no wall-clock second, and two runs see the same market."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trio
from trio.testing import MockClock
from trio_websocket import open_websocket_url

from tickwire.feed import Batch, TradingStatus, connect
from tickwire.feed.cli import config as _config
from tickwire.feed.cli.main import build_parser, main
from tickwire.feed.cli.serve import server_config
from tickwire.feed.cli.serve_settings import SERVE
from tickwire.feed.protocol import SUBPROTOCOL_JSON
from tickwire.feed.server.server import Server, ServerConfig

START_NS = 1_767_625_200_000_000_000  # 2026-01-05 15:00 UTC
HALT = """
[[event]]
kind = "halt"
at = "0.2s"
duration = "0.5s"
symbol = "AAPL"
"""


def serve_config(*argv: str) -> ServerConfig:
    """The server's config as `tickwire serve ARGV` builds it."""
    args = build_parser("serve").parse_args(["serve", "--port", "0", "--heartbeat-ms", "0", *argv])
    _config.resolve(SERVE, args)
    return server_config(args)


@pytest.fixture
def halt_file(tmp_path: Path) -> Path:
    path = tmp_path / "aapl-halt.toml"
    path.write_text(HALT, encoding="utf-8")
    return path


def _argv(halt_file: Path) -> list[str]:
    return ["--scenario", str(halt_file), "--seed", "7", "--cadence", "20"]


@pytest.fixture
def autojump(mock_clock: MockClock) -> MockClock:
    """Virtual time that jumps ahead whenever every task waits: a second costs no second."""
    mock_clock.autojump_threshold = 0.005
    return mock_clock


@pytest.fixture
def halt_config(halt_file: Path) -> ServerConfig:
    """`tickwire serve --scenario aapl-halt.toml --seed 7 --cadence 20`."""
    return serve_config(*_argv(halt_file))


@pytest.fixture
async def halt_server(
    nursery: trio.Nursery, autojump: MockClock, halt_config: ServerConfig
) -> Server:
    """The server playing the halt, running in virtual time from START_NS."""
    server = Server(halt_config, start_ns=START_NS)
    await nursery.start(server.run)
    return server


async def events(
    config: ServerConfig,
    symbols: list[str],
    until_s: float,
    encoding: str = "json",
    throttle_ms: int | None = None,
) -> list[Batch | TradingStatus]:
    """Every event (batches and statuses) a client of `symbols` gets until event time
    `until_s`, from a server of `config` started for it."""
    out: list[Batch | TradingStatus] = []
    async with trio.open_nursery() as nursery:
        server = Server(config, start_ns=START_NS)
        await nursery.start(server.run)
        async with connect(server.url, encoding=encoding) as feed:
            if throttle_ms is not None:
                await feed.throttle(throttle_ms)
            await feed.subscribe(symbols, snapshot=False)
            async for ev in feed:
                if isinstance(ev, Batch | TradingStatus):
                    out.append(ev)
                if isinstance(ev, Batch) and ev.ticks["ts"][-1] >= START_NS + until_s * 1e9:
                    break
        nursery.cancel_scope.cancel()
    return out


async def records(config: ServerConfig, until_s: float) -> np.ndarray:
    """Every record a client subscribed to AAPL and MSFT gets until event time `until_s`."""
    got = await events(config, ["AAPL", "MSFT"], until_s, "binary")
    return np.concatenate([e.ticks for e in got if isinstance(e, Batch)])


async def test_same_seed_and_file_same_records(
    autojump: MockClock, halt_file: Path, halt_config: ServerConfig
) -> None:
    assert halt_config.scenario is not None and halt_config.scenario.count("halt") == 1
    # 1.5 s of event time: the halt, the resumption and over a hundred records to compare
    with trio.fail_after(60):
        first = await records(halt_config, 1.5)
        second = await records(serve_config(*_argv(halt_file)), 1.5)  # parsed again
        plain = await records(serve_config("--seed", "7", "--cadence", "20"), 1.5)
    # The client may subscribe a step later in one run: compare the span both saw.
    lo = max(first["ts"][0], second["ts"][0])
    hi = min(first["ts"][-1], second["ts"][-1])
    assert hi - lo > 0.7e9, "both runs cover the halt"
    a = first[(first["ts"] >= lo) & (first["ts"] <= hi)]
    b = second[(second["ts"] >= lo) & (second["ts"] <= hi)]
    assert len(a) > 100 and a.tobytes() == b.tobytes()
    # The halt: no AAPL record from 0.2 s until it resumes at 0.7 s; MSFT trades on.
    aapl = a[a["sym"] == 0]
    halted = (aapl["ts"] >= START_NS + 0.2e9) & (aapl["ts"] < START_NS + 0.7e9)
    assert not halted.any(), "AAPL records during its halt"
    assert (aapl["ts"] >= START_NS + 0.7e9).any() and (aapl["ts"] < START_NS + 0.2e9).any()
    msft = a[a["sym"] == 1]
    assert ((msft["ts"] >= START_NS + 0.2e9) & (msft["ts"] < START_NS + 0.7e9)).any()
    # Without the scenario AAPL trades through that span: the file is what halted it.
    p = plain[plain["sym"] == 0]
    assert ((p["ts"] >= START_NS + 0.2e9) & (p["ts"] < START_NS + 0.7e9)).any()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[event]]\nkind = "halt"\nat = "1s"\nsymbol = "NOPE"\n', "event 1 (halt): symbol"),
        ('[[event]]\nkind = "crash"\nat = "1s"\n', "event 1: unknown kind 'crash'"),
        ('[[event]]\nkind = "jump"\nat = "1s"\n', "event 1 (jump): move is required"),
    ],
)
def test_a_bad_scenario_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["serve", "--port", "0", "--scenario", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and expected in err, err
    assert "Traceback" not in err


def test_scenario_with_replay_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--scenario", "flash-crash", "--replay", "ticks.parquet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--scenario" in err and "--replay" in err, err


def test_a_shipped_scenario_by_name() -> None:
    config = serve_config("--scenario", "flash-crash")
    assert config.scenario is not None and config.scenario.count("flash-crash") == 1


@pytest.mark.parametrize("encoding", ["json", "binary"])
async def test_halt_and_resume_are_status_events_in_order(
    autojump: MockClock, halt_config: ServerConfig, encoding: str
) -> None:
    with trio.fail_after(60):
        got = await events(halt_config, ["AAPL", "MSFT"], 1.0, encoding)
    statuses = [e for e in got if isinstance(e, TradingStatus)]
    assert [(s.symbol, s.status, s.reason) for s in statuses] == [
        ("AAPL", "halted", "scenario"),
        ("AAPL", "trading", "scenario"),
    ]
    halt, resume = statuses
    assert halt.ts == START_NS + 200_000_000 and resume.ts == START_NS + 700_000_000
    # In order with the records: AAPL's before the halt are older than it, none between the
    # two, and the ones after the resumption are at or after it; MSFT trades throughout.
    i, j = got.index(halt), got.index(resume)
    aapl = [b.ticks["ts"][b.ticks["sym"] == 0] for b in got if isinstance(b, Batch)]  # per batch
    where = [k for k, e in enumerate(got) if isinstance(e, Batch)]
    before = np.concatenate([t for k, t in zip(where, aapl, strict=True) if k < i])
    during = np.concatenate([t for k, t in zip(where, aapl, strict=True) if i < k < j])
    after = np.concatenate([t for k, t in zip(where, aapl, strict=True) if k > j])
    assert len(before) and before.max() < halt.ts
    assert len(during) == 0, "AAPL records between its halt and its resumption"
    assert len(after) and after.min() >= resume.ts
    msft = [b for k, b in enumerate(got) if isinstance(b, Batch) and i < k < j]
    assert any((b.ticks["sym"] == 1).any() for b in msft)


async def test_a_client_without_the_symbol_gets_no_status(
    autojump: MockClock, halt_config: ServerConfig
) -> None:
    with trio.fail_after(60):
        got = await events(halt_config, ["MSFT"], 1.0)
    assert not [e for e in got if isinstance(e, TradingStatus)]
    assert sum(len(e) for e in got) > 10


async def test_snapshot_and_symbols_say_who_is_halted(halt_server: Server) -> None:
    server = halt_server
    with trio.fail_after(60):
        await trio.sleep(0.4)  # AAPL halted since 0.2 s
        async with open_websocket_url(server.url, subprotocols=[SUBPROTOCOL_JSON]) as ws:
            assert json.loads(await ws.get_message())["type"] == "welcome"
            await ws.send_message('{"op":"symbols","id":1}')
            reply = json.loads(await ws.get_message())
            assert reply["type"] == "symbols" and reply["halted"] == ["AAPL"]
            await ws.send_message('{"op":"subscribe","id":2,"symbols":["AAPL","MSFT"]}')
            types = []
            while len(types) < 3:
                msg = json.loads(await ws.get_message())
                if msg["type"] != "heartbeat":
                    types.append(msg)
            ack, snapshot, status = types
            assert ack["type"] == "ack" and snapshot["type"] == "snapshot"
            assert status == {
                "type": "status",
                "symbol": "AAPL",
                "status": "halted",
                "reason": "scenario",
                "ts": START_NS + 200_000_000,
            }
            # Then the resumption, once, and AAPL's records after it.
            while True:
                msg = json.loads(await ws.get_message())
                if msg["type"] == "status":
                    assert (msg["symbol"], msg["status"]) == ("AAPL", "trading")
                    break
                if msg["type"] == "ticks":
                    assert all(t["symbol"] == "MSFT" for t in msg["ticks"])
            await ws.send_message('{"op":"symbols","id":3}')
            while (msg := json.loads(await ws.get_message()))["type"] != "symbols":
                pass
            assert msg["halted"] == []


async def test_no_scenario_no_halted_key(server: Server) -> None:
    with trio.fail_after(20):
        async with open_websocket_url(server.url, subprotocols=[SUBPROTOCOL_JSON]) as ws:
            await ws.get_message()
            await ws.send_message('{"op":"symbols","id":1}')
            assert "halted" not in json.loads(await ws.get_message())


@pytest.mark.parametrize("symbols", [["AAPL"], ["*"]])
async def test_a_halted_symbols_client_hears_of_it_without_records(
    autojump: MockClock, halt_config: ServerConfig, symbols: list[str]
) -> None:
    # AAPL makes no record while halted: the status wakes its connections by itself.
    with trio.fail_after(60):
        got = await events(halt_config, symbols, 1.0, "binary")
    statuses = [(e.symbol, e.status) for e in got if isinstance(e, TradingStatus)]
    assert statuses == [("AAPL", "halted"), ("AAPL", "trading")]


async def test_alpaca_statuses_carry_the_halt(halt_server: Server) -> None:
    url = halt_server.url.removesuffix("/v1") + "/alpaca/v2/iex"
    got: list[dict] = []  # type: ignore[type-arg]
    with trio.fail_after(60):
        async with open_websocket_url(url) as ws:
            await ws.get_message()  # connected
            await ws.send_message('{"action":"auth","key":"k","secret":"s"}')
            await ws.get_message()  # authenticated
            await ws.send_message(
                '{"action":"subscribe","trades":["AAPL","MSFT"],"statuses":["AAPL"]}'
            )
            assert json.loads(await ws.get_message())[0]["statuses"] == ["AAPL"]
            while not any(m["T"] == "s" and m["sc"] == "T" for m in got):
                got.extend(json.loads(await ws.get_message()))
    statuses = [m for m in got if m["T"] == "s"]
    assert statuses == [
        {
            "T": "s",
            "S": "AAPL",
            "sc": "H",
            "sm": "Trading Halt",
            "rc": "T12",
            "rm": "Trading Halted; For information requested by NASDAQ",
            "t": "2026-01-05T15:00:00.200000000Z",
            "z": "C",
        },
        {
            "T": "s",
            "S": "AAPL",
            "sc": "T",
            "sm": "Trading Resumption",
            "rc": "",
            "rm": "",
            "t": "2026-01-05T15:00:00.700000000Z",
            "z": "C",
        },
    ]
    i, j = got.index(statuses[0]), got.index(statuses[1])
    assert any(m["T"] == "t" and m["S"] == "AAPL" for m in got[:i])
    assert not any(m["T"] == "t" and m["S"] == "AAPL" for m in got[i:j])
    assert any(m["T"] == "t" and m["S"] == "MSFT" for m in got[i:j])


async def test_a_throttled_client_gets_the_statuses_too(
    autojump: MockClock, halt_config: ServerConfig
) -> None:
    # Latest state every 100 ms: the halt and the resumption still arrive, once, in order.
    with trio.fail_after(60):
        got = await events(halt_config, ["AAPL"], 1.0, "binary", throttle_ms=100)
    statuses = [e for e in got if isinstance(e, TradingStatus)]
    assert [s.status for s in statuses] == ["halted", "trading"]
    halt, resume = statuses
    i, j = got.index(halt), got.index(resume)
    batches = [(k, e) for k, e in enumerate(got) if isinstance(e, Batch)]
    assert all(b.ticks["ts"].max() < halt.ts for k, b in batches if k < i)
    assert not [b for k, b in batches if i < k < j], "AAPL data while halted"
    assert all(b.ticks["ts"].min() >= resume.ts for k, b in batches if k > j)
    assert any(k > j for k, _ in batches)


async def test_a_resume_across_the_halt_gets_it_in_order(halt_server: Server) -> None:
    # A client back at 1 s resumes from 0.1 s: its catch-up takes span the halt and the
    # resumption at once, and are cut there so that each status sits among AAPL's ticks.
    server = halt_server
    with trio.fail_after(60):
        async with open_websocket_url(server.url, subprotocols=[SUBPROTOCOL_JSON]) as ws:
            epoch = json.loads(await ws.get_message())["epoch"]
            await trio.sleep(0.1)
            offset = server.hub.history.head  # where a client that left at 0.1 s was
            await trio.sleep(0.9)
            await ws.send_message(
                json.dumps(
                    {
                        "op": "subscribe",
                        "id": 1,
                        "symbols": ["AAPL"],
                        "resume": {"epoch": epoch, "offset": offset},
                    }
                )
            )
            got: list[dict] = []  # type: ignore[type-arg]
            while not any(m["type"] == "status" and m["status"] == "trading" for m in got):
                msg = json.loads(await ws.get_message())
                if msg["type"] in ("ticks", "status"):
                    got.append(msg)
            while (msg := json.loads(await ws.get_message()))["type"] != "ticks":
                pass
            got.append(msg)  # ticks after the resumption
    assert got[0]["type"] == "ticks"
    kinds = [m.get("status", "ticks") for m in got]
    i, j = kinds.index("halted"), kinds.index("trading")
    assert j > i and "halted" not in kinds[j:] and "trading" not in kinds[:j]
    halt_ts, resume_ts = got[i]["ts"], got[j]["ts"]
    ts = [[t["ts"] for t in m.get("ticks", ())] for m in got]
    assert all(t < halt_ts for k in range(i) for t in ts[k])
    assert not any(ts[k] for k in range(i + 1, j)), "AAPL ticks between halt and resumption"
    assert all(t >= resume_ts for k in range(j + 1, len(got)) for t in ts[k])
    assert any(ts[k] for k in range(j + 1, len(got)))


def test_tail_says_a_halt_in_one_line() -> None:
    import io

    from tickwire.feed.cli.tail import _print_event

    err = io.StringIO()
    _print_event(TradingStatus("AAPL", "halted", "scenario", START_NS), err)
    assert err.getvalue() == "# AAPL halted (scenario)\n"
