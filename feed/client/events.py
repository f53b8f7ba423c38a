"""What `async for event in feed` yields, and the client library's errors.

Errors (all subclasses of `TickwireError`)::

    TickwireError
     +-- ConnectError        the server cannot be reached, or refused the handshake
     |    +-- AuthError      HTTP 401: missing or wrong token
     +-- ProtocolError       the server answered a request with an `error` (.code, .symbols)
     +-- ConnectionLost      the connection dropped and reconnecting is off (or not yet done)

Imports nothing at run time but the standard library (numpy arrays come in from `stream`;
pandas loads in `Batch.to_pandas`), so importing the client's errors costs no numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    import pandas
    from numpy.typing import NDArray


class TickwireError(Exception):
    """Base of every error the client library raises."""


class ConnectError(TickwireError):
    """The server cannot be reached, or refused the WebSocket handshake."""


class AuthError(ConnectError):
    """The server requires a token and refused ours (HTTP 401)."""


class ConnectionLost(TickwireError):
    """The connection dropped while a request waited, or reconnecting is off."""


class ProtocolError(TickwireError):
    """The server rejected a request; `code` is the wire error code (e.g. 'unknown_symbol')."""

    def __init__(self, code: str, message: str, symbols: Sequence[str] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.symbols = tuple(symbols)


@dataclass(frozen=True, slots=True, eq=False)
class Batch:
    """One market-data message: the latest tick of each symbol that changed.

    `ticks` is a numpy array of `TICK_DTYPE` records (field `sym` is the symbol id); `symbols` gives
    the symbol names aligned with it. `conflated` counts updates the server folded into these
    ticks (per-symbol `seq` jumps: throttling or a slow reader), which is not data loss: every
    tick is the symbol's latest state.
    """

    kind: Literal["ticks", "snapshot"]
    seq: int
    ticks: NDArray[np.void]
    conflated: int
    names: NDArray[np.object_] = field(repr=False)

    def __len__(self) -> int:
        return len(self.ticks)

    @property
    def symbols(self) -> NDArray[np.object_]:
        names: NDArray[np.object_] = self.names[self.ticks["sym"]]
        return names

    def to_dicts(self) -> list[dict[str, Any]]:
        """One dict per tick, with the wire's field names plus `symbol`."""
        fields = [f for f in self.ticks.dtype.names or () if f != "sym"]
        cols = [self.symbols.tolist(), *(self.ticks[f].tolist() for f in fields)]
        return [dict(zip(["symbol", *fields], row, strict=True)) for row in zip(*cols, strict=True)]

    def to_pandas(self) -> pandas.DataFrame:
        """A DataFrame with a `symbol` column and a UTC `time` index (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Batch.to_pandas() needs pandas: pip install 'tickwire[pandas]'"
            ) from None

        df = pd.DataFrame(self.ticks)
        df.insert(0, "symbol", self.symbols)
        df.index = pd.to_datetime(df["ts"], unit="ns", utc=True).rename("time")
        return df


@dataclass(frozen=True, slots=True)
class Gap:
    """You may have missed something: reconnected, the server restarted, or `seq` jumped;
    "source": the server's own source lost updates (a gateway's bus), a snapshot follows.
    After a `seq` jump the feed resumes on the same connection by itself: `recovered` updates
    follow in order (None: the server's history no longer had them; a snapshot follows).

    `lost` counts the updates you never saw (per-symbol `seq` jumps across the gap), and
    `symbols` names the symbols they belong to; `missed_messages` is the connection-seq jump
    (None across a reconnect, where it is unknowable); `downtime_s` how long the feed was down.
    With reason "restarted" (the server's `epoch` changed) `lost` is None: the new run's
    history does not reach back before its start, so what was missed cannot be counted.
    `recovered` is how many updates the server replayed after a reconnect (they follow this
    event, in order, then live data; `lost` is then 0), or None when it could not resume.
    With reason "book", the books of `symbols` failed their sequence or checksum check (`lost`
    None): they are dropped and fetched again, a `BookUpdate` says when they are back.
    """

    reason: Literal["reconnected", "restarted", "seq", "source", "book"]
    lost: int | None
    symbols: tuple[str, ...]
    missed_messages: int | None = None
    downtime_s: float = 0.0
    recovered: int | None = None


@dataclass(frozen=True, slots=True)
class Status:
    """The connection's state changed: 'live', 'reconnecting' (with `retry_in_s`) or 'closed'."""

    state: Literal["live", "reconnecting", "closed"]
    retry_in_s: float | None = None
    error: str | None = None
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class TradingStatus:
    """A symbol's trading status changed (a market scenario halted or resumed it): "halted"
    means no trade and no quote of `symbol` until its "trading" status; `reason` is "scenario"
    (a halt of the scenario) or "luld" (its price left its limit up-limit down band), `ts` the
    event time (ns) from which it holds. In order with the symbol's batches; after a snapshot,
    one for each of its symbols halted then."""

    symbol: str
    status: Literal["trading", "halted"]
    reason: str
    ts: int


@dataclass(frozen=True, slots=True)
class ScenarioChange:
    """A market scenario started or ended on the server (`state` "started" or "ended") at
    event time `ts` (ns); `active` names the scenarios playing after it, oldest first (as
    `feed.scenarios`). In order with the batches."""

    name: str
    state: Literal["started", "ended"]
    ts: int
    active: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """Order books changed: `feed.book(symbol)` has the new book of each of `symbols`.

    `kind` "book_snapshot": they are (again) held from a fresh snapshot; "book": changes were
    applied, each checked against its book seq and checksum; `conflated` counts the symbols whose
    change was conflated (a smaller depth, `mode` latest or a throttle). `seq` is the
    connection's message seq."""

    kind: Literal["book", "book_snapshot"]
    seq: int
    symbols: tuple[str, ...]
    conflated: int = 0
    # After `feed.keep_book_levels()`, binary encoding: the LEVEL_DTYPE records this
    # event applied, for its `symbols` only: every change in order, or, for a snapshot (and a
    # conflated change), each book's levels within its depth, all at the book's seq and ts.
    levels: NDArray[np.void] | None = field(default=None, compare=False, repr=False)


Event = Batch | Gap | Status | TradingStatus | ScenarioChange | BookUpdate


def unwrap_group(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """Unwrap a group holding one exception, so users catch ConnectError, not a group."""
    leaves = list(_leaves(group))
    return leaves[0] if len(leaves) == 1 else group


def _leaves(exc: BaseException) -> Any:
    if isinstance(exc, BaseExceptionGroup):
        for e in exc.exceptions:
            yield from _leaves(e)
    else:
        yield exc
