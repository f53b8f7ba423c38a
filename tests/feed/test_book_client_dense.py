"""The client's binary books (`client.dense`): whole frames applied at once, never a wrong book."""

from __future__ import annotations

import numpy as np
import pytest
from _book_streams import ASKS, BIDS, CHANGE, DEPTH, fault_st, true_book, with_faults
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.feed import BookUpdate, Gap
from tickwire.feed.client import dense
from tickwire.feed.client.book import ClientBooks
from tickwire.feed.client.digits import SMALL, number_words, small_words
from tickwire.feed.protocol import book as b
from tickwire.simulators.book import LEVEL_DTYPE

SYMS = ("A", "B", "C")
# Each symbol's book is _book_streams' true book, moved by a jump (all within the depth, so the
# client's cut book is the server's).
Change = tuple[int, int, int, int]  # symbol, side, level, size
change_st = st.tuples(st.integers(0, 2), *CHANGE)  # on one of SYMS
jump_st = st.none() | st.tuples(st.integers(0, 2), st.integers(-400, 400))


def _client(dense_min: int = 0) -> ClientBooks:
    """A client keeping every book, as rows however few (`dense_min` 0) or as `Levels`."""
    books = ClientBooks()
    books.dense_min = dense_min
    books.learn([{"symbol": s, "tick_size": 0.01} for s in SYMS])
    books.server_depth = DEPTH
    books.want(["*"], True)
    return books


def _snapshot(books: list[b.Levels]) -> bytes:
    rows = [_rows(i, lv) for i, lv in enumerate(books)]
    checks = np.zeros(len(books), b.CHECK_DTYPE)
    checks["sym"] = range(len(books))
    checks["crc"] = [b.checksum(lv.view(DEPTH)) for lv in books]
    return b.encode_book_binary(True, 1, np.concatenate(rows), checks)


def _rows(i: int, lv: b.Levels) -> np.ndarray:
    bids, asks = lv.view(DEPTH)
    out = np.zeros(len(bids) + len(asks), LEVEL_DTYPE)
    out["price"] = [u / 100 for u, _ in (*bids, *asks)]
    out["size"] = [s for _, s in (*bids, *asks)]
    out["side"][len(bids) :] = 1
    out["seq"], out["ts"], out["sym"] = lv.seq, lv.seq, i
    return out


def _stream(
    frames: list[tuple[list[Change], tuple[int, int] | None]],
) -> tuple[list[bytes], list[dict[int, b.Ladder]]]:
    """The server's binary `book` frames for `frames` of changes (and a jump: a symbol's whole
    book moved by that many ticks), and each symbol's true book by seq."""
    books = [true_book() for _ in SYMS]
    offset = [0, 0, 0]
    truth: list[dict[int, b.Ladder]] = [{0: lv.view(DEPTH)} for lv in books]
    out = [_snapshot(books)]
    for changes, jump in frames:
        steps: list[tuple[int, int, int, int]] = []  # symbol, side, units, size
        if jump is not None:
            i, by = jump
            if min(BIDS) + offset[i] + by > 0:
                old = books[i].view(DEPTH)
                offset[i] += by
                new = true_book(offset[i]).view(DEPTH)
                steps += [(i, side, u, size) for side, u, size in b.diff(old, new)]
        for i, side, level, size in changes:
            units = (ASKS if side else BIDS)[level] + offset[i]
            if size or len(books[i].asks if side else books[i].bids) > 1:  # a side never empties
                steps.append((i, side, units, size))
        if not steps:
            continue
        records = np.zeros(len(steps), LEVEL_DTYPE)
        for k, (i, side, units, size) in enumerate(steps):
            books[i].set(side, units, size)
            books[i].seq += 1
            records[k] = (books[i].seq, books[i].seq, units / 100, size, i, 0, side, 3, b"\0\0")
            truth[i][books[i].seq] = books[i].view(DEPTH)
        ids = sorted({i for i, *_ in steps})
        checks = np.zeros(len(ids), b.CHECK_DTYPE)
        checks["sym"] = ids
        checks["crc"] = [b.checksum(books[i].view(DEPTH)) for i in ids]
        out.append(b.encode_book_binary(False, len(out) + 1, records, checks))
    return out, truth


