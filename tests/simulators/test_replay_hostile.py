"""Hostile or broken replay files: one line naming the file and row, bounded memory, no traceback.

Each case was an attack on `tickwire serve --replay`: an empty `.npy`, a header-only CSV, a
timestamp beyond int64 (`AssertionError: unreachable`) and 70,000 symbols gave tracebacks; a gzip
bomb peaked at 4 GiB before its error; NaN prices became 0.0, and a crossed quote or a size that
wraps passed silently. Rows that parse but cannot be replayed are skipped and counted in one log
line, or refused with `--strict`.
"""

from __future__ import annotations

import gzip
import logging
import os
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from _support import tickwire_cmd

from tickwire.feed.cli.main import main
from tickwire.simulators._replay_rows import MAX_GZIP_RATIO
from tickwire.simulators.errors import UserError
from tickwire.simulators.replay import load
from tickwire.simulators.ticks import TICK_DTYPE

QUOTES = "timestamp,symbol,bid_price,bid_amount,ask_price,ask_amount\n"
T0 = 1_700_000_000_000_000_000
OWN = "symbol," + ",".join(TICK_DTYPE.names or ()) + "\n"
UNIVERSE = "symbol,name,sector,price,tick_size,lot_size,activity\nA,A,Other,10,0.01,1,1\n"


def _own_row(**kw: object) -> str:
    row = {"ts": T0, "seq": 1, "bid": 1.0, "ask": 2.0, "last": 1.5, "volume": 10, "sym": 0}
    row |= {"flags": 0, "bid_size": 1, "ask_size": 1, "last_size": 1} | kw
    return "A," + ",".join(str(row[f]) for f in TICK_DTYPE.names or ()) + "\n"


def _npy(tmp_path: Path, name: str, array: np.ndarray | None) -> Path:
    path = tmp_path / f"{name}.npy"
    if array is None:
        path.write_bytes(b"")
    else:
        np.save(path, array)
    (tmp_path / f"{name}.universe.csv").write_text(UNIVERSE)
    return path


