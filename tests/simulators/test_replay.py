"""Replay: reading own and real-shaped files, timing, speed 0, loops, errors, determinism."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import trio
import trio.testing

from tickwire.simulators import Market, Universe
from tickwire.simulators.errors import UserError
from tickwire.simulators.replay import Replay, load, open_replay
from tickwire.simulators.ticks import TICK_DTYPE, TickFlag

T0_US = 1_704_067_200_000_000  # 2024-01-01 00:00:00 UTC in microseconds, as Tardis writes

# Tardis `quotes` and `trades` CSV columns (https://docs.tardis.dev/downloadable-csv-files)
QUOTES = """exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount
binance,BTCUSDT,{t0},{t0},3,42000.5,42000.1,2
binance,ETHUSDT,{t1},{t1},10,2300.25,2300.2,7
binance,BTCUSDT,{t3},{t3},1,42001.0,42000.6,4
"""
TRADES = """exchange,symbol,timestamp,local_timestamp,id,side,price,amount
binance,BTCUSDT,{t2},{t2},1,buy,42000.5,2
binance,BTCUSDT,{t4},{t4},2,sell,42000.6,1
binance,ETHUSDT,{t4},{t4},3,sell,2300.2,5
"""


def _tardis(tmp_path: Path) -> list[Path]:
    # event times 0, 1, 2, 3, 4 seconds after T0
    t = {f"t{k}": T0_US + k * 1_000_000 for k in range(5)}
    quotes = tmp_path / "quotes.csv.gz"
    with gzip.open(quotes, "wt") as f:
        f.write(QUOTES.format(**t))
    trades = tmp_path / "trades.csv"
    trades.write_text(TRADES.format(**t))
    return [quotes, trades]


def test_tardis_quotes_and_trades_merge_into_ticks(tmp_path):
    records, uni = load(_tardis(tmp_path))
    assert uni.symbols == ("BTCUSDT", "ETHUSDT")
    assert uni.tick_size.tolist() == [0.1, 0.01]  # from the decimals the prices use
    assert (np.diff(records["ts"]) >= 0).all() and records["ts"][0] == T0_US * 1000
    btc = records[records["sym"] == 0]
    assert btc["seq"].tolist() == [1, 2, 3, 4]
    assert btc["bid"].tolist() == [42000.1, 42000.1, 42000.6, 42000.6]  # a trade keeps the quote
    assert btc["last"].tolist() == [0.0, 42000.5, 42000.5, 42000.6]
    assert btc["volume"].tolist() == [0, 2, 2, 3]
    flags = btc["flags"].tolist()
    assert flags[1] == TickFlag.TRADE | TickFlag.BUY and flags[3] == TickFlag.TRADE | TickFlag.SELL
    assert flags[0] == flags[2] == 0
    eth = records[records["sym"] == 1]
    assert eth["ask"].tolist() == [2300.25, 2300.25] and eth["last_size"].tolist() == [0, 5]


def test_other_column_names_map_with_columns(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text(
        "time,ticker,bp,ap\n2024-01-01T00:00:00Z,AAA,10.5,10.75\n2024-01-01T00:00:01.5Z,AAA,10.5,11\n"
    )
    records, uni = load([path], columns="ts=time,symbol=ticker")
    assert uni.symbols == ("AAA",) and records["ask"].tolist() == [10.75, 11.0]
    assert int(records["ts"][1] - records["ts"][0]) == 1_500_000_000


@pytest.mark.parametrize(
    ("text", "columns", "message"),
    [
        ("timestamp,symbol,bid_price,ask_price\n1,A,1.0,x\n", None, "line 2: field 'ask_price'"),
        ("timestamp,symbol,bid_price,ask_price\n1,A,1.0,2\n1,A\n", None, "line 3: 2 fields"),
        ("symbol,bid_price,ask_price\nA,1,2\n", None, "line 1: no ts column"),
        ("timestamp,symbol,foo\n1,A,1\n", None, "neither bid/ask nor price"),
        ("timestamp,symbol,price\nnever,A,1\n", None, "line 2: field 'ts'"),
        ("timestamp,symbol,price\n1,A,1\n", "ts=nope", "--columns ts=nope: no such column"),
        ("timestamp,symbol,price\n1,A,1\n", "when=ts", "--columns takes FIELD=COLUMN"),
        ("", None, "is empty"),
    ],
)
def test_a_bad_file_is_one_error_naming_the_line_and_field(tmp_path, text, columns, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load([path], columns=columns)


def test_missing_and_unknown_files_are_one_line(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load([tmp_path / "nope.parquet"])
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(UserError, match="replay reads"):
        load([tmp_path / "x.txt"])


def test_at_speed_10_each_tick_comes_a_tenth_of_its_data_time_later(tmp_path):
    replay = open_replay(_tardis(tmp_path), speed=10)
    wall0 = 5_000_000_000_000
    released = {}
    for ms in range(0, 600, 10):
        for rec in replay.step(wall0 + ms * 1_000_000):
            released.setdefault(int(rec["ts"]) // 1000 - T0_US, ms)
    # data times 0..4 s -> wall 0..400 ms, released in the first step at or after it
    assert released == {0: 0, 1_000_000: 100, 2_000_000: 200, 3_000_000: 300, 4_000_000: 400}


async def test_through_the_server_at_speed_10_on_a_fake_clock(tmp_path, autojump_clock):
    from tickwire.feed.server.server import Server, ServerConfig

    replay = open_replay(_tardis(tmp_path), speed=10)
    server = Server(ServerConfig(port=0), market=replay)
    seen: list[tuple[float, int]] = []
    sub = server.hub.attach(lambda: None)
    server.hub.set_subscription(sub, True, np.empty(0, np.intp))
    # Counted as a subscribed connection would be: with none, the generator steps only every
    # 50 ms (an idle server), and the timing asserted here is that of a watched stream.
    server.ctx.subscribers = 1
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run_source)
        t0 = trio.current_time()
        while len(seen) < 6:
            await trio.sleep(0.001)
            pending = server.hub.take(sub)
            if pending is not None:
                seen += [(trio.current_time() - t0, int(ts)) for ts in pending.records["ts"]]
        nursery.cancel_scope.cancel()
    for wall_s, ts in seen:  # each tick goes out within a cadence of its scaled data time
        due_s = (ts // 1000 - T0_US) / 1e6 / 10
        assert due_s <= wall_s + 1e-9 < due_s + 0.003


def test_speed_0_releases_batches_whatever_the_time_and_the_same_stream_twice(tmp_path):
    market = Market(Universe.default(), seed=3, start_ns=0)
    records = np.concatenate([market.step(k * 100_000_000) for k in range(1, 40)])
    streams = []
    for _ in range(2):
        replay = Replay(records.copy(), Universe.default(), speed=0, batch_max=500)
        out = []
        while not replay.finished:
            out.append(replay.step(0))
        assert all(len(b) <= 500 for b in out)
        streams.append(np.concatenate(out).tobytes())
    assert streams[0] == streams[1] == records.tobytes()


def test_a_loop_keeps_time_seq_and_volume_increasing(tmp_path):
    replay = open_replay(_tardis(tmp_path), speed=0, loop=True)
    replay.batch_max = 4
    out = np.concatenate([replay.step(0) for _ in range(5)])
    assert len(out) == 20 and (np.diff(out["ts"]) > 0).sum() > 0 and (np.diff(out["ts"]) >= 0).all()
    for s in (0, 1):
        mine = out[out["sym"] == s]
        assert (np.diff(mine["seq"].astype(np.int64)) == 1).all()
        assert (np.diff(mine["volume"].astype(np.int64)) >= 0).all()


def test_start_and_end_cut_the_data(tmp_path):
    replay = open_replay(_tardis(tmp_path), speed=0, start="+1s", end="+3s")
    out = replay.step(0)
    assert sorted({int(t) // 1000 - T0_US for t in out["ts"]}) == [1_000_000, 2_000_000, 3_000_000]
    snap = replay.snapshot()
    assert snap["seq"].tolist() == [3, 1]  # the latest kept: BTC at 3 s, ETH at 1 s
    with pytest.raises(UserError, match="expected a time"):
        open_replay(_tardis(tmp_path), start="yesterday")


def test_own_files_round_trip_with_their_universe(tmp_path):
    from tickwire.feed.record import Recorder

    uni = Universe.default()
    market = Market(uni, seed=9, start_ns=0)
    batches = [market.step(k * 200_000_000).copy() for k in range(1, 15)]
    expected = np.concatenate(batches)
    for ext in (".parquet", ".npy", ".csv"):
        rec = Recorder(tmp_path / f"r{ext}", uni)
        for b in batches:
            rec.write(b, 0.0)
        rec.close(0.0)
        records, back = load([tmp_path / f"r{ext}"], universe=uni if ext == ".csv" else None)
        assert back.symbols == uni.symbols
        assert records.tobytes() == expected.tobytes(), ext


def test_the_snapshot_before_any_tick_is_each_symbol_s_prior_state(tmp_path):
    replay = open_replay(_tardis(tmp_path), speed=1)
    snap = replay.snapshot()
    assert snap.dtype == TICK_DTYPE and snap["seq"].tolist() == [0, 0]
    assert snap["bid"].tolist() == [42000.1, 2300.2]


# Tardis-shaped crypto data: amounts in fractions of a coin.
CRYPTO_QUOTES = (
    QUOTES.split("\n", 1)[0]
    + """
