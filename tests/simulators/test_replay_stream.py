"""A Tardis book file replayed alone is streamed in blocks: the same bytes as the whole-file
replay (ticks, level updates, snapshots, depth, universe), whatever the block size, at speed 0
and in time, within --start/--end, with timestamps out of order; and its memory does not grow
with the file."""

from __future__ import annotations

import gzip
import random
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tickwire.simulators import _replay_stream as rs
from tickwire.simulators import _tardis_gen as gen
from tickwire.simulators._replay_stream import StreamReplay
from tickwire.simulators._replay_tardis import book_kind
from tickwire.simulators._tardis_books import tardis_books
from tickwire.simulators._tardis_index import Index, index
from tickwire.simulators._tardis_stream import Window, merged, windows
from tickwire.simulators.errors import UserError
from tickwire.simulators.replay import Replay, open_replay
from tickwire.simulators.universe import Universe

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


def _rough_lines(seed: int, rows: int = 3000) -> list[str]:
    """An incremental_book_L2 file that tries the windows' seams: books that cross and go
    one-sided, symbols that start late or with a change, a whole book without levels, whole
    books mid-file, times that go back a little, and runs of snapshot rows of two symbols
    interleaved."""
    rng = random.Random(seed)
    out = [gen.L2_HEADER]
    us = gen.T0_US
    names = ["AAA", "BBB", "CCC", "DDD"]
    while len(out) <= rows:
        us += rng.choice([0, 1, 7, 300])
        late = len(out) < rows // 2
        name = rng.choice(names[:2] if late else names)
        t = us - rng.choice([0, 0, 0, 2, 400])
        if rng.random() < 0.04:  # a whole book, at times with no levels, at times two at once
            names_now = [name, rng.choice(names)] if rng.random() < 0.3 else [name]
            for _ in range(rng.randint(1, 6)):
                for n in names_now:
                    side, price = _level(rng)
                    amount = rng.choice(["0", "1.5", "2", "0.25"])
                    out.append(f"x,{n},{t},{t + 9},true,{side},{price:.1f},{amount}")
            continue
        for _ in range(rng.randint(1, 4)):
            side, price = _level(rng)
            amount = rng.choice(["0", "0", "1", "3.5", "0.125"])
            out.append(f"x,{name},{t},{t + 9},false,{side},{price:.1f},{amount}")
    return out


def _level(rng: random.Random) -> tuple[str, float]:
    """A side and a price: bids below 100.5, asks above 99.5, so books cross at times."""
    if rng.random() < 0.5:
        return "bid", 100 + rng.randint(-8, 1) * 0.5
    return "ask", 100 + rng.randint(-1, 8) * 0.5


@pytest.mark.parametrize("seed", range(6))
def test_rough_files_window_as_the_whole_file(tmp_path: Path, seed: int) -> None:
    lines = _rough_lines(seed)
    path = tmp_path / f"rough{seed}.csv"
    path.write_text("\n".join(lines) + "\n")
    ref = tardis_books([path], ["incremental"], None, None)
    ix = index(path, "incremental", 2048)
    got = list(windows(ix, 2048))
    assert len(got) > 10
    assert b"".join(w.records.tobytes() for w in got) == ref.records.tobytes()
    assert b"".join(w.snapshot.tobytes() for w in got) == ref.snapshot.tobytes()
    assert b"".join(w.ticks.tobytes() for w in got) == ref.ticks.tobytes()
    assert ix.depth == ref.depth
    whole = open_replay([path], speed=0, stream=False)
    small = open_replay([path], speed=0, block_bytes=2048)
    assert _drain(small) == _drain(whole)