def _corrupt(frame: bytes) -> bytes:
    """The frame with its last checksum entry refuted."""
    data = bytearray(frame)
    data[-4] ^= 1
    return bytes(data)


@pytest.mark.parametrize("dense_min", [0, 1000], ids=["rows", "levels"])
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.lists(change_st, max_size=8), jump_st), max_size=30), fault_st)
def test_binary_books_never_accept_a_wrong_book(
    dense_min: int,
    frames: list[tuple[list[Change], tuple[int, int] | None]],
    faults: list[tuple[str, int]],
) -> None:
    clean, truth = _stream(frames)
    corrupted: set[bytes] = set()

    def corrupt(frame: bytes) -> bytes:
        corrupted.add(_corrupt(frame))
        return _corrupt(frame)

    stream = with_faults(clean, faults, corrupt)
    corrupted -= set(clean)  # (corrupted twice: the frame again)
    books = _client(dense_min)
    gaps = 0
    for frame in stream:
        events = books.receive_binary(frame)
        gaps += sum(isinstance(e, Gap) and e.reason == "book" for e in events)
        if frame in corrupted:  # the symbol of the refuted checksum entry is never applied
            name = SYMS[int(b.decode_book_binary(frame).checks["sym"][-1])]
            assert not any(isinstance(e, BookUpdate) and name in e.symbols for e in events)
        for i, name in enumerate(SYMS):
            held = books.book(name)
            if held is None:
                continue
            want = truth[i][held.seq]  # whatever it holds is the true book at its seq
            assert [(round(p * 100), s) for p, s in held.bids.tolist()] == list(want[0])
            assert [(round(p * 100), s) for p, s in held.asks.tolist()] == list(want[1])
        for depth, names in books.take_resync().items():  # the server sends them again
            assert depth is True
            now = [true_book() for _ in SYMS]
            for i in range(len(SYMS)):
                seq = max(truth[i])
                now[i].load(truth[i][seq], seq, seq)
            snap = _snapshot(now)
            got = books.receive_binary(snap)
            assert set(got[0].symbols) >= set(names)
    if not faults:
        assert gaps == 0
        for i, name in enumerate(SYMS):
            held = books.book(name)
            assert held is not None and held.seq == max(truth[i])


def test_a_book_that_leaves_its_row_is_applied_and_comes_back_to_one() -> None:
    """A jump far beyond the row's window is taken as `Levels`, then held as a row again."""
    stream, truth = _stream([([], (1, 390)), ([(1, 0, 11, 7)], None)])
    books = _client()
    for frame in stream:
        events = books.receive_binary(frame)
        assert [type(e) for e in events] == [BookUpdate]
    held = books.book("B")
    assert held is not None and held.seq == max(truth[1])
    assert round(held.bids["price"][0] * 100) == 114 + 390 and held.bids["size"][3] == 7
    assert not books.held  # back in a row


def test_a_corrupt_checksum_leaves_the_other_symbols_of_the_frame_applied() -> None:
    stream, _ = _stream([([(0, 0, 14, 4), (1, 1, 0, 3), (2, 0, 14, 2)], None)])
    books = _client()
    books.receive_binary(stream[0])
    events = books.receive_binary(_corrupt(stream[1]))  # the last entry is C's
    assert events == [Gap("book", None, ("C",)), BookUpdate("book", 2, ("A", "B"))]
    assert books.book("C") is None
    b_book = books.book("B")
    assert b_book is not None and b_book.asks["size"][0] == 3
    assert books.take_resync() == {True: ["C"]}


def _numbers(words: int) -> st.SearchStrategy[tuple[int, list[int]]]:
    most = min(10 ** (4 * words) - 1, 2**63 - 1)
    return st.tuples(st.just(words), st.lists(st.integers(0, most), max_size=50))


@given(st.integers(1, 5).flatmap(_numbers))
def test_number_words_are_the_text_of_each_value(case: tuple[int, list[int]]) -> None:
    words, values = case
    out = number_words(np.array(values, np.int64), words)
    assert out.shape == (len(values), words)
    assert [row.tobytes().replace(b"\0", b"") for row in out] == [str(v).encode() for v in values]