binance,BTCUSDT,{t0},{t0},0.5,42000.5,42000.1,1.25
binance,ETHUSDT,{t1},{t1},10,2300.25,2300.2,7
"""
)
CRYPTO_TRADES = """exchange,symbol,timestamp,local_timestamp,id,side,price,amount
binance,BTCUSDT,{t2},{t2},1,buy,42000.5,0.0123
binance,BTCUSDT,{t3},{t3},2,sell,42000.6,0.0007
"""


def test_fractional_sizes_are_kept_exactly_in_units_the_symbols_reply_names(tmp_path):
    from tickwire.feed.record import Recorder

    t = {f"t{k}": T0_US + k * 1_000_000 for k in range(4)}
    quotes, trades = tmp_path / "quotes.csv", tmp_path / "trades.csv"
    quotes.write_text(CRYPTO_QUOTES.format(**t))
    trades.write_text(CRYPTO_TRADES.format(**t))
    records, uni = load([quotes, trades])
    assert uni.size_unit is not None and uni.size_unit.tolist() == [0.0001, 1.0]  # ETH: whole
    btc = records[records["sym"] == 0]
    assert btc["bid_size"].tolist() == [12500] * 3 and btc["ask_size"].tolist() == [5000] * 3
    assert btc["last_size"].tolist() == [0, 123, 7]  # 0.0123 and 0.0007 BTC, not 0 and 0
    assert btc["volume"].tolist() == [0, 123, 130]
    eth = records[records["sym"] == 1]
    assert eth["bid_size"].tolist() == [7]  # integer sizes stay as they were
    refs = uni.reference()
    assert [r["size_unit"] for r in refs] == [0.0001, 1.0]
    # a recording keeps the units with its universe, so a replay of it means the same sizes
    rec = Recorder(tmp_path / "r.parquet", uni)
    rec.write(records, 0.0)
    rec.close(0.0)
    again, back = load([tmp_path / "r.parquet"])
    assert back.size_unit is not None and back.size_unit.tolist() == [0.0001, 1.0]
    assert again.tobytes() == records.tobytes()


def test_sizes_too_large_for_their_decimals_keep_fewer_decimals_not_a_clipped_value(tmp_path):
    t = {f"t{k}": T0_US + k * 1_000_000 for k in range(4)}
    trades = tmp_path / "trades.csv"
    trades.write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        f"x,BTCUSDT,{t['t0']},{t['t0']},1,buy,42000.5,0.00000001\n"
        f"x,BTCUSDT,{t['t1']},{t['t1']},2,buy,42000.5,5000.5\n"
    )
    records, uni = load([trades])
    # 5000.5 in units of 1e-8 would not fit a u4: 1e-5 is the finest unit that does
    assert uni.size_unit is not None and uni.size_unit.tolist() == [1e-5]
    assert records["last_size"].tolist() == [0, 500050000]


async def test_the_symbols_reply_of_a_replay_names_its_files_not_the_simulator(tmp_path):
    import orjson

    from tickwire.feed.server.server import Server, ServerConfig

    server = Server(ServerConfig(port=0), market=open_replay(_tardis(tmp_path)))
    refs = orjson.loads(server.symbols_body)
    assert {r["simulated"] for r in refs} == {False}
    assert {r["source"] for r in refs} == {"replay: quotes.csv.gz, trades.csv"}
    assert Universe.default().reference()[0]["simulated"] is True
