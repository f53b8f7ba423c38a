"""Replaying Tardis order book CSVs (`incremental_book_L2`, `book_snapshot_25`), plain and gzip:
the books they describe, numbered change by change, their tops as ticks, exact sizes, and a
one-line error for each kind of malformed row."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import trio

from tickwire.feed import BookUpdate, Gap, connect
from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators.errors import UserError
from tickwire.simulators.replay import open_replay

L2_HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
T0 = 1_700_000_000_000_000  # us


def _l2(rows: list[tuple[str, int, str, str, float, str]]) -> str:
    """(symbol, us after T0, is_snapshot, side, price, amount) rows: an incremental_book_L2."""
    lines = [L2_HEADER]
    for sym, dt, snap, side, price, amount in rows:
        lines.append(f"coinbase,{sym},{T0 + dt},{T0 + dt + 5},{snap},{side},{price},{amount}")
    return "\n".join(lines) + "\n"


L2_ROWS = [
    ("BTC-USD", 0, "true", "bid", 100.00, "1.5"),
    ("BTC-USD", 0, "true", "bid", 99.99, "0.00001"),
    ("BTC-USD", 0, "true", "ask", 100.01, "2"),
    ("BTC-USD", 0, "true", "ask", 100.03, "0.12345"),
    ("ETH-USD", 10, "true", "bid", 10.5, "3"),
    ("ETH-USD", 10, "true", "ask", 10.6, "4"),
    ("BTC-USD", 1000, "false", "bid", 100.00, "1.25"),
    ("BTC-USD", 2000, "false", "ask", 100.01, "0"),  # the best ask goes: 100.03 is the best
    ("BTC-USD", 2000, "false", "ask", 100.02, "0.5"),
    ("ETH-USD", 3000, "false", "bid", 10.55, "1"),
    # the exchange's reconnect: a whole book that replaces the one held
    ("BTC-USD", 4000, "true", "bid", 99.98, "7"),
    ("BTC-USD", 4000, "true", "ask", 100.02, "0.5"),
    ("BTC-USD", 5000, "false", "ask", 100.05, "1"),
]
# What each book is at the end, per Tardis's rules, in size units: 0.00001 BTC (the most decimals
# its amounts use), 1 ETH (whole amounts).
FINAL = {
    "BTC-USD": ({99.98: 700000}, {100.02: 50000, 100.05: 100000}),
    "ETH-USD": ({10.55: 1, 10.5: 3}, {10.6: 4}),
}


@pytest.fixture
def l2_gz(tmp_path: Path) -> Path:
    path = tmp_path / "coinbase_incremental_book_L2_2023-11-14_BTC-USD.csv.gz"
    path.write_bytes(gzip.compress(_l2(L2_ROWS).encode()))
    return path


def _replayed(path: Path) -> tuple[dict[int, tuple[dict, dict]], dict[int, list[int]], object]:
    """Every level update the replay releases, applied: each symbol's book, and its seqs."""
    replay = open_replay([path], speed=0)
    assert replay.book is not None
    books: dict[int, tuple[dict, dict]] = {}
    for row in replay.book_snapshot():
        bids = {
            float(p): int(z) for p, z in zip(row["bid_price"], row["bid_size"], strict=True) if z
        }
        asks = {
            float(p): int(z) for p, z in zip(row["ask_price"], row["ask_size"], strict=True) if z
        }
        books[int(row["sym"])] = (bids, asks)
    seqs: dict[int, list[int]] = {}
    while not replay.finished:
        _, levels = replay.step_book(0)
        for r in levels:
            side = books[int(r["sym"])][int(r["side"])]
            if r["size"]:
                side[round(float(r["price"]), 8)] = int(r["size"])
            else:
                side.pop(round(float(r["price"]), 8), None)
            seqs.setdefault(int(r["sym"]), []).append(int(r["seq"]))
    return books, seqs, replay


def test_incremental_book_l2_replays_the_books_it_describes_change_by_change(l2_gz: Path) -> None:
    books, seqs, replay = _replayed(l2_gz)
    uni = replay.universe
    assert list(uni.symbols) == ["BTC-USD", "ETH-USD"]
    assert uni.size_unit is not None and uni.size_unit.tolist() == [1e-5, 1.0]  # exact amounts
    for sym, want in FINAL.items():
        assert books[uni.index(sym)] == want, sym
    for got in seqs.values():  # after the first whole book (seq 1): +1 per change, no gap
        assert got == list(range(2, 2 + len(got)))
    ticks = replay.snapshot()  # the last top of each book is its last tick
    btc = ticks[uni.index("BTC-USD")]
    assert (btc["bid"], btc["ask"], btc["bid_size"], btc["ask_size"]) == (
        99.98,
        100.02,
        700000,
        50000,
    )


