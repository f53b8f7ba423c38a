"""A Tardis book file replayed alone is streamed in blocks: the same bytes as the whole-file
replay (ticks, level updates, snapshots, depth, universe), whatever the block size, at speed 0
and in time, within --start/--end, with timestamps out of order; and its memory does not grow
with the file."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest

from tickwire.simulators import _tardis_gen as gen
from tickwire.simulators._replay_stream import StreamReplay
from tickwire.simulators._replay_tardis import book_kind
from tickwire.simulators._tardis_books import tardis_books
from tickwire.simulators._tardis_index import index
from tickwire.simulators._tardis_stream import windows
from tickwire.simulators.errors import UserError
from tickwire.simulators.replay import Replay, open_replay

SMALL = 64 * 1024  # ~800 rows a block: dozens of windows


@pytest.fixture(scope="module")
def l2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gen.write(tmp_path_factory.mktemp("l2") / "l2.csv", 60_000)


@pytest.fixture(scope="module")
def snap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gen.write(tmp_path_factory.mktemp("snap") / "snap.csv", 1_500, snapshot=True)


def _drain(r: Replay, step_ns: int | None = None) -> list[bytes]:
    """Everything the replay gives, step by step: at speed 0, or every `step_ns` of time."""
    out = [r.snapshot().tobytes(), r.book_snapshot().tobytes(), bytes([r.book.depth % 256])]
    now = 0
    while not r.finished:
        batch, levels = r.step_book(now)
        out += [batch.tobytes(), levels.tobytes(), r.snapshot().tobytes()]
        now += step_ns or 0
    out += [r.book_snapshot().tobytes(), str(r.released).encode()]
    return out


def _same(path: Path, step_ns: int | None = None, **kw: str) -> None:
    speed = 1.0 if step_ns else 0.0
    whole = open_replay([path], speed=speed, stream=False, **kw)
    small = open_replay([path], speed=speed, block_bytes=SMALL, **kw)
    assert isinstance(small, StreamReplay) and not isinstance(whole, StreamReplay)
    assert list(small.universe.symbols) == list(whole.universe.symbols)
    assert small.universe.tick_size.tolist() == whole.universe.tick_size.tolist()
    assert small.universe.price.tolist() == whole.universe.price.tolist()
    assert small.universe.source == whole.universe.source
    assert small.book is not None and whole.book is not None
    assert small.book.depth == whole.book.depth
    got, want = _drain(small, step_ns), _drain(whole, step_ns)
    assert len(got) == len(want) and got == want


def test_an_incremental_file_streams_the_whole_file_replays_bytes(l2: Path) -> None:
    _same(l2)


def test_in_time_and_within_start_and_end(l2: Path) -> None:
    _same(l2, step_ns=40_000_000, start="+3s", end="+25s")


def test_a_snapshot_file_streams_the_same(snap: Path) -> None:
    _same(snap)
    _same(snap, start="+1s")


def test_small_blocks_give_the_bytes_of_one_block(l2: Path) -> None:
    one = open_replay([l2], speed=0, block_bytes=1 << 30)
    small = open_replay([l2], speed=0, block_bytes=SMALL)
    assert _drain(small) == _drain(one)


def test_timestamps_out_of_order_window_as_the_whole_file(tmp_path: Path, l2: Path) -> None:
    """Rows whose exchange time goes back a little (Tardis orders by arrival): windows cut only
    where every row before is earlier than every row after."""
    rng = random.Random(1)
    lines = l2.read_text().splitlines()[:20_000]
    out = [lines[0]]
    for line in lines[1:]:
        f = line.split(",")
        f[2] = str(int(f[2]) + rng.choice([0, 0, 0, -2000, 3000]))
        out.append(",".join(f))
    path = tmp_path / "jitter.csv"
    path.write_text("\n".join(out) + "\n")
    ref = tardis_books([path], ["incremental"], None, None)
    ix = index(path, "incremental", SMALL // 4)
    got = list(windows(ix, SMALL // 4))
    assert len(got) > 5
    assert b"".join(w.records.tobytes() for w in got) == ref.records.tobytes()
    assert b"".join(w.ticks.tobytes() for w in got) == ref.ticks.tobytes()
    assert ix.depth == ref.depth
    _same(path)


def test_a_bad_row_late_in_the_file_is_refused_before_serving(l2: Path, tmp_path: Path) -> None:
    lines = l2.read_text().splitlines(keepends=True)[:30_000]
    lines[25_000] = lines[25_000].replace(",bid,", ",middle,").replace(",ask,", ",middle,")
    path = tmp_path / "bad.csv"
    path.write_text("".join(lines))
    with pytest.raises(UserError, match="line 25001: side must be bid or ask"):
        open_replay([path], speed=0, block_bytes=SMALL)


def test_memory_stays_flat_in_the_file_size(tmp_path: Path) -> None:
    """tracemalloc's peak over a whole replay of 4N rows is within 1.5x of N rows' (the
    whole-file replay takes ~4x: every level record and tick of the file)."""
    peaks = []
    for rows in (15_000, 60_000):
        path = gen.write(tmp_path / f"{rows}.csv", rows)
        assert book_kind(path) == "incremental"
        tracemalloc.start()
        r = open_replay([path], speed=0, block_bytes=SMALL)
        while not r.finished:
            r.step_book(0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0], peaks