def test_a_few_books_stay_levels_and_many_become_rows() -> None:
    stream, _ = _stream([([(0, 0, 14, 4)], None)])
    few = _client(dense_min=4)
    few.receive_binary(stream[0])
    assert sorted(few.held) == list(SYMS)  # 3 books: a Python step per change is cheaper
    many = _client(dense_min=3)
    many.receive_binary(stream[0])
    assert not many.held
    for books in (few, many):
        assert [type(e) for e in books.receive_binary(stream[1])] == [BookUpdate]
        held = books.book("A")
        assert held is not None and held.bids["size"][0] == 4


def test_learning_the_universe_again_keeps_the_books_held() -> None:
    stream, truth = _stream([([(0, 0, 14, 4)], None), ([(0, 1, 0, 9)], None)])
    books = _client()
    books.receive_binary(stream[0])
    books.receive_binary(stream[1])
    books.learn([{"symbol": s, "tick_size": 0.01} for s in SYMS])  # rows are let go
    assert [type(e) for e in books.receive_binary(stream[2])] == [BookUpdate]
    held = books.book("A")
    assert held is not None and held.seq == max(truth[0]) and held.asks["size"][0] == 9


def _frame(books: list[b.Levels], steps: list[tuple[int, int, int, int]], crcs: int = 3) -> bytes:
    """A `book` frame of (symbol, side, units, size) changes to `books` (the server's, cut to
    the depth as the server's are), with checksum entries for the first `crcs` symbols changed."""
    records = np.zeros(len(steps), LEVEL_DTYPE)
    for k, (i, side, units, size) in enumerate(steps):
        books[i].set(side, units, size)
        books[i].seq += 1
        records[k] = (books[i].seq, books[i].seq, units / 100, size, i, 0, side, 3, b"\0\0")
    ids = sorted({i for i, *_ in steps})[:crcs]
    checks = np.zeros(len(ids), b.CHECK_DTYPE)
    checks["sym"] = ids
    checks["crc"] = [b.checksum(books[i].cut(DEPTH)) for i in ids]
    return b.encode_book_binary(False, 2, records, checks)


def _ladder(books: ClientBooks, name: str) -> b.Ladder:
    held = books.book(name)
    assert held is not None
    bids, asks = (tuple((round(p * 100), s) for p, s in x.tolist()) for x in (held.bids, held.asks))
    return bids, asks


@pytest.mark.parametrize("dense_min", [0, 1000], ids=["rows", "levels"])
def test_levels_beyond_the_depth_from_a_new_best_are_dropped(dense_min: int) -> None:
    """A bid 11 ticks above the best: the bids 20 ticks or more below it leave the book (the
    checksum's top 10 does not reach them: only the cut does)."""
    server = [true_book(0) for _ in SYMS]
    books = _client(dense_min)
    books.receive_binary(_snapshot(server))
    asks = [(0, 1, u, 0) for u in range(116, 126)]  # the asks below 126 go
    events = books.receive_binary(_frame(server, [*asks, (0, 0, 125, 3)]))
    assert [type(e) for e in events] == [BookUpdate]
    assert _ladder(books, "A") == server[0].view(DEPTH)
    assert [u for u, _ in _ladder(books, "A")[0]] == [125, *range(114, 105, -1)]
    events = books.receive_binary(_frame(server, [(0, 0, 125, 0)]))  # the best bid goes again
    assert [type(e) for e in events] == [BookUpdate]
    assert _ladder(books, "A") == server[0].view(DEPTH)


