"""The order book's wire parts, sans-IO: checksum, one book's window, entries, binary frames."""

from __future__ import annotations

import zlib

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickwire.feed import protocol as p
from tickwire.feed.protocol import book as b
from tickwire.simulators import Market, Universe
from tickwire.simulators.book import LEVEL_DTYPE


def test_checksum_is_kraken_over_asks_then_bids_top_ten() -> None:
    bids = tuple((10_000 - i, 100 + i) for i in range(12))  # 100.00, 99.99, ... (2 decimals)
    asks = tuple((10_001 + i, 200 + i) for i in range(12))
    text = "".join(f"{u}{s}" for u, s in asks[:10]) + "".join(f"{u}{s}" for u, s in bids[:10])
    assert b.checksum((bids, asks)) == zlib.crc32(text.encode())
    assert text.startswith("10001200")  # "100.01" without "." then size 200
    assert b.checksum((bids[:10], asks[:10])) == b.checksum((bids, asks))  # the 11th: not covered


def test_price_units_strip_point_and_leading_zeros() -> None:
    lv = b.Levels.for_tick(0.01)
    assert (lv.decimals, lv.tick_units) == (2, 1)
    assert lv.units(0.05) == 5  # "0.05" -> "005" -> "5"
    assert lv.units(189.42) == 18942
    crypto = b.Levels.for_tick(0.25)
    assert (crypto.decimals, crypto.tick_units, crypto.units(12.75)) == (2, 25, 1275)


def test_view_keeps_depth_ticks_from_each_best() -> None:
    lv = b.Levels.for_tick(0.01)
    for u, s in ((1000, 5), (999, 3), (995, 7), (990, 1)):
        lv.set(0, u, s)
    for u, s in ((1002, 4), (1010, 2), (1012, 9)):
        lv.set(1, u, s)
    bids, asks = lv.view(6)
    assert bids == ((1000, 5), (999, 3), (995, 7))  # 990 is 10 ticks away
    assert asks == ((1002, 4),)  # 1010 is 8 ticks from 1002
    lv.set(0, 1000, 0)  # the best leaves: 990 is within 6 ticks of 999 now? no: 9 ticks
    assert lv.view(6)[0] == ((999, 3), (995, 7))
    rows_bid, rows_ask = lv.rows(20)
    assert rows_bid["price"].tolist() == [9.99, 9.95, 9.9]
    assert rows_ask["size"].tolist() == [4, 2, 9]


def _book(seq: int = 7) -> b.Levels:
    lv = b.Levels.for_tick(0.01, seq=seq)
    lv.load((((1000, 5), (999, 3)), ((1001, 4), (1003, 2))), seq, 1)
    return lv


def test_apply_entry_follows_seq_and_checksum() -> None:
    server, client = _book(), _book()
    changes = [(0, 9.99, 0), (1, 10.02, 6)]
    for side, price, size in changes:
        server.set(side, server.units(price), size)
    server.seq = 9
    entry = b.change_entry("X", 9, changes, b.checksum(server.view(20)), ts=5)
    b.apply_entry(client, entry, 20)
    assert client.view(20) == server.view(20) and client.seq == 9 and client.ts == 5
    with pytest.raises(b.BookError, match="seq"):  # the same entry again: a duplicate
        b.apply_entry(client, entry, 20)


def test_apply_entry_refuses_a_wrong_checksum_and_keeps_the_book() -> None:
    client = _book()
    before = client.view(20)
    entry = b.change_entry("X", 8, [(0, 10.0, 6)], 12345, ts=5)
    with pytest.raises(b.BookError, match="checksum"):
        b.apply_entry(client, entry, 20)
    assert client.view(20) == before and client.seq == 7


def test_conflated_entry_applies_to_its_base_only() -> None:
    old = _book()
    new = _book(seq=30)
    new.set(1, 1003, 0)
    new.set(0, 998, 11)
    changes = [(s, new.price(u), z) for s, u, z in b.diff(old.view(20), new.view(20))]
    entry = b.change_entry("X", 30, changes, b.checksum(new.view(20)), ts=9, since=7)
    assert entry["conflated"] is True
    client = _book()
    b.apply_entry(client, entry, 20)
    assert client.view(20) == new.view(20) and client.seq == 30
    stale = _book(seq=6)
    with pytest.raises(b.BookError):
        b.apply_entry(stale, entry, 20)


