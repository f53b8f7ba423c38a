"""The bus's order book bench rows measure real work beside their baselines (speed not asserted)."""

from __future__ import annotations

import math

from tickwire.feed.bench._busbook import bus_book_rows


def test_bus_book_rows_measure_level_updates_beside_ticks() -> None:
    write, mirror = bus_book_rows(quick=True)
    assert write["name"].startswith("bus write with books (20 levels), default universe")
    assert write["baseline"] == "per tick without books" and write["target"] == "<= 1x"
    assert write["level_updates"] > 10 * write["ticks"] > 0
    assert write["bytes_per_update"] > 40 and math.isfinite(write["value"])
    assert write["baseline_value"] > 0
    assert mirror["value"] > 0 and mirror["mirror_in_sync"] is True
