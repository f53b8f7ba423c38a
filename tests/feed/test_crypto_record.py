"""`tickwire record` of a real `tickwire serve --universe crypto`, then `serve --replay` of the
files: the quantities (units x size_unit) come back exact, from Parquet (the universe, with each
symbol's size_unit, in the file's metadata) and from CSV (sizes written as the asset's decimals)."""

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
        # Both files record the same stream at once: the same ticks, by (symbol, ts).
        procs = [
            subprocess.Popen(
                tickwire_cmd("record", url, "--out", str(tmp_path / name), "--count", "3000"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("r.parquet", "r.csv")
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=DEADLINE_S)
            assert proc.returncode == 0, err
    parquet, pu = load([tmp_path / "r.parquet"])
    csv, cu = load([tmp_path / "r.csv"])
    with open(tmp_path / "r.csv") as f:
        assert any(line.startswith("BTC-USD,") and ",0.00" in line for line in f)  # quantities
    assert pu.size_unit is not None and pu.size_unit[pu.symbols.index("BTC-USD")] == 0.00001
    assert pu.size_unit[pu.symbols.index("XRP-USD")] == 0.1
    exact = _quantities(parquet, pu, (*SIZES, "volume"))
    from_csv = _quantities(csv, cu, (*SIZES, "volume"))
    both = exact.keys() & from_csv.keys()
    assert len(both) > 1000
    wrong = [(k, exact[k], from_csv[k]) for k in both if exact[k] != from_csv[k]]
    assert not wrong, (len(wrong), wrong[:3])
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


def test_a_bad_quantity_in_our_csv_is_one_line(tmp_path: Path) -> None:
    from tickwire.simulators.errors import UserError
    from tickwire.simulators.ticks import TICK_DTYPE

    head = ",".join(["symbol", *(TICK_DTYPE.names or ())])
    row = "BTC-USD,1,1,9.0,9.5,9.0,{},0,1,0.00105,0.0021,0.001"
    path = tmp_path / "q.csv"
    path.write_text(f"{head}\n{row.format('0.00105')}\n{row.format('1.2.3')}\n")
    try:
        load([path])
    except UserError as exc:
        assert str(exc) == (
            f"{path} line 3: field 'volume': expected a quantity (digits, at most 12 decimals),"
            " got '1.2.3'"
        )
    else:
        raise AssertionError("a bad quantity was accepted")
    path.write_text(f"{head}\n{row.format('0.00105')}\n")
    records, universe = load([path])
    assert universe.size_unit is not None and universe.size_unit[0] == 0.00001
    assert records[["volume", "bid_size", "ask_size", "last_size"]].tolist() == [
        (105, 105, 210, 100)
    ]