@pytest.mark.parametrize("dense_min", [0, 1000], ids=["rows", "levels"])
def test_a_corrupt_checksum_beside_a_book_not_held_is_refused(dense_min: int) -> None:
    """C waits for its snapshot, so the frame is not the usual one: B's refuted checksum is
    still caught and A's change still applies."""
    server = [true_book(0) for _ in SYMS]
    books = _client(dense_min)
    books.receive_binary(_snapshot(server))
    books.receive_binary(_corrupt(_frame(server, [(2, 0, 114, 9)])))  # C goes
    assert books.book("C") is None and books.take_resync() == {True: ["C"]}
    frame = _frame(server, [(0, 0, 114, 4), (1, 0, 113, 5), (2, 0, 112, 6)])
    data = bytearray(frame)
    data[-8 - 4] ^= 1  # B's checksum entry, the second of three
    events = books.receive_binary(bytes(data))
    assert events == [Gap("book", None, ("B",)), BookUpdate("book", 2, ("A",))]
    assert books.book("B") is None and _ladder(books, "A") == server[0].view(DEPTH)


@pytest.mark.parametrize("dense_min", [0, 1000], ids=["rows", "levels"])
def test_records_without_a_checksum_entry_never_change_another_book(dense_min: int) -> None:
    """C's record follows B's in seq but has no checksum entry: it is not B's change, even
    where B's checksum (its top 10) cannot tell."""
    server = [true_book(0) for _ in SYMS]
    books = _client(dense_min)
    books.receive_binary(_snapshot(server))
    server[2].seq = 1  # C's next change has seq 2, as if it were B's second
    frame = _frame(server, [(0, 0, 114, 4), (1, 0, 113, 5), (2, 0, 100, 7)], crcs=2)
    events = books.receive_binary(frame)
    assert BookUpdate("book", 2, ("A", "B")) in events
    assert _ladder(books, "B") == server[1].view(DEPTH)
    assert _ladder(books, "A") == server[0].view(DEPTH)


@pytest.mark.parametrize("size", [10**8, 2**39 + 1, 2**63 - 1])
def test_a_size_longer_than_any_before_widens_the_rows_text(size: int) -> None:
    """Rows start with 8 digits a number; a longer size makes room (for every row) and the
    checksums go on matching."""
    server = [true_book(0) for _ in SYMS]
    books = _client()
    books.receive_binary(_snapshot(server))
    for steps in ([(0, 0, 114, size)], [(1, 1, 116, size - 1), (0, 0, 113, 3)]):
        events = books.receive_binary(_frame(server, steps))
        assert [type(e) for e in events] == [BookUpdate]
    for i, name in enumerate(SYMS):
        assert _ladder(books, name) == server[i].view(DEPTH)
    assert not books.held  # all rows still
    dense = books._dense
    assert dense is not None and dense.words > 2 and size < 10 ** (4 * dense.words)


def test_changes_for_a_book_not_held_never_land_in_another_row() -> None:
    """16 books fill 16 rows; the first waits for its snapshot when a frame changes it deep in
    its bids (where no checksum of the others looks) and changes the last one too."""
    names = [f"S{i}" for i in range(16)]
    books = ClientBooks()
    books.dense_min = 0
    books.learn([{"symbol": s, "tick_size": 0.01} for s in names])
    books.server_depth = DEPTH
    books.want(["*"], True)
    server = [true_book(0) for _ in names]
    books.receive_binary(_snapshot(server))
    data = bytearray(_frame(server, [(0, 0, 114, 9), (15, 0, 113, 4)]))
    data[-8 - 4] ^= 1  # S0's checksum entry: S0 goes, S15 is at seq 1 as S0 was
    books.receive_binary(bytes(data))
    assert books.book("S0") is None and books.book("S15") is not None
    events = books.receive_binary(_frame(server, [(0, 0, 100, 7), (15, 0, 114, 2)], crcs=2))
    assert BookUpdate("book", 2, ("S15",)) in events
    assert _ladder(books, "S15") == server[15].view(DEPTH)


@given(st.lists(st.integers(0, SMALL - 1), max_size=50))
def test_small_words_are_number_words(values: list[int]) -> None:
    """The table a frame's sizes are looked up in holds each size's two-word text."""
    arr = np.array(values, np.int64)
    assert small_words().take(arr, axis=0).tolist() == number_words(arr, 2).tolist()


