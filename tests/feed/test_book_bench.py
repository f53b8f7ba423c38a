"""The order book fan-out bench rows: real load clients on a real server, with books and without
(speed not asserted: the figures are the bench's)."""

from __future__ import annotations

import pytest

from tickwire.feed.bench.bookfan import book_fanout_rows


@pytest.mark.slow
def test_book_fanout_rows_measure_level_updates_beside_ticks() -> None:
    """N=100 load clients on `tickwire serve --book-depth 20`, four runs (about a minute)."""
    rows = book_fanout_rows(quick=False)
    assert [r["name"].split(", ")[1].split(":")[0] for r in rows] == ["JSON", "binary"]
    for r in rows:
        assert r["status"] == "ok" and r["baseline"] == "per tick, no books", r
        assert r["value"] > 0 and r["baseline_value"] > 0 and r["target"] == "<= 1x"
        assert r["level_updates_per_s"] > 10 * r["ticks_per_s"] > 0  # books were delivered


def test_book_fanout_is_not_in_quick() -> None:
    (row,) = book_fanout_rows(quick=True)
    assert row["status"] == "n/a" and "not in --quick" in row["note"]
