"""`tickwire record`: the Recorder (row groups, rotation, complete files) and the real command."""

from __future__ import annotations

import signal
import subprocess

import numpy as np
import pytest

from tests._support import serve_process, tickwire_cmd
from tickwire.feed.record import Recorder, Rotate, parse_rotate
from tickwire.simulators import Market, Universe
from tickwire.simulators.errors import UserError
from tickwire.simulators.ticks import TICK_DTYPE

pq = pytest.importorskip("pyarrow.parquet")


def _batches(n: int, step_ms: int = 100) -> list[np.ndarray]:
    market = Market(Universe.default(), seed=2, start_ns=0)
    return [market.step((k + 1) * step_ms * 1_000_000).copy() for k in range(n)]


def _read_parquet(path) -> np.ndarray:
    table = pq.read_table(path)
    out = np.zeros(table.num_rows, TICK_DTYPE)
    for f in TICK_DTYPE.names:
        out[f] = table.column(f).to_numpy()
    return out


def test_parse_rotate():
    assert parse_rotate("1h") == Rotate(seconds=3600.0)
    assert parse_rotate("30m") == Rotate(seconds=1800.0)
    assert parse_rotate("100MB") == Rotate(bytes=100_000_000)
    for bad in ("", "1", "-1h", "0m", "10 parsecs", "1.5.2h"):
        with pytest.raises(UserError, match="--rotate takes"):
            parse_rotate(bad)


def test_universe_from_the_symbols_reply_round_trips():
    uni = Universe.default()
    back = Universe.from_reference(list(reversed(uni.reference())))
    assert back.symbols == uni.symbols and np.array_equal(back.tick_size, uni.tick_size)


def test_one_row_group_per_second_and_a_complete_file(tmp_path):
    batches = _batches(30)
    rec = Recorder(tmp_path / "t.parquet", Universe.default(), now_s=0.0)
    for k, b in enumerate(batches):
        rec.write(b, now_s=k * 0.1)
    rec.close(3.0)
    got = _read_parquet(tmp_path / "t.parquet")
    assert got.tobytes() == np.concatenate(batches).tobytes()
    assert pq.ParquetFile(tmp_path / "t.parquet").num_row_groups in (3, 4)
    assert rec.ticks == rec.written == len(got)


@pytest.mark.parametrize("ext", [".parquet", ".npy", ".csv"])
def test_rotation_by_time_makes_complete_parts_in_order(tmp_path, ext):
    batches = _batches(40)
    rec = Recorder(tmp_path / f"t{ext}", Universe.default(), rotate=Rotate(seconds=1.0))
    for k, b in enumerate(batches):
        rec.write(b, now_s=k * 0.1)
    paths = rec.close(4.0)
    parts = sorted(tmp_path.glob(f"t-*{ext}"))
    assert [p.name for p in parts][:2] == [f"t-0001{ext}", f"t-0002{ext}"] and len(parts) >= 3
    assert all(str(p) in paths for p in parts)
    if ext == ".parquet":
        got = np.concatenate([_read_parquet(p) for p in parts])
    elif ext == ".npy":
        got = np.concatenate([np.load(p) for p in parts])
    else:
        got = np.concatenate(
            [np.loadtxt(p, delimiter=",", skiprows=1, usecols=2, ndmin=1) for p in parts]
        )  # the seq column
        assert got.astype(np.uint64).tolist() == np.concatenate(batches)["seq"].tolist()
        return
    assert got.tobytes() == np.concatenate(batches).tobytes()


def test_rotation_by_size(tmp_path):
    rec = Recorder(tmp_path / "t.csv", Universe.default(), rotate=Rotate(bytes=20_000))
    for k, b in enumerate(_batches(30)):
        rec.write(b, now_s=k * 1.0)  # a flush per batch
    rec.close(31.0)
    parts = sorted(tmp_path.glob("t-*.csv"))
    assert len(parts) >= 3
    assert all(p.stat().st_size < 20_000 + 64 * 2000 for p in parts)


def test_a_bad_out_is_one_line(tmp_path):
    with pytest.raises(UserError, match="--out must end in"):
        Recorder(tmp_path / "t.txt", Universe.default())


def test_the_real_command_records_and_stops_cleanly_on_sigint(tmp_path):
    out = tmp_path / "live.parquet"
    with serve_process() as (_, url):
        proc = subprocess.Popen(
            tickwire_cmd("record", url, "--out", str(out)),
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the warning, once connected and recording
        assert "recording to" in first and "Ctrl+C" in first
        while "recorded" not in (line := proc.stderr.readline()):  # progress, every 5 s here
            assert line, "recorder ended early"
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=20)[1]
    assert proc.returncode == 130 and "Traceback" not in rest  # 130: stopped by Ctrl+C
    assert "tickwire record: stopped by Ctrl+C: recorded " in rest
    got = _read_parquet(out)
    assert len(got) > 1000 and np.all(np.diff(got["ts"]) >= 0)
    for s in np.unique(got["sym"]):  # every update of each symbol, once, in order
        assert np.all(np.diff(got["seq"][got["sym"] == s].astype(np.int64)) == 1)


def test_record_takes_the_server_as_url_or_as_url_flag(tmp_path):
    with serve_process() as (_, url):
        for how in (["--url", url], [url], [url, "--url", url]):
            out = tmp_path / f"n{len(how)}.csv"
            ran = subprocess.run(
                tickwire_cmd("record", *how, "--out", str(out), "--count", "3"),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert ran.returncode == 0, ran.stderr
            assert len(out.read_text().splitlines()) == 4  # the header and 3 ticks
        both = subprocess.run(
            tickwire_cmd("record", url, "--url", "ws://elsewhere/v1", "--out", str(out)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert both.returncode == 2 and both.stderr.count("\n") == 1
    assert "two servers given" in both.stderr and "Traceback" not in both.stderr