def test_book_snapshot_25_rows_are_whole_books_replayed_as_their_changes(tmp_path: Path) -> None:
    cols = ["exchange", "symbol", "timestamp", "local_timestamp"]
    for i in range(25):
        cols += [f"asks[{i}].price", f"asks[{i}].amount", f"bids[{i}].price", f"bids[{i}].amount"]
    rows = [
        [(100.01, "1"), (100.02, "2")],  # asks then bids, level by level
        [(100.01, "1"), (100.03, "2.5")],
    ]
    lines = [",".join(cols)]
    for k, ((a0, z0), (a1, z1)) in enumerate(rows):
        cells = ["binance", "BTCUSDT", str(T0 + k * 1000), str(T0 + k * 1000 + 3)]
        cells += [str(a0), z0, "99.99", "3", str(a1), z1, "99.98", "4"]
        cells += [""] * (len(cols) - len(cells))
        lines.append(",".join(cells))
    path = tmp_path / "binance_book_snapshot_25_2023-11-14_BTCUSDT.csv"
    path.write_text("\n".join(lines) + "\n")
    books, seqs, _replay = _replayed(path)
    assert books[0] == ({99.99: 30, 99.98: 40}, {100.01: 10, 100.03: 25})  # units of 0.1
    assert seqs[0] == [2, 3]  # 100.02 went, 100.03 came: two changes after the first book


@pytest.mark.parametrize(
    ("row", "what"),
    [
        (
            "coinbase,BTC-USD,1700000000000000,1,true,buy,100,1",
            "side must be bid or ask, got 'buy'",
        ),
        ("coinbase,BTC-USD,1700000000000000,1,yes,bid,100,1", "is_snapshot must be true or false"),
        ("coinbase,BTC-USD,1700000000000000,1,true,bid,abc,1", "price is not a number: 'abc'"),
        ("coinbase,BTC-USD,1700000000000000,1,true,bid,100,-1", "amount must be 0 or more"),
        ("coinbase,BTC-USD,soon,1,true,bid,100,1", "timestamp must be microseconds"),
        ("coinbase,BTC-USD,1700000000000000,1,true,bid", "6 fields, the header has 8"),
    ],
)
def test_a_malformed_row_is_one_line_naming_file_line_and_what(
    tmp_path: Path, row: str, what: str
) -> None:
    path = tmp_path / "book.csv"
    good = "coinbase,BTC-USD,1700000000000000,1,true,ask,101,1"
    path.write_text(f"{L2_HEADER}\n{good}\n{row}\n")
    with pytest.raises(UserError) as err:
        open_replay([path])
    message = str(err.value)
    assert message.startswith(f"{path} line 3: ") and what in message and "\n" not in message


async def test_a_client_keeps_the_replayed_tardis_books_checksum_for_checksum(l2_gz: Path) -> None:
    server = Server(ServerConfig(port=0), market=open_replay([l2_gz], speed=0))
    gaps: list[Gap] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(server.run)
            async with connect(url, encoding="binary") as feed:
                await feed.subscribe("*", book=True)
                async for event in feed:
                    gaps += [event] if isinstance(event, Gap) else []
                    book = feed.book("BTC-USD")
                    if isinstance(event, BookUpdate) and book is not None and book.seq == 9:
                        break
                bids = {float(p): int(z) for p, z in book.bids.tolist()}
                asks = {float(p): int(z) for p, z in book.asks.tolist()}
            nursery.cancel_scope.cancel()
    assert (bids, asks) == FINAL["BTC-USD"]
    assert not [g for g in gaps if g.reason == "book"]  # every checksum held


def test_book_files_with_quotes_count_every_size_in_the_finest_unit(
    tmp_path: Path, l2_gz: Path
) -> None:
    quotes = tmp_path / "quotes.csv"
    quotes.write_text(
        "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount\n"
        f"coinbase,BTC-USD,{T0},{T0},2,100.01,100.00,1.5\n"
        f"coinbase,ETH-USD,{T0 + 10},{T0 + 10},4,10.60,10.50,3\n"
    )
    replay = open_replay([quotes, l2_gz], speed=0)
    uni = replay.universe
    assert uni.size_unit is not None and uni.size_unit.tolist() == [1e-5, 1.0]  # the books'
    btc = uni.index("BTC-USD")
    assert replay.step(0)["bid_size"][0] == 150000  # the quote's 1.5 BTC, in the books' unit
    first = replay.book_snapshot()[btc]
    assert first["bid_size"][0] == 150000 and first["ask_size"][2] == 12345  # 0.12345 BTC
    huge = tmp_path / "huge.csv"
    huge.write_text(quotes.read_text().replace(",1.5\n", ",50000\n"))
    with pytest.raises(UserError, match=r"exceeds the record's 32-bit bid_size"):
        open_replay([huge, l2_gz])


def test_books_alone_on_a_given_universe_make_their_tops_the_ticks(l2_gz: Path) -> None:
    from tickwire.simulators import Universe

    rows = [("BTC-USD", "Bitcoin", "Crypto", 100.0, 0.01, 1, 1.0, "stock")]
    rows.append(("ETH-USD", "Ether", "Crypto", 10.5, 0.01, 1, 1.0, "stock"))
    replay = open_replay([l2_gz], speed=0, universe=Universe.from_rows(rows))
    first = replay.step(0)
    assert len(first) and first["sym"][0] == 0 and first["bid"][0] == 100.0
    assert replay.universe.size_unit is not None and replay.universe.size_unit[0] == 1e-5


def test_a_book_file_with_a_header_alone_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(L2_HEADER + "\n")
    with pytest.raises(UserError, match=r"^nothing to replay: no book rows in .*empty\.csv$"):
        open_replay([path])
