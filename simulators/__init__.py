"""The simulated market tickwire streams: seeded, vectorised numpy, no I/O.

Public names: `TICK_DTYPE`, `TickFlag`, `TickBatch`, `Universe`, `Market`. `Market` and
`Universe` load on first use, so code that needs only the tick record type (the client library,
`tickwire tail`) does not pay for the model.
"""

from typing import TYPE_CHECKING, Any

from .ticks import TICK_DTYPE, TICK_FORMAT_VERSION, TickBatch, TickFlag

if TYPE_CHECKING:
    from .market import Market
    from .universe import Universe


def __getattr__(name: str) -> Any:
    if name == "Market":
        from .market import Market

        return Market
    if name == "Universe":
        from .universe import Universe

        return Universe
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TICK_DTYPE", "TICK_FORMAT_VERSION", "Market", "TickBatch", "TickFlag", "Universe"]
