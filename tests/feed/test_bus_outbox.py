"""The producer's pending flushes (`Outbox`), sans-IO: numbering, coalescing, drops."""

from __future__ import annotations

import numpy as np

from tickwire.feed.bus.outbox import Outbox
from tickwire.simulators import TICK_DTYPE, TickBatch


def _batch(n: int, sym0: int = 0) -> TickBatch:
    b = np.zeros(n, TICK_DTYPE)
    b["sym"] = np.arange(sym0, sym0 + n)
    return b


def test_flushes_kept_while_accepting_come_out_as_one_batch() -> None:
    box = Outbox(limit=100)
    assert box.accept() == (0, None)  # nothing given out yet
    assert box.put(_batch(3), 10) and box.put(_batch(2, 3), 13)
    assert len(box) == 2
    taken = box.take()
    assert taken is not None and len(box) == 0 and box.take() is None
    assert (taken.flushes, taken.first, taken.last) == (2, 1, 2)
    assert (taken.offset, taken.next_offset) == (10, 15)
    assert taken.batch["sym"].tolist() == [0, 1, 2, 3, 4]
    assert box.done == 0  # taken is not written
    box.written(taken)
    assert box.done == 2 and box.dropped == 0


def test_without_a_writer_flushes_are_numbered_dropped_and_counted() -> None:
    box = Outbox(limit=100)
    assert not box.put(_batch(3), 0)  # not accepting yet
    assert (box.flush, box.done, box.dropped) == (1, 1, 1)
    assert box.accept() == (1, 3)  # the writer's snapshot stands for flush 1, offset 3
    assert box.put(_batch(3), 3)
    box.stop()  # Redis went down: the pending flush is dropped too
    assert (box.flush, box.done, box.dropped, len(box)) == (2, 2, 2, 0)


def test_a_standby_drops_without_counting() -> None:
    box = Outbox(limit=100)
    box.accept()
    box.stop(standby=True)
    assert not box.put(_batch(3), None)
    assert (box.dropped, box.done) == (0, 1)
    box.accept()  # taking over: counting again
    assert box.put(_batch(3), None) and not box.standby


def test_a_writer_too_far_behind_loses_everything_pending() -> None:
    box = Outbox(limit=5)
    box.accept()
    assert box.put(_batch(3), None)
    assert not box.put(_batch(3), None)  # 6 > 5: this one and the pending one go
    assert (box.dropped, box.done, len(box)) == (2, 2, 0)
    assert box.put(_batch(3), None)  # and the next starts afresh, after a hole
    taken = box.take()
    assert taken is not None and (taken.first, taken.last) == (3, 3)
