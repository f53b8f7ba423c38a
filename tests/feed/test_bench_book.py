"""The order book's bench rows measure real work and carry their baselines (speed not asserted)."""

from __future__ import annotations

import math

from tickwire.feed.bench.book import book_rows
from tickwire.feed.bench.bookclient import book_client_rows


def test_book_rows_measure_books_beside_the_market_without() -> None:
    step, updates = book_rows(quick=True)
    assert step["name"].startswith("market step with books (20 levels), default universe")
    assert step["baseline"] == "without books" and step["target"] == "<= 2x"
    assert step["value"] > step["baseline_value"] > 0 and math.isfinite(step["ratio"])
    assert step["level_updates_per_sim_s"] > 10 * step["ticks_per_sim_s"] > 0
    assert updates["name"] == "book level updates generated, 500 symbols: updates/s per core"
    assert updates["value"] > 0 and updates["level_updates"] > 100_000
    assert updates["target"] == ">= 1M/core" and updates["baseline"] == "ticks/s without books"


def test_client_book_row_applies_the_servers_frames_beside_json() -> None:
    (r,) = book_client_rows(quick=True)
    assert r["name"] == "client library: book level updates applied per second, binary"
    assert r["baseline"] == "JSON" and r["target"] == ">= 1M"
    assert r["value"] > 0 and r["baseline_value"] > 0 and r["level_updates"] > 10_000
