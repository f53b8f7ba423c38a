"""Compare a message with a venue's documented example: same fields, same types, same formats."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from tickwire.simulators.market import Market
from tickwire.simulators.ticks import TICK_DTYPE, TickBatch, TickFlag
from tickwire.simulators.universe import Universe

START_NS = 1_700_000_035 * 10**9  # 22:13:55 UTC
DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(\d{1,9}))?Z$")


def _kind(value: Any) -> str:
    if isinstance(value, str):
        if RFC3339.match(value):
            frac = RFC3339.match(value).group(2)  # type: ignore[union-attr]
            return f"time{len(frac) if frac else 0}"
        return "decimal" if DECIMAL.match(value) else "str"
    return type(value).__name__


def assert_shape(ours: Any, documented: Any, where: str = "") -> None:
    """`ours` has the documented example's fields with the same types and string formats.

    A documented time with 3 fractional digits (ms) accepts more digits in ours only if the
    example is known to be truncated; callers pass the example as the venue shows it.
    """
    if isinstance(documented, dict):
        assert isinstance(ours, dict), f"{where}: {ours!r} is not an object"
        assert set(ours) == set(documented), (
            f"{where}: fields {sorted(ours)} != {sorted(documented)}"
        )
        for key, value in documented.items():
            assert_shape(ours[key], value, f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(ours, list), f"{where}: {ours!r} is not a list"
        for item in ours:
            assert_shape(item, documented[0], f"{where}[]")
    else:
        assert _kind(ours) == _kind(documented), f"{where}: {ours!r} is not like {documented!r}"


def market_batches(
    universe: Universe | None = None, seconds: int = 8, seed: int = 3
) -> tuple[Universe, list[tuple[TickBatch, int]]]:
    """A real market's batches, one per second of event time, with the time each stepped to.

    It starts 5 s before a whole minute, so `seconds` > 5 ends a minute (and its bars).
    """
    u = universe or Universe.default()
    start = START_NS
    market = Market(u, seed=seed, start_ns=start)
    out = []
    for i in range(1, seconds + 1):
        now = start + i * 10**9
        out.append((market.step(now), now))
    return u, out


def records(*rows: dict[str, Any]) -> TickBatch:
    """A hand-made batch: each row gives some TICK_DTYPE fields, the rest are a plain quote."""
    batch = np.zeros(len(rows), TICK_DTYPE)
    for i, row in enumerate(rows):
        base = {"bid": 99.99, "ask": 100.01, "last": 100.0, "bid_size": 100, "ask_size": 200}
        for k, v in {**base, **row}.items():
            batch[i][k] = v
    return batch


TRADE_BUY = int(TickFlag.TRADE | TickFlag.BUY)
TRADE_SELL = int(TickFlag.TRADE | TickFlag.SELL)


def trade_seqs(universe: Universe, batches: list[tuple[TickBatch, int]], symbol: str) -> list[int]:
    """The `seq` of each of `symbol`'s trade records in `batches`: its trade ids, in order."""
    ticks = np.concatenate([b for b, _ in batches])
    mine = ticks[(ticks["sym"] == universe.index(symbol)) & (ticks["flags"] & TickFlag.TRADE != 0)]
    return [int(s) for s in mine["seq"]]
