"""One connection's state in the hub, and what a take hands it: plain data, no behaviour.

The hub's modules (`hub.py`, `_every.py`, `_latest.py`) move a subscriber's cursor and seqs; its
connection only reads them. numpy only: no trio, no protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tickwire.simulators.ticks import TickBatch


@dataclass(eq=False, slots=True)
class Subscriber:
    """One connection's view of the hub. Only its writer task touches it (besides `wake`)."""

    wake: Callable[[], None]
    n_symbols: int
    wildcard: bool = False
    mask: NDArray[np.bool_] = field(init=False)
    sent_gen: int = 0  # every batch up to this generation has been taken
    last_seq: NDArray[np.uint64] = field(init=False)  # per symbol, the seq last delivered
    ticks_conflated: int = 0
    # Wildcard in latest mode, and last_seq is every symbol's seq as of sent_gen: then its next
    # take is the same for every such subscriber at the same generation, computed once for all.
    synced: bool = False
    cursor: int = 0  # stream offset: every record before it was delivered or conflated
    latest: bool = False  # latest state per symbol (conflation) instead of every update
    ahead_until: int = 0  # a snapshot went out newer than the cursor: skip repeats before this
    catch_up_to: int = 0  # it resumed: no lag bound until its cursor reaches this offset
    news_gen: int = 0  # the first generation with news for it since its last take (0: none)
    resumable: bool = False  # it asked for resume positions (binary frames then carry them)

    def __post_init__(self) -> None:
        self.mask = np.zeros(self.n_symbols, np.bool_)
        self.last_seq = np.zeros(self.n_symbols, np.uint64)


@dataclass(frozen=True, slots=True)
class Pending:
    """What one subscriber has to send: records and, for JSON, their encoded list."""

    records: TickBatch
    json_body: Callable[[], bytes]  # lazy: binary subscribers never encode JSON
    conflated: int
    ids: NDArray[np.intp] | None = None  # symbol ids of `records`, when shared
    offset: int = 0  # the stream position after this message: resume from here
