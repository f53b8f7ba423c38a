"""A replayed book with levels beyond its depth (a Tardis file) is one a holder of the served
depth keeps exactly: the released records, applied by a server's book (every record, from the
replay's snapshot) and by a client's (cut to the depth after each take, as `Levels.apply`),
agree on every checksum, their seqs running on one by one. Before, a level beyond the depth
that the best's move brought within it came without a record: the client lacked it."""

from __future__ import annotations

import numpy as np
import pytest

from tickwire.feed.protocol import book as b
from tickwire.simulators import _tardis_gen
from tickwire.simulators.book import Reason
from tickwire.simulators.replay import open_replay

DEPTH = 20


def _levels(row, tick: float) -> b.Levels:
    lv = b.Levels.for_tick(tick, int(row["seq"]), int(row["ts"]))
    for side, name in ((0, "bid"), (1, "ask")):
        for p, size in zip(
            row[f"{name}_price"].tolist(), row[f"{name}_size"].tolist(), strict=True
        ):
            if size:
                lv.set(side, lv.units(p), size)
    return lv


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    "name, rows",  # 45,000 rows: a reconnect's whole book mid-file too
    [("coinbase_incremental_book_L2.csv", 45000), ("coinbase_book_snapshot_25.csv", 3000)],
)
def test_replayed_tardis_books_are_kept_exactly_at_their_depth(tmp_path, stream, name, rows):
    path = _tardis_gen.write(tmp_path / name, rows, snapshot="snapshot" in name)
    replay = open_replay([path], speed=0, book_depth=DEPTH, stream=stream)
    book = replay.book
    assert book is not None and book.depth == DEPTH
    ticks = replay.universe.tick_size.astype(float)
    first = book.snapshot()
    server = {s: _levels(first[s], ticks[s]) for s in range(len(ticks)) if first["seq"][s]}
    client = {s: _levels(first[s], ticks[s]) for s in server}
    for lv in client.values():
        lv.cut(DEPTH)
    rng = np.random.default_rng(3)
    t, reveals, taken = int(first["ts"].max()), 0, 0
    while not book.finished:
        t += int(rng.integers(1, 20)) * 1_000_000  # takes of 1 to 20 ms of the replay
        recs = book.release(t)
        taken += len(recs)
        reveals += int((recs["reason"] == Reason.REVEAL).sum())
        for s in np.unique(recs["sym"]).tolist():
            mine = recs[recs["sym"] == s]
            seqs = mine["seq"].astype(np.int64)
            assert (seqs == np.arange(server[s].seq + 1, server[s].seq + 1 + len(mine))).all()
            changes = [
                (int(r["side"]), server[s].units(float(r["price"])), int(r["size"])) for r in mine
            ]
            for side, u, size in changes:
                server[s].set(side, u, size)
            server[s].seq = int(seqs[-1])
            crc = b.checksum(server[s].view(DEPTH))
            client[s].apply(changes, DEPTH, crc, int(seqs[-1]), int(mine["ts"][-1]))  # or raise
    assert taken > 2000 and reveals > 20  # levels did come within the depth
    now = book.snapshot()
    for s, lv in client.items():
        assert lv.view(DEPTH) == server[s].view(DEPTH) == _levels(now[s], ticks[s]).view(DEPTH)
        assert lv.seq == int(now["seq"][s])
