"""The recorder's book files and the replay's books, without a server: rotation keeps each part
whole (it starts with every book), a later snapshot replays as the changes it implies, and the
user's mistakes are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trio

from tests._support import serve_process, tickwire_cmd
from tickwire.feed.record import Recorder, Rotate
from tickwire.simulators import Universe
from tickwire.simulators._replay_book import ReplayBook
from tickwire.simulators.book import LEVEL_DTYPE
from tickwire.simulators.bookfile import read_book_parquet
from tickwire.simulators.errors import UserError

pytest.importorskip("pyarrow.parquet")


def _levels(rows: list[tuple[int, int, int, float, int]], ts: int = 1) -> np.ndarray:
    """LEVEL_DTYPE records from (sym, seq, side, price, size)."""
    out = np.zeros(len(rows), LEVEL_DTYPE)
    for k, (sym, seq, side, price, size) in enumerate(rows):
        out[k]["sym"], out[k]["seq"], out[k]["side"] = sym, seq, side
        out[k]["price"], out[k]["size"], out[k]["ts"] = price, size, ts + k
    return out


def test_each_rotated_part_starts_with_every_book_held(tmp_path: Path) -> None:
    uni = Universe.default()
    held = _levels([(0, 7, 0, 99.99, 100), (0, 7, 1, 100.01, 200)])
    rec = Recorder(
        tmp_path / "t.parquet",
        uni,
        rotate=Rotate(seconds=10),
        book_depth=20,
        books_now=lambda: held,
    )
    rec.write_book(_levels([(0, 8, 0, 99.98, 300)]), False, 1.0)
    rec.flush(11.0)  # rotates: part 2 opens with the books held now
    rec.write_book(_levels([(0, 9, 0, 99.98, 0)]), False, 12.0)
    paths = rec.close(12.0)
    assert sorted(paths) == sorted(
        str(tmp_path / f"t-000{i}{ext}") for i in (1, 2) for ext in (".parquet", ".book.parquet")
    )
    first = read_book_parquet(tmp_path / "t-0001.book.parquet")
    second = read_book_parquet(tmp_path / "t-0002.book.parquet")
    assert first.records["seq"].tolist() == [8] and not first.snapshot.any()
    assert second.records["seq"].tolist() == [7, 7, 9]
    assert second.snapshot.tolist() == [True, True, False]
    assert first.depth == 20 and second.names[0] == uni.symbols[0]


def test_book_records_go_to_parquet_only(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--book records to Parquet only.*\.csv"):
        Recorder(tmp_path / "t.csv", Universe.default(), book_depth=20)


def test_a_later_snapshot_replays_as_the_changes_that_make_it_ending_at_its_seq() -> None:
    start = _levels([(0, 10, 0, 9.99, 5), (0, 10, 1, 10.01, 5)], ts=1)
    change = _levels([(0, 11, 0, 9.98, 4)], ts=10)
    later = _levels([(0, 14, 0, 9.98, 4), (0, 14, 1, 10.02, 6)], ts=20)  # 9.99, 10.01 gone
    records = np.concatenate([start, change, later])
    snap = np.array([True, True, False, True, True])
    book = ReplayBook(records, snap, np.array([0.01]), depth=20)
    ladder = book.snapshot()[0]
    assert ladder["seq"] == 10 and ladder["bid_price"][0] == 9.99  # the first snapshot: before
    assert book.release(10).tolist() == change.tolist()
    out = book.release(None)
    assert out["seq"].tolist() == [12, 13, 14]  # three changes, contiguous, ending at 14
    got = {(int(r["side"]), round(float(r["price"]), 2), int(r["size"])) for r in out}
    assert got == {(0, 9.99, 0), (1, 10.01, 0), (1, 10.02, 6)}
    now = book.snapshot()[0]
    assert now["seq"] == 14 and now["bid_price"][0] == 9.98 and now["ask_size"][0] == 6


async def test_record_book_from_a_server_without_books_is_one_line(tmp_path: Path) -> None:
    with trio.fail_after(60):
        with serve_process("--symbols", "2", "--book-depth", "0") as (_, url):
            done = await trio.run_process(
                tickwire_cmd("record", url, "--out", str(tmp_path / "t.parquet"), "--book"),
                capture_stderr=True,
                check=False,
            )
    assert done.returncode != 0
    lines = done.stderr.decode().strip().splitlines()
    assert "keeps no order books" in lines[-1] and "Traceback" not in done.stderr.decode()


def test_a_recording_replays_its_books_at_its_depth_or_less(tmp_path: Path) -> None:
    from tickwire.simulators import Market
    from tickwire.simulators.replay import open_replay

    uni = Universe.default()
    batch = Market(uni, seed=1, start_ns=0).step(10**8)
    rec = Recorder(tmp_path / "t.parquet", uni, book_depth=20)
    rec.write(batch, 0.0)
    bid = float(batch["bid"][batch["sym"] == 0][0])
    rec.write_book(_levels([(0, 7, 0, bid, 100)], ts=int(batch["ts"][0])), True, 0.0)
    rec.close(0.0)
    depth = {d: open_replay([tmp_path / "t.parquet"], book_depth=d).book for d in (None, 5, 50)}
    assert {d: b.depth for d, b in depth.items() if b is not None} == {None: 20, 5: 5, 50: 20}
    with pytest.raises(UserError, match=r"^--loop does not replay order books"):
        open_replay([tmp_path / "t.parquet"], loop=True)


def test_record_book_to_a_csv_is_one_line_before_connecting(tmp_path: Path) -> None:
    import subprocess

    out = subprocess.run(
        tickwire_cmd("record", "ws://127.0.0.1:9/v1", "--out", str(tmp_path / "t.csv"), "--book"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "Traceback" not in out.stderr
    line = out.stderr.strip()
    assert "\n" not in line and line.endswith(
        f"--book records to Parquet only: --out must end in .parquet, not {tmp_path / 't.csv'}"
    )
