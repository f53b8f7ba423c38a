"""Tick files and book files are read by one Parquet helper (`_replay_files.read_parquet`): each
refuses what is not its kind with one precise line, and each decodes its symbol column alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tickwire.simulators import _replay_files as files
from tickwire.simulators.bookfile import read_book_parquet
from tickwire.simulators.errors import UserError


def test_a_file_that_is_not_parquet_is_refused_by_both_readers(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(b"not parquet at all")
    for read in (lambda: files.read(path, {}), lambda: read_book_parquet(path)):
        with pytest.raises(UserError, match=r"x\.parquet: not a readable Parquet file \("):
            read()


@pytest.mark.parametrize(
    ("read", "kind", "first_missing"),
    [
        (lambda p: files.read(p, {}), "tickwire file", "ts"),
        (read_book_parquet, "tickwire book file", "ts"),
    ],
    ids=["ticks", "book"],
)
def test_a_parquet_file_of_another_kind_names_its_first_missing_column(
    tmp_path: Path, read: object, kind: str, first_missing: str
) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"symbol": ["AAPL"], "price": [1.0]}), path)
    with pytest.raises(UserError) as caught:
        read(path)  # type: ignore[operator]
    assert str(caught.value) == f"{path}: not a {kind}: no column {first_missing!r}"


@pytest.mark.parametrize("dictionary", [True, False], ids=["dictionary", "plain"])
def test_the_symbol_column_decodes_as_names_and_indexes(tmp_path: Path, dictionary: bool) -> None:
    symbols = pa.array(["MSFT", "AAPL", "MSFT"])
    if dictionary:
        symbols = symbols.dictionary_encode()
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"symbol": symbols}), path)
    _, names, index, universe = files.read_parquet(path, ["symbol"], "test file")
    assert [names[i] for i in np.asarray(index)] == ["MSFT", "AAPL", "MSFT"]
    assert universe is None