def test_sizes_either_side_of_the_looked_up_ones_keep_their_checksums() -> None:
    """A frame whose sizes are all in the table, then one with a size just beyond it (the
    words are formatted): every book matches the server's, still as rows of two words."""
    server = [true_book(0) for _ in SYMS]
    books = _client()
    books.receive_binary(_snapshot(server))
    frames = (
        [(0, 0, 114, SMALL - 1), (1, 1, 116, 7)],
        [(0, 0, 113, SMALL), (2, 1, 117, 2**26 - 1)],
    )
    for steps in frames:
        events = books.receive_binary(_frame(server, steps))
        assert [type(e) for e in events] == [BookUpdate]
    for i, name in enumerate(SYMS):
        assert _ladder(books, name) == server[i].view(DEPTH)
    dense = books._dense
    assert not books.held and dense is not None and dense.words == 2


def test_levels_changed_in_any_order_keep_their_last_size_as_marks_start_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With 3 marks to hand out they start again every frame: a level changed last in one
    frame (a high mark) and first in the next (a low one) takes the new size; a frame of 5
    changes needs more marks than there are, and of two changes of a level the last wins."""
    monkeypatch.setattr(dense, "_MARKS", 3)
    server = [true_book(0) for _ in SYMS]
    books = _client()
    books.receive_binary(_snapshot(server))
    frames = [
        [(0, 0, 113, 1), (1, 1, 117, 1), (0, 0, 114, 1)],
        [(0, 0, 114, 2), (1, 1, 118, 2), (0, 0, 113, 2)],
        [(0, 0, 113, 3), (2, 0, 110, 3), (0, 0, 114, 3), (2, 0, 110, 4), (1, 1, 117, 3)],
        [(1, 1, 117, 4), (0, 0, 114, 4), (0, 0, 113, 4)],
    ]
    for steps in frames:
        events = books.receive_binary(_frame(server, steps))
        assert [type(e) for e in events] == [BookUpdate]
        for i, name in enumerate(SYMS):
            assert _ladder(books, name) == server[i].view(DEPTH)
    assert not books.held


def test_a_row_at_a_smaller_depth_beside_full_ones_is_cut_to_its_own() -> None:
    """B asks for 5 ticks, A and C for the server's 20: each row is cut to its own depth and
    checked against the checksum of that cut (rows of several depths in one frame). B's
    changes are those of its 5-tick view, as the server sends them at that depth."""
    server = [true_book(0) for _ in SYMS]
    books = _client()
    books.want(["B"], 5)
    snap = _snapshot(server)
    records = b.decode_book_binary(snap).records
    checks = np.zeros(3, b.CHECK_DTYPE)
    checks["sym"] = range(3)
    checks["crc"] = [b.checksum(lv.view(5 if i == 1 else DEPTH)) for i, lv in enumerate(server)]
    books.receive_binary(b.encode_book_binary(True, 1, records, checks))
    frames = [
        [(0, 0, 114, 3), (1, 0, 115, 2), (2, 1, 116, 0)],  # B's new best bid: its 5 move up
        [(1, 0, 115, 0), (1, 0, 110, 1), (0, 1, 116, 6), (1, 1, 119, 4)],  # B's 110 is back
    ]
    for steps in frames:
        for i, side, units, size in steps:
            server[i].set(side, units, size)
            server[i].seq += 1
        frame = np.zeros(len(steps), LEVEL_DTYPE)
        for n, (i, side, units, size) in enumerate(steps):
            frame[n] = (0, 0, units / 100, size, i, 0, side, 3, b"\0\0")
        ids = sorted({i for i, *_ in steps})
        for i in ids:  # each symbol's seqs in order, ending at its book's
            mine = np.flatnonzero(frame["sym"] == i)
            frame["seq"][mine] = range(server[i].seq - len(mine) + 1, server[i].seq + 1)
        checks = np.zeros(len(ids), b.CHECK_DTYPE)
        checks["sym"] = ids
        checks["crc"] = [b.checksum(server[i].view(5 if i == 1 else DEPTH)) for i in ids]
        events = books.receive_binary(b.encode_book_binary(False, 2, frame, checks))
        assert events == [BookUpdate("book", 2, tuple(SYMS[i] for i in ids))]
        for i, name in enumerate(SYMS):
            assert _ladder(books, name) == server[i].view(5 if i == 1 else DEPTH)
    assert not books.held
