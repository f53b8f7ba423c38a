"""How much market a chunk holds: the number of 100 ms cells made at a time.

The length is part of what a seed reproduces. By default it is sized by the updates expected at
the open, the busiest time: at most about `CHUNK_EVENTS` records, or one cell's (44,000 at 5,000
symbols: ~3 MiB, ~30 MiB of temporaries while it is made). With order books a chunk costs ~10x
its ticks alone (the default universe's one-second chunk: ~20 ms), and it is made in slices
(`_ahead.py`) whose size grows with it, so it is at most `BOOK_CHUNK_CELLS` cells: slices of
about a millisecond, for ~5% more CPU than one-second chunks (0.2 s chunks: ~30% more).
Imports nothing of ours but the model's constants.
"""

from __future__ import annotations

from ._events import GRID_NS
from ._model import SESSION_S

CHUNK_S = 1.0  # the longest chunk chosen by default: one second
CHUNK_EVENTS = 25_000  # default chunks hold about this many records at most, expected at the open
BOOK_CHUNK_CELLS = 5  # the longest default chunk with books: 0.5 s
_AUTO_CELLS = (10, 5, 4, 2, 1)  # default chunk lengths in cells, longest first: divide a session


def chunk_cells(chunk_s: float | None, expected_rate: float, books: bool) -> int:
    """Cells a chunk holds: `chunk_s` as asked (it must divide a 6.5 h session in 0.1 s units),
    or by default the longest that holds about `CHUNK_EVENTS` records at `expected_rate`
    (updates per second at the open), and at most `BOOK_CHUNK_CELLS` with `books`."""
    if chunk_s is not None:
        cells = round(chunk_s * 1e9 / GRID_NS)
        if not 1 <= cells <= 600 or round(SESSION_S * 1e9 / GRID_NS) % cells:
            raise ValueError(f"chunk_s must divide a 6.5 h session in 0.1 s units, got {chunk_s}")
        return cells
    per_cell = expected_rate * GRID_NS / 1e9
    cells = next((c for c in _AUTO_CELLS if c * per_cell <= CHUNK_EVENTS), 1)
    return min(cells, BOOK_CHUNK_CELLS) if books else cells