def _serve(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """`tickwire serve ARGV` in this process: must refuse with exit 2 and one line."""
    assert main(["serve", "--port", "0", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tickwire: error: "), err
    return err.strip()


def test_empty_and_misshapen_npy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zero = _npy(tmp_path, "zero", None)
    assert f"{zero}: not a readable .npy file" in _serve(["--replay", str(zero)], capsys)
    flat = _npy(tmp_path, "flat", np.zeros((), TICK_DTYPE))
    assert "(a 0-d array, not a list)" in _serve(["--replay", str(flat)], capsys)
    square = _npy(tmp_path, "square", np.zeros((2, 2), TICK_DTYPE))
    assert "(a 2-d array, not a list)" in _serve(["--replay", str(square)], capsys)
    empty = _npy(tmp_path, "empty", np.zeros(0, TICK_DTYPE))
    assert "nothing to replay: no ticks in" in _serve(["--replay", str(empty)], capsys)


def test_header_only_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "q.csv"
    path.write_text(QUOTES)
    assert _serve(["--replay", str(path)], capsys) == (
        f"tickwire: error: nothing to replay: no ticks in {path} (a header alone, or only rows"
        " that were skipped)"
    )


def test_more_symbols_than_the_wire_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "q.csv"
    path.write_text(QUOTES + "".join(f"{T0 + i},S{i:05d},1,1,2,1\n" for i in range(70_000)))
    assert _serve(["--replay", str(path)], capsys) == (
        f"tickwire: error: {path} line 65538: symbol 'S65536' is one more than the 65536 a feed"
        " serves (the wire's symbol id is 16 bits); split the data or keep fewer symbols"
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (QUOTES + f"{T0},A,1,1,2,1\n99999999999999999999,A,1,1,2,1\n", "line 3: timestamp out"),
        (QUOTES + f"{T0},A,nan,1,2,1\n", "line 2: bid is not a number from -1e+12 to 1e+12"),
        (QUOTES + f"{T0},A,3,1,2,1\n", "line 2: crossed quote (bid above ask)"),
        (QUOTES + f"{T0},A,1,1e300,2,1\n", "line 2: bid_size out of range (0 to 4294967295)"),
        (QUOTES + f"{T0},A,,1,2,1\n", "line 2: neither a quote (bid and ask) nor a trade"),
        (QUOTES + "2300-01-01T00:00:00,A,1,1,2,1\n", "line 2: timestamp out of range"),
        (OWN + _own_row(volume=2**64), "line 2: volume out of range (0 to 18446744073709551615)"),
        (OWN + _own_row(bid_size=5_000_000_000), "line 2: bid_size out of range (0 to 4294967295)"),
        (OWN + _own_row(last="inf"), "line 2: last is not a number from -1e+12 to 1e+12"),
        (QUOTES + f"{T0},A,1e300,1,1e301,1\n", "line 2: bid is not a number from -1e+12 to"),
        (QUOTES + f"{T0}, ,1,1,2,1\n", "line 2: no symbol"),
        (OWN + _own_row().replace("A,", ",", 1), "line 2: no symbol"),
    ],
    ids=[
        "ts-beyond-int64",
        "nan",
        "crossed",
        "huge-size",
        "no-price",
        "year-2300",
        "volume-2**64",
        "size-wraps-u4",
        "own-inf",
        "price-1e300",
        "no-symbol",
        "own-no-symbol",
    ],
)
def test_strict_refuses_the_first_bad_row(
    tmp_path: Path, text: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(text)
    err = _serve(["--replay", str(path), "--strict"], capsys)
    assert err.startswith(f"tickwire: error: {path} {says}"), err
    assert err.endswith("--strict refuses the file (without it such rows are skipped and counted)")


def test_bad_rows_are_skipped_counted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "q.csv"
    path.write_text(
        QUOTES
        + f"{T0},A,1.00,1,1.01,1\n"
        + f"{T0 + 1},A,nan,1,1.01,1\n"  # was replayed with a bid of 0.0
        + f"{T0 + 2},A,1.02,1,1.01,1\n"  # crossed: was replayed as it is
        + "99999999999999999999,A,1.00,1,1.01,1\n"  # beyond int64: was a traceback
        + f"{T0 + 3},A,1.00,1e300,1.01,1\n"  # a size that wraps the volume
        + f"{T0 + 4},A,1.01,2,1.02,3\n"
        + f"{T0 + 5},A,1.01,2,inf,3\n"
    )
    with caplog.at_level(logging.WARNING, "tickwire.replay"):
        records, _ = load([path])
    assert records["ts"].tolist() == [T0, T0 + 4]
    assert records["bid"].tolist() == [1.0, 1.01] and records["seq"].tolist() == [1, 2]
    [line] = [r.getMessage() for r in caplog.records]
    numbers = "is not a number from -1e+12 to 1e+12"
    assert line == (
        f"replay file {path}: skipped 5 bad rows: 1 timestamp out of range (1970 to 2262)"
        f" (first at line 5); 1 bid {numbers} (first at line 3); 1 ask {numbers} (first at"
        " line 8); 1 bid_size out of range (0 to 4294967295) (first at line 6); 1 crossed quote"
        " (bid above ask) (first at line 4); --strict refuses such files instead"
    )


def test_npy_records_are_screened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    records = np.zeros(3, TICK_DTYPE)
    records["ts"] = T0 + np.arange(3)
    records["bid"], records["ask"] = [1.0, np.nan, 3.0], [2.0, 2.0, 2.0]
    path = _npy(tmp_path, "ticks", records)
    with caplog.at_level(logging.WARNING, "tickwire.replay"):
        got, _ = load([path])
    assert got["ts"].tolist() == [T0]
    said = caplog.records[0].getMessage()
    assert (
        "skipped 2 bad rows: 1 bid is not a number from -1e+12 to 1e+12 (first at record 2)" in said
    )
    with pytest.raises(UserError, match=r"ticks.npy record 2: bid is not a number from -1e\+12"):
        load([path], strict=True)


def test_gzip_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.csv.gz"
    with gzip.open(path, "wb", 9) as f:  # 64 MiB of zeros on one line, ~64 KiB on disk
        f.write(QUOTES.encode())
        for _ in range(64):
            f.write(b"0" * (1 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(UserError, match=r"bomb.csv.gz line 2: longer than 65536 bytes"):
            load([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"peak {peak / 2**20:.1f} MiB"  # before: the whole line, ~2 x 64 MiB


def test_gzip_of_valid_rows_past_the_ratio_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv.gz"
    with gzip.open(path, "wb") as f:  # ~15 MB of one repeated row: ~1000x, no market data
        f.write(QUOTES.encode())
        f.write(f"{T0},A,1,1,2,1\n".encode() * 500_000)
    size = path.stat().st_size
    assert size * MAX_GZIP_RATIO < 15_000_000 / 2  # a bomb by the ratio
    tracemalloc.start()
    try:
        with pytest.raises(UserError, match=f"expands more than {MAX_GZIP_RATIO}x"):
            load([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # refused as soon as what was read expands past the ratio (a MiB or two of text, one chunk
    # of rows parsed: ~10 MiB), not after all 15 MB of it (before: ~250 MiB of row lists)
    assert peak < 16 << 20, f"peak {peak / 2**20:.1f} MiB of a {size} byte file"


def test_strict_is_a_config_key_an_env_var_and_printed(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text("strict = true\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWIRE_")}

    def printed(*args: str, **extra: str) -> str:
        cmd = tickwire_cmd("serve", "--print-config", *args)
        out = subprocess.run(cmd, capture_output=True, text=True, env=env | extra, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert f"strict = true  # file {cfg}" in printed("--config", str(cfg))
    assert "strict = true  # env TICKWIRE_STRICT" in printed(TICKWIRE_STRICT="1")
    assert "strict = false  # default" in printed()


def test_loop_refuses_volumes_that_would_wrap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(OWN + _own_row(volume=2**64 - 10, flags=1))
    err = _serve(["--replay", str(path), "--loop"], capsys)
    assert err.startswith("tickwire: error: --loop keeps seq and volume increasing, and this")
    assert err.endswith("replay it without --loop")


def test_parquet_column_wider_than_its_field_is_screened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    records = np.zeros(2, TICK_DTYPE)
    records["ts"], records["bid"], records["ask"] = [T0, T0 + 1], 1.0, 2.0
    columns = {"symbol": ["A", "A"]} | {f: records[f] for f in TICK_DTYPE.names or ()}
    columns["volume"] = np.array([5, -1], np.int64)  # was written into u8 as 2**64 - 1
    path = tmp_path / "ticks.parquet"
    pq.write_table(pa.table(columns), path)
    with caplog.at_level(logging.WARNING, "tickwire.replay"):
        got, _ = load([path])
    assert got["volume"].tolist() == [5]
    said = caplog.records[0].getMessage()
    assert "1 a value out of its field's range (first at record 2)" in said