def test_snapshot_entry_loads_and_a_client_cuts_to_its_depth() -> None:
    lv = _book()
    lv.set(0, 990, 8)
    entry = b.snapshot_entry("X", lv, 5)
    assert entry["bids"] == [[10.0, 5], [9.99, 3]]
    loaded, depth = b.load_snapshot(entry)
    assert depth == 5 and loaded.view(5) == lv.view(5) and loaded.seq == 7
    entry["checksum"] ^= 1
    with pytest.raises(b.BookError):
        b.load_snapshot(entry)


def test_market_ladder_checksum_is_stable_across_server_and_client() -> None:
    """A simulated book's snapshot, carried as JSON and loaded back, checks out."""
    m = Market(Universe.default(), seed=3, start_ns=0, book_depth=20)
    m.step_book(200_000_000)
    lad = m.book_snapshot()[0]
    lv = b.Levels.for_tick(float(Universe.default().tick_size[0]), int(lad["seq"]), 0)
    for side, name in ((0, "bid"), (1, "ask")):
        px, sz = lad[f"{name}_price"], lad[f"{name}_size"]
        for price, size in zip(px.tolist(), sz.tolist(), strict=True):
            lv.set(side, lv.units(price), size)
    entry = b.snapshot_entry("AAPL", lv, 20)
    assert entry["bids"][0][0] < entry["asks"][0][0]  # never crossed
    loaded, _ = b.load_snapshot(orjson_roundtrip(entry))
    assert b.checksum(loaded.view(20)) == entry["checksum"]


def orjson_roundtrip(entry: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = orjson.loads(orjson.dumps(entry))
    return out


@given(
    st.binary(max_size=800).map(lambda raw: raw[: len(raw) // 40 * 40]),
    st.integers(0, 2**63),
    st.booleans(),
    st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 2**32 - 1)), max_size=5),
)
def test_binary_book_frames_round_trip(
    raw: bytes, seq: int, snap: bool, crcs: list[tuple[int, int]]
) -> None:
    records = np.frombuffer(raw, LEVEL_DTYPE)
    checks = np.zeros(len(crcs), b.CHECK_DTYPE)
    for i, (sym, crc) in enumerate(crcs):
        checks[i] = (sym, b.CONFLATED if crc & 1 else 0, crc)
    frame = b.decode_book_binary(b.encode_book_binary(snap, seq, records, checks))
    assert frame.snapshot is snap and frame.seq == seq
    assert frame.records.dtype == LEVEL_DTYPE
    assert frame.records.tobytes() == records.tobytes()
    assert frame.checks.tobytes() == checks.tobytes()


def test_binary_book_frame_of_wrong_length_is_refused() -> None:
    data = b.encode_book_binary(False, 1, np.zeros(2, LEVEL_DTYPE), np.zeros(1, b.CHECK_DTYPE))
    with pytest.raises(p.DecodeError, match="length"):
        b.decode_book_binary(data[:-1])


@pytest.mark.parametrize(
    ("book", "expected"), [(None, None), (False, None), (True, True), (1, 1), (1000, 1000)]
)
def test_subscribe_book_field(book: object, expected: object) -> None:
    import orjson

    req = p.parse_request(
        orjson.dumps({"op": "subscribe", "symbols": ["A"], "book": book}).decode()
    )
    assert isinstance(req, p.Subscribe) and req.book == expected


@pytest.mark.parametrize("book", [0, 1001, -1, 2.5, "20", [20]])
def test_subscribe_book_field_out_of_range_is_a_precise_error(book: object) -> None:
    text = orjson.dumps({"op": "subscribe", "symbols": ["A"], "book": book}).decode()
    with pytest.raises(p.BadRequest, match=r"book must be true .* from 1 to 1000 ticks a side"):
        p.parse_request(text)
