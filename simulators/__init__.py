"""The simulated market tickwire streams: seeded, vectorised numpy, no I/O.

Public names: `TICK_DTYPE`, `TickFlag`, `TickBatch`, `Universe`, `Market`. Each loads on first
use, so code that needs only a plain module of this package (`errors`, `durations`: the CLI's
flags) imports no numpy, and code that needs only the tick record type (the client library)
does not pay for the model.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .market import Market
    from .ticks import TICK_DTYPE, TICK_FORMAT_VERSION, TickBatch, TickFlag
    from .universe import Universe

_TICK_NAMES = ("TICK_DTYPE", "TICK_FORMAT_VERSION", "TickBatch", "TickFlag")


def __getattr__(name: str) -> Any:
    if name in _TICK_NAMES:
        from . import ticks

        return getattr(ticks, name)
    if name == "Market":
        from .market import Market

        return Market
    if name == "Universe":
        from .universe import Universe

        return Universe
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TICK_DTYPE", "TICK_FORMAT_VERSION", "Market", "TickBatch", "TickFlag", "Universe"]
