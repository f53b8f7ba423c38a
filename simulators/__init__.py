"""The simulated market tickwire streams: seeded, vectorised numpy, no I/O.

Public names: `TICK_DTYPE`, `TickFlag`, `TickBatch`, `Universe`, `Market`.
"""

from .market import Market
from .ticks import TICK_DTYPE, TICK_FORMAT_VERSION, TickBatch, TickFlag
from .universe import Universe

__all__ = ["TICK_DTYPE", "TICK_FORMAT_VERSION", "Market", "TickBatch", "TickFlag", "Universe"]
