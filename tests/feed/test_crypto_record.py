"""`tickwire record` of a real `tickwire serve --universe crypto`, then `serve --replay` of the
file: the quantities (units x size_unit) come back exact (the universe, with each symbol's
size_unit, is in the Parquet file's metadata)."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import numpy as np
import trio
from _support import serve_process, tickwire_cmd

from tickwire.feed import Batch, connect
from tickwire.simulators.replay import load
from tickwire.simulators.universe import Universe

DEADLINE_S = 60
SIZES = ("bid_size", "ask_size", "last_size")


def _quantities(records: np.ndarray, universe: Universe, fields=SIZES) -> dict:
    """(symbol, ts) -> the exact quantities of `fields` (Decimal of units x size_unit)."""
    assert universe.size_unit is not None
    units = [Decimal(repr(float(u))) for u in universe.size_unit]
    return {
        (universe.symbols[int(r["sym"])], int(r["ts"])): tuple(
            int(r[f]) * units[int(r["sym"])] for f in fields
        )
        for r in records
    }


def test_record_and_replay_keep_exact_quantities(tmp_path: Path) -> None:
    with serve_process("--universe", "crypto", "--drain-min-s", "0") as (_, url):
        out = subprocess.run(
            tickwire_cmd("record", url, "--out", str(tmp_path / "r.parquet"), "--count", "3000"),
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
        )
        assert out.returncode == 0, out.stderr
    parquet, pu = load([tmp_path / "r.parquet"])
    assert pu.size_unit is not None and pu.size_unit[pu.symbols.index("BTC-USD")] == 0.00001
    assert pu.size_unit[pu.symbols.index("XRP-USD")] == 0.1
    exact = _quantities(parquet, pu, (*SIZES, "volume"))
    btc = [q for (sym, _), q in exact.items() if sym == "BTC-USD"]
    assert any(q[2] % 1 for q in btc)  # fractional quantities, not whole coins

    # The Parquet file served again: the symbols reply restores every size_unit, and the
    # ticks' units x size_unit are the recorded quantities.
    async def replayed(url: str) -> tuple[Universe, np.ndarray]:
        got = []
        with trio.fail_after(DEADLINE_S):
            async with connect(url) as feed:
                universe = Universe.from_reference(await feed.symbols())
                await feed.subscribe("*", snapshot=False, mode="all")
                async for event in feed:
                    if isinstance(event, Batch):
                        got.append(event.ticks)
                        if sum(len(b) for b in got) >= 200:
                            break
        return universe, np.concatenate(got)

    with serve_process("--replay", str(tmp_path / "r.parquet"), "--drain-min-s", "0") as (_, url):
        universe, ticks = trio.run(replayed, url)
    assert np.array_equal(universe.size_unit, pu.size_unit)
    served = _quantities(ticks, universe, (*SIZES, "volume"))
    assert len(served.keys() & exact.keys()) >= 100
    assert all(exact[k] == q for k, q in served.items() if k in exact)
