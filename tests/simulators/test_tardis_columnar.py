"""The columnar Tardis reader makes the same books as the row-by-row one it replaced, byte for
byte (records, snapshot marks, tops as ticks, the inferred universe), on generated files with
several symbols, whole books mid-file, removals, and blocks that must go row by row; and it does
so many times faster, in memory bounded by its block, not by the file."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tests.simulators import _tardis_reference as ref
from tickwire.simulators import _replay_tardis as tr
from tickwire.simulators import _tardis_gen as gen
from tickwire.simulators import _tardis_parse as tp
from tickwire.simulators._tardis_books import tardis_books
from tickwire.simulators.universe import Universe


def _same(paths: list[Path], kinds: list[str], universe: Universe | None = None) -> None:
    new = tardis_books(paths, kinds, universe, None, tops=True)
    old = ref.tardis_books(paths, kinds, universe, None, tops=True)
    assert new.records.tobytes() == old.records.tobytes()
    assert new.snapshot.tolist() == old.snapshot.tolist()
    assert new.ticks.tobytes() == old.ticks.tobytes()
    assert new.depth == old.depth
    assert list(new.universe.symbols) == list(old.universe.symbols)
    assert new.universe.tick_size.tolist() == old.universe.tick_size.tolist()
    assert new.universe.size_unit is not None and old.universe.size_unit is not None
    assert new.universe.size_unit.tolist() == old.universe.size_unit.tolist()
    assert new.universe.price.tolist() == old.universe.price.tolist()
    assert (new.finer is None) == (old.finer is None)


@pytest.fixture(scope="module")
def l2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gen.write(tmp_path_factory.mktemp("l2") / "l2.csv", 90_000)


def test_an_incremental_file_makes_the_same_records_ticks_and_universe(l2: Path) -> None:
    new = tr.read_book_csv(l2, "incremental")
    assert len(set(new.names)) == 4 and (new.amount == 0).sum() > 1000  # removals
    starts = np.flatnonzero(np.diff(new.whole) > 0)
    assert len(np.unique(new.whole[new.whole >= 0])) >= 6 and starts.max() > len(new) // 2
    _same([l2], ["incremental"])


def test_gzip_and_a_given_universe_with_a_coarser_size_unit(l2: Path, tmp_path: Path) -> None:
    gz = tmp_path / "l2.csv.gz"
    gz.write_bytes(gzip.compress(l2.read_bytes()[:2_000_000]))
    rows = [(n, n, "Crypto", m / 100, 0.01, 1, 1.0, "stock") for n, m in gen.SYMBOLS]
    _same([gz], ["incremental"], Universe.from_rows(rows, size_unit=np.full(4, 0.001)))


def test_snapshot_rows_and_two_files_together(l2: Path, tmp_path: Path) -> None:
    snap = gen.write(tmp_path / "snap.csv", 1500, snapshot=True)
    _same([snap], ["snapshot"])
    small = tmp_path / "small.csv"
    small.write_bytes(l2.read_bytes()[:300_000].rsplit(b"\n", 1)[0] + b"\n")
    _same([small, snap], ["incremental", "snapshot"])


def test_blocks_read_row_by_row_join_the_others_seamlessly(
    l2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small blocks (whole-book runs across their edges), some not plain: an upper-case side,
    a quoted symbol, spaces, an exponent. The row path reads those; the result is the same."""
    lines = l2.read_text().splitlines(keepends=True)[:20_000]
    for k, (old, new) in enumerate(
        [
            (",ask,", ",ASK,"),
            (",BTC-USD,", ',"BTC-USD",'),
            (",bid,", ", bid ,"),
            (",true,", ",TRUE,"),
        ]
    ):
        at = 3000 + 4000 * k
        lines[at] = lines[at].replace(old, new, 1)
    path = tmp_path / "mixed.csv"
    path.write_text("".join(lines))
    monkeypatch.setattr(tp, "BLOCK_BYTES", 50_000)
    _same([path], ["incremental"])


def test_reading_holds_a_block_not_the_file(l2: Path) -> None:
    """Peak memory while reading, beyond the columns it returns: a few blocks' work arrays."""
    tracemalloc.start()
    try:
        rows = tr.read_book_csv(l2, "incremental")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    kept = sum(
        getattr(rows, f).nbytes
        for f in tr.TardisRows.__dataclass_fields__
        if f not in ("path", "names")
    )
    assert peak - 2 * kept < 12 * tp.BLOCK_BYTES, (peak, kept)