def test_a_first_book_without_levels_numbers_on_in_a_later_window(tmp_path: Path) -> None:
    """BBB's first book has no levels (seq 1, no record); its first change, windows later, is
    seq 2, as from the whole file."""
    t = gen.T0_US
    lines = [gen.L2_HEADER, f"x,AAA,{t},{t},true,bid,99.5,1", f"x,AAA,{t},{t},true,ask,100.5,1"]
    lines += [f"x,BBB,{t + 1},{t + 1},true,bid,50.0,0", f"x,BBB,{t + 1},{t + 1},true,ask,51.0,0"]
    for k in range(400):
        lines.append(f"x,AAA,{t + 10 + k},{t + 10 + k},false,bid,99.5,{1 + k % 7}")
    lines += [f"x,BBB,{t + 900},{t + 900},false,bid,50.0,2"]
    lines += [f"x,BBB,{t + 901},{t + 901},false,ask,51.0,3"]
    path = tmp_path / "empty.csv"
    path.write_text("\n".join(lines) + "\n")
    ix = index(path, "incremental", 2048)
    got = [w for w in windows(ix, 2048)]
    assert len(got) > 3
    bbb = [r for w in got for r in w.records if r["sym"] == ix.universe.index("BBB")]
    assert [int(r["seq"]) for r in bbb] == [2, 3]
    ref = tardis_books([path], ["incremental"], None, None)
    assert b"".join(w.records.tobytes() for w in got) == ref.records.tobytes()
    assert _drain(open_replay([path], speed=0, block_bytes=2048)) == _drain(
        open_replay([path], speed=0, stream=False)
    )


def test_the_head_run_stops_once_every_symbol_has_its_book_and_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before serving, windows are numbered only until every symbol has had its first book
    and its first tick (here the first window), not to the end of the file."""
    t = gen.T0_US
    lines = [gen.L2_HEADER, f"x,AAA,{t},{t},true,bid,99.5,1", f"x,AAA,{t},{t},true,ask,100.5,1"]
    lines += [f"x,BBB,{t},{t},true,bid,50.0,1", f"x,BBB,{t},{t},true,ask,51.0,2"]
    lines += [f"x,AAA,{t + k},{t + k},false,bid,99.5,{1 + k % 7}" for k in range(1, 3000)]
    path = tmp_path / "quiet.csv"
    path.write_text("\n".join(lines) + "\n")
    ix = index(path, "incremental", 2048)
    taken = []

    def counted(ixs: list[Index], block_bytes: int | None = None) -> Iterator[Window]:
        for w in merged(ixs, block_bytes):
            taken.append(w)
            yield w

    monkeypatch.setattr(rs, "merged", counted)
    _, _, heads, books, _ = rs._heads([ix], 2048, None, None)
    assert len(taken) == 1 and len(list(windows(ix, 2048))) > 10
    assert heads["sym"].tolist() == [0, 1] and len(books) == 4


def test_a_gzip_file_streams_the_same(l2: Path, tmp_path: Path) -> None:
    gz = tmp_path / "l2.csv.gz"
    gz.write_bytes(gzip.compress(l2.read_bytes()[:1_500_000].rpartition(b"\n")[0] + b"\n"))
    _same(gz)


def test_several_files_stream_merged_as_the_whole_files(tmp_path: Path) -> None:
    """Files of other symbols (Tardis writes a file per symbol and day) merge in time order,
    a file's rows first at one time; with a symbol in two files they are read whole."""
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text("\n".join(_rough_lines(1)) + "\n")
    other = [line.replace(",AAA,", ",EEE,").replace(",BBB,", ",FFF,") for line in _rough_lines(2)]
    other = [line.replace(",CCC,", ",GGG,").replace(",DDD,", ",HHH,") for line in other]
    two.write_text("\n".join(other) + "\n")
    files = [one, two, gen.write(tmp_path / "snap.csv", 200, snapshot=True)]
    whole = open_replay(files, speed=0, stream=False)
    small = open_replay(files, speed=0, block_bytes=8192)
    assert isinstance(small, StreamReplay)
    assert list(small.universe.symbols) == list(whole.universe.symbols)
    assert small.book is not None and whole.book is not None
    assert small.book.depth == whole.book.depth
    assert _drain(small) == _drain(whole)
    same = open_replay([one, two, one], speed=0, block_bytes=8192)
    assert not isinstance(same, StreamReplay)
    assert _drain(same) == _drain(open_replay([one, two, one], speed=0, stream=False))


