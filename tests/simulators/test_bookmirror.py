"""`BookMirror`'s bookkeeping against brute force: changes numbered one by one, whole books
replacing the one held with the changes that make it, and the top of each book."""

from __future__ import annotations

import numpy as np

from tickwire.simulators.bookmirror import BookMirror


def _set(levels: dict[int, int], units: int, size: int) -> None:
    if size:
        levels[units] = size
    else:
        levels.pop(units, None)


def test_changes_whole_books_and_tops_agree_with_brute_force() -> None:
    rng = np.random.default_rng(7)
    mirror = BookMirror(np.array([0.01, 0.5]), depth=50)
    held: list[tuple[dict[int, int], dict[int, int]]] = [({}, {}), ({}, {})]
    seq = [0, 0]
    for step in range(5000):
        s = int(rng.integers(2))
        if step % 500 == 499:  # a whole book now and then: the changes that make it
            book = ({int(u): 1 + int(rng.integers(9)) for u in rng.integers(900, 1000, 20)}, {})
            book[1].update({int(u): 1 + int(rng.integers(9)) for u in rng.integers(1001, 1100, 20)})
            changes = mirror.replace(s, book, step)
            for side, u, size, k in changes:
                seq[s] += 1
                assert k == seq[s]
                _set(held[s][side], u, size)
            assert held[s] == book
        else:
            side = int(rng.integers(2))
            u = int(rng.integers(900, 1000) if side == 0 else rng.integers(1001, 1100))
            size = int(rng.integers(0, 4))  # a quarter removals
            seq[s] += 1
            assert mirror.change(s, side, u, size, step) == seq[s]
            _set(held[s][side], u, size)
        bids, asks = held[s]
        want = (max(bids), bids[max(bids)], min(asks), asks[min(asks)]) if bids and asks else None
        assert mirror.top(s) == want