def test_snapshot_rows_with_odd_books_make_the_same_records(tmp_path: Path) -> None:
    """Whole books made all at once: a level of size 0, a price given twice, a row without
    levels (first and later), a book equal to the one before, symbols interleaved."""
    cols = ["exchange", "symbol", "timestamp", "local_timestamp"]
    for i in range(3):
        cols += [f"asks[{i}].price", f"asks[{i}].amount", f"bids[{i}].price", f"bids[{i}].amount"]
    T0 = 1_700_000_000_000_000
    books = [
        ("ETH", ["", "", "", ""] * 3),  # its first book has no levels
        (
            "BTC",
            ["10.02", "1", "10.00", "2", "10.03", "0", "9.99", "3", "10.04", "1.5", "9.99", "4"],
        ),
        ("ETH", ["5.1", "1", "5.0", "1", "", "", "", "", "", "", "", ""]),
        ("BTC", ["10.02", "1", "10.00", "2", "10.04", "1.5", "9.99", "4", "", "", "", ""]),
        ("BTC", ["10.02", "1", "10.00", "2", "10.04", "1.5", "9.99", "4", "", "", "", ""]),
        ("BTC", ["10.01", "0.25", "10.00", "2", "10.05", "1", "9.98", "4", "", "", "", ""]),
        ("ETH", ["", "", "", ""] * 3),  # a later book without levels: every level goes
        ("ETH", ["5.2", "2", "5.0", "1", "", "", "", "", "", "", "", ""]),
    ]
    lines = [",".join(cols)]
    for k, (sym, cells) in enumerate(books):
        lines.append(",".join(["binance", sym, str(T0 + k * 10), str(T0 + k * 10 + 1), *cells]))
    path = tmp_path / "odd_book_snapshot_3.csv"
    path.write_text("\n".join(lines) + "\n")
    _same([path], ["snapshot"])


@pytest.mark.parametrize(
    ("cells", "want"),
    [
        (
            ["1704067200000000", "0000000000000123", "9999999999999999"],
            [1704067200000000, 123, 9999999999999999],
        ),
        (["17040672", "00000123"], [17040672, 123]),  # one width below 16
        (["123", "45", "6"], [123, 45, 6]),  # widths differ: the byte matrix
        (["170406x2", "00000123"], None),  # not a digit: the row path says so
        (["1704/672", "00000123"], None),
        (["", "1"], None),
    ],
)
def test_block_integers_read_exactly_or_not_at_all(
    cells: list[str], want: list[int] | None
) -> None:
    block = "".join(f"x,{c}\n" for c in cells).encode()
    fields = tp.split(block, 1, 2, Path("f.csv"))
    assert fields is not None
    got = tp.integers(fields, 1)
    assert (got.tolist() if got is not None else None) == want


@pytest.mark.parametrize(
    ("cell", "want"),
    [
        ("42000.01", (4200001, 2, 42000.01)),
        ("0.00012300", (123, 6, 0.000123)),  # trailing zeros are no decimals
        ("5", (5, 0, 5.0)),
        ("100", (100, 0, 100.0)),
        ("7.", (7, 0, 7.0)),
        (".5", (5, 1, 0.5)),
        ("1e-5", None),
        ("-1", None),
        ("1.2.3", None),
        (" 1", None),
        (".", None),
    ],
)
def test_block_decimals_are_exact_digits_and_python_floats(
    cell: str, want: tuple[int, int, float] | None
) -> None:
    fields = tp.split(f"x,{cell}\nx,1\n".encode(), 1, 2, Path("f.csv"))
    assert fields is not None
    got = tp.decimals(fields, 1)
    if want is None:
        assert got is None
        return
    assert got is not None
    assert (int(got.mant[0]), int(got.places[0]), float(got.value[0])) == want
    assert float(got.value[0]) == float(cell)


def test_tops_carried_across_many_small_chunks(
    l2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks far smaller than the books (they grow to 4x the live levels): the books and the
    last tops carried from chunk to chunk make the same ticks."""
    from tickwire.simulators import _tardis_tops as tt

    path = tmp_path / "head.csv"
    path.write_text("".join(l2.read_text().splitlines(keepends=True)[:15_000]))
    monkeypatch.setattr(tt, "CHUNK", 64)
    _same([path], ["incremental"])


@pytest.mark.parametrize("widest", [16, 18])  # two words a row; the byte matrix beyond
def test_block_decimals_match_python_on_random_plain_numbers(widest: int) -> None:
    """Seeded: numbers of 1 to `widest` characters, a point anywhere or none, leading and
    trailing zeros; each as Python reads it (Decimal for the digits, float() for the value)."""
    from decimal import Decimal

    rng = np.random.default_rng(widest)
    cells = []
    for _ in range(3000):
        width = int(rng.integers(1, widest))
        digits = "".join(map(str, rng.integers(0, 10, width)))
        digits = digits[:15] if "." not in digits else digits  # mantissas below 2**53
        at = int(rng.integers(0, len(digits) + 1))
        cells.append(digits if at == len(digits) else f"{digits[:at]}.{digits[at:]}")
    cells = [c for c in cells if len(c.replace(".", "")) <= 15 and c != "."]
    cells += ["0" * (widest - len(c)) + c for c in cells[:500]]  # leading zeros to the width
    assert max(map(len, cells)) == widest
    block = "".join(f"x,{c}\n" for c in cells).encode()
    fields = tp.split(block, 1, 2, Path("f.csv"))
    assert fields is not None
    got = tp.decimals(fields, 1)
    assert got is not None
    for k, cell in enumerate(cells):
        exact = Decimal(cell).normalize() if Decimal(cell) else Decimal(0)
        places = max(0, -int(exact.as_tuple().exponent))
        mant = int(exact.scaleb(places))
        assert (int(got.mant[k]), int(got.places[k])) == (mant, places), cell
        assert float(got.value[k]) == float(cell), cell