def test_several_files_within_start_and_end(tmp_path: Path) -> None:
    """Merged windows may hold nothing yet (one file ahead of the others): the replay goes on
    to --end all the same."""
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text("\n".join(_rough_lines(3, 6000)) + "\n")
    other = [line.replace(",AAA,", ",EEE,").replace(",BBB,", ",FFF,") for line in _rough_lines(4)]
    other = [line.replace(",CCC,", ",GGG,").replace(",DDD,", ",HHH,") for line in other]
    two.write_text("\n".join(other[:1] + other[1::3]) + "\n")  # sparser: ahead in time
    for start, end in ((None, "+40ms"), ("+5ms", "+60ms"), (None, None)):
        kw = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
        small = open_replay([one, two], speed=0, block_bytes=2048, **kw)
        assert isinstance(small, StreamReplay)
        assert _drain(small) == _drain(open_replay([one, two], speed=0, stream=False, **kw))


def _universe(names: list[str], tick: float, unit: float | None) -> Universe:
    rows = [(n, n, "Crypto", 100.0, tick, 1, 1.0, "stock") for n in names]
    size_unit = None if unit is None else np.full(len(names), unit)
    return Universe.from_rows(rows, size_unit=size_unit)


def test_a_given_universe_streams_the_same(tmp_path: Path) -> None:
    """--universe: its symbols (one more than the file's), ticks and size unit (as it is, or
    made finer for amounts with more decimals)."""
    path = tmp_path / "rough.csv"
    path.write_text("\n".join(_rough_lines(5)) + "\n")
    for tick, unit in ((0.5, 0.125), (0.25, 0.01), (0.5, None)):
        uni = _universe(["AAA", "BBB", "CCC", "DDD", "ZZZ"], tick, unit)
        small = open_replay([path], speed=0, universe=uni, block_bytes=2048)
        whole = open_replay([path], speed=0, universe=uni, stream=False)
        assert isinstance(small, StreamReplay)
        for field in ("symbols", "tick_size", "size_unit", "price"):
            got, want = getattr(small.universe, field), getattr(whole.universe, field)
            assert (got is None and want is None) or list(got) == list(want), field
        assert _drain(small) == _drain(whole)


@pytest.mark.parametrize(
    "names, tick, unit, extra",
    [
        (["AAA", "BBB", "CCC"], 0.5, None, ""),  # DDD is not in it
        (["AAA", "BBB", "CCC", "DDD"], 0.2, None, ""),  # 99.5 is off a grid of 0.2
        (["AAA", "BBB", "CCC", "DDD"], 0.5, 0.0003, ""),  # 2 is not a count of 0.0003
        (["AAA", "BBB", "CCC", "DDD"], 0.2, 0.0003, ""),  # both: the amount is said
        (None, 0.0, None, "x,AAA,{t},{t},false,bid,99.5,0.0000000051"),  # past 10^-8
    ],
)
def test_what_the_whole_file_refuses_is_refused_the_same(
    tmp_path: Path, names: list[str] | None, tick: float, unit: float | None, extra: str
) -> None:
    lines = _rough_lines(6)
    if extra:
        t = lines[2500].split(",")[2]
        lines.insert(2501, extra.format(t=t))
    path = tmp_path / "rough.csv"
    path.write_text("\n".join(lines) + "\n")
    uni = None if names is None else _universe(names, tick, unit)
    with pytest.raises(UserError) as whole:
        open_replay([path], speed=0, universe=uni, stream=False)
    with pytest.raises(UserError) as small:
        open_replay([path], speed=0, universe=uni, block_bytes=2048)
    assert str(small.value) == str(whole.value)
