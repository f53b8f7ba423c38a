"""`tickwire simulate` as the real console script: files read back, one-line errors.

Sizes are tiny (a few symbols, under a minute of market time): these tests check the command and
its files, not the model's statistics.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess

import numpy as np
import pytest
from _support import tickwire_cmd

from tickwire.simulators import TICK_DTYPE, Universe
from tickwire.simulators.cli import START_NS, add_market_arguments, universe_from_args

SMALL = ("--symbols", "20", "--duration", "30s", "--seed", "3")


def _run(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tickwire_cmd("simulate", *args), capture_output=True, text=True, timeout=60, cwd=cwd
    )


def _ok(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    out = _run(*args, cwd=cwd)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return out


def _check_records(rec: np.ndarray, n_symbols: int) -> None:
    assert rec.dtype == TICK_DTYPE and len(rec) > 0
    assert (rec["bid"] < rec["ask"]).all() and (rec["bid"] > 0).all()
    assert (np.diff(rec["ts"]) >= 0).all()  # event order
    assert rec["ts"][0] >= START_NS and rec["ts"][-1] <= START_NS + 30 * 10**9
    assert rec["sym"].max() < n_symbols


def test_npy_is_the_records_with_the_universe_beside_it(tmp_path):
    out = _ok(*SMALL, "--out", "ticks.npy", cwd=tmp_path)
    rec = np.load(tmp_path / "ticks.npy")
    _check_records(rec, 20)
    universe = Universe.load(tmp_path / "ticks.universe.csv")
    assert universe.reference() == Universe.synthetic(20, seed=3).reference()
    summary = out.stdout.strip().splitlines()
    assert len(summary) == 1 and f"{len(rec):,} ticks, 20 symbols" in summary[0]
    assert "ticks.npy" in summary[0] and "ticks.universe.csv" in summary[0]
    assert out.stderr == ""  # no progress bar when stderr is not a terminal

    # same flags, same bytes
    _ok(*SMALL, "--out", "again.npy", cwd=tmp_path)
    assert (tmp_path / "again.npy").read_bytes() == (tmp_path / "ticks.npy").read_bytes()


def test_csv_has_the_symbol_then_every_tick_field(tmp_path):
    _ok(*SMALL, "--out", str(tmp_path / "ticks.csv"))
    with (tmp_path / "ticks.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["symbol", *TICK_DTYPE.names]
    names = Universe.synthetic(20, seed=3).symbols
    rec = np.array([tuple(r[1:]) for r in rows[1:]], dtype=TICK_DTYPE)  # text -> typed fields
    _check_records(rec, 20)
    assert [r[0] for r in rows[1:]] == [names[s] for s in rec["sym"]]


def test_parquet_reads_back(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    _ok(*SMALL, "--activity", "0.5", "--out", str(tmp_path / "ticks.parquet"))
    table = pq.read_table(tmp_path / "ticks.parquet")
    assert table.column_names == ["symbol", *TICK_DTYPE.names]
    rec = np.zeros(table.num_rows, TICK_DTYPE)
    for name in TICK_DTYPE.names:
        rec[name] = table.column(name).to_numpy()
    _check_records(rec, 20)
    names = Universe.synthetic(20, seed=3).symbols
    assert table.column("symbol").to_pylist()[:50] == [names[s] for s in rec["sym"][:50]]
    assert b"tickwire.universe" in table.schema.metadata


def test_nothing_to_keep_is_an_error_before_any_work(tmp_path):
    plain = _run("--symbols", "5", "--duration", "30d", cwd=tmp_path)  # would take minutes
    assert plain.returncode == 2 and plain.stdout == ""
    assert plain.stderr.strip().splitlines() == [
        "tickwire: error: nothing to keep: pass --out FILE (.csv, .npy or .parquet) for the "
        "ticks, --report for the stylized facts, --figure FILE or --book-out FILE"
    ]
    assert list(tmp_path.iterdir()) == []


def test_report(tmp_path):
    report = _ok("--symbols", "5", "--duration", "10s", "--report")
    lines = report.stdout.strip().splitlines()
    # the lead's stylized module may or may not be there yet: a table, or one line saying so
    assert lines[0].split()[:2] == ["statistic", "value"] or "not available" in lines[0]
    assert "ticks, 5 symbols" in lines[-1]


def test_a_short_report_marks_what_it_cannot_measure_na_not_fail():
    """Returns need a whole session: in 10 minutes they are n/a, neither met nor missed."""
    report = _ok("--symbols", "5", "--duration", "10m", "--activity", "0.05", "--report")
    lines = report.stdout.splitlines()
    rows = [line.split() for line in lines if line.endswith(("pass", "FAIL", "n/a"))]
    returns = [row for row in rows if "returns," in row or "returns|," in row]
    assert len(returns) >= 4 and all(row[-2:] != ["n/a", "FAIL"] for row in returns)
    assert all(row[-1] == "n/a" for row in returns), report.stdout
    measured = sum(line.endswith(("pass", "FAIL")) for line in lines)
    summary = next(line for line in lines if "statistics pass" in line)
    assert summary.split(";")[0].endswith(f" of {measured} statistics pass"), report.stdout
    assert "n/a: the run is too short" in summary


def test_universe_file_is_used(tmp_path):
    (tmp_path / "u.toml").write_text(
        '[[symbol]]\nsymbol = "AAA"\nprice = 10\n\n[[symbol]]\nsymbol = "BBB"\nprice = 20\n'
    )
    _ok("--universe", "u.toml", "--duration", "10s", "--out", "t.npy", cwd=tmp_path)
    assert (tmp_path / "t.universe.csv").read_text().splitlines()[1].startswith("AAA,AAA,Other,")
    assert set(np.unique(np.load(tmp_path / "t.npy")["sym"])) <= {0, 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--duration", "5x"), "expected a number followed by s, m, h or d, e.g. 5d, got '5x'"),
        (("--duration", "0s"), "--duration: must be at least 1s"),
        (("--symbols", "0"), "--symbols: must be a whole number from 1 to 65536, got '0'"),
        (("--symbols", "70000"), "--symbols: must be a whole number from 1 to 65536"),
        (("--activity", "-1"), "--activity: must be a finite number > 0, got '-1'"),
        (("--session", "12h"), "--session: invalid choice: '12h'"),
        (("--symbols", "3", "--universe", "u.csv"), "not allowed with argument --symbols"),
        (("--out", "ticks.txt"), "--out must end in .csv, .npy or .parquet, got 'ticks.txt'"),
        (("--out", "no/such/dir/t.csv"), "cannot write no/such/dir/t.csv"),
        (("--universe", "missing.csv"), "universe file missing.csv not found"),
        (
            ("--universe", "crpyto"),
            "--universe crpyto: no such built-in universe (default, crypto)",
        ),
        (("--universe", "bad.csv"), "bad.csv line 3, field price: must be a number > 0, got 'x'"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, args, message):
    (tmp_path / "bad.csv").write_text("symbol,price\nA,1\nB,x\n")
    out = _run(*args, *(() if "--duration" in args else ("--duration", "1s")), cwd=tmp_path)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]  # nothing written


def test_market_arguments_for_serve():
    parser = argparse.ArgumentParser()
    add_market_arguments(parser)
    args = parser.parse_args([])
    assert (args.seed, args.symbols, args.universe, args.activity, args.session) == (
        0,
        None,
        None,
        1.0,
        "6.5h",
    )
    assert universe_from_args(args) is None
    args = parser.parse_args(["--symbols", "7", "--seed", "2", "--activity", "0.5"])
    universe = universe_from_args(args)
    assert universe is not None and len(universe) == 7 and args.activity == 0.5


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_is_a_user_error(tmp_path):
    (tmp_path / "full.csv").symlink_to("/dev/full")
    out = _run("--symbols", "50", "--duration", "20s", "--out", "full.csv", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == "tickwire: error: cannot write full.csv: No space left on device"


def test_crypto_universe_with_books_writes_exact_sizes_and_level_updates(tmp_path):
    from tickwire.simulators.book import LEVEL_DTYPE

    out = _ok(
        "--universe",
        "crypto",
        "--books",
        "--book-depth",
        "25",
        "--duration",
        "5s",
        "--out",
        "t.npy",
        "--book-out",
        "b.npy",
        cwd=tmp_path,
    )
    universe = Universe.load(tmp_path / "t.universe.csv")
    assert universe.kinds[0] == "crypto" and universe.lot_size[0] == 0.00001
    ticks, levels = np.load(tmp_path / "t.npy"), np.load(tmp_path / "b.npy")
    assert levels.dtype == LEVEL_DTYPE and len(levels) > 1000
    assert "book level updates" in out.stdout and f"{len(levels):,}" in out.stdout
    # a day of crypto is 24 h: the run starts at the open and trades all along
    assert ticks["ts"][-1] <= START_NS + 5 * 10**9
    last = ticks[ticks["sym"] == 0][-1]
    mine = (levels["sym"] == 0) & (levels["side"] == 1) & (levels["ts"] <= last["ts"])
    top = levels[mine & (levels["price"] == last["ask"])]
    assert int(top["size"][-1]) == int(last["ask_size"])  # the quote is the book's top


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--book-depth", "0"), "--book-depth: must be a whole number of levels from 1 to 1000"),
        (("--book-depth", "5000"), "--book-depth: must be a whole number of levels from 1 to"),
        (("--book-out", "b.csv"), "--book-out must end in .npy, got 'b.csv'"),
    ],
)
def test_book_flag_errors_are_one_line(tmp_path, args, message):
    out = _run("--symbols", "3", "--duration", "1s", *args, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr
