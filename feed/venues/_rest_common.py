"""What the venues' REST handlers share: request and response, errors, the weight window and the
market view they read (the hub's latest record per symbol and a `RestTape`), with the venues'
number formats. Sans-IO: imports neither trio nor any socket library.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson

from tickwire.feed.hub.books import Books
from tickwire.feed.venues._common import decimals_of
from tickwire.feed.venues._rest_tape import RestTape
from tickwire.feed.venues._sizes import Sizes
from tickwire.simulators.ticks import TickBatch
from tickwire.simulators.universe import Universe

JSON = ("Content-Type", "application/json;charset=UTF-8")
CORS = ("Access-Control-Allow-Origin", "*")  # the venues' public market data: any page may read


@dataclass(frozen=True, slots=True)
class RestRequest:
    """One plain-HTTP request to a venue's REST path."""

    method: str
    path: str  # without the query
    query: str
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-cased names
    peer: str = ""  # the client's address: rate limits are per address

    def params(self) -> dict[str, str]:
        """The query's parameters (the first value of a repeated one)."""
        return {k: v[0] for k, v in parse_qs(self.query, keep_blank_values=True).items()}


@dataclass(frozen=True, slots=True)
class RestResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


def json_response(status: int, obj: Any, headers: Sequence[tuple[str, str]] = ()) -> RestResponse:
    """`obj` encoded once, with the JSON content type and open CORS."""
    return RestResponse(status, (JSON, CORS, *headers), orjson.dumps(obj))


def raw_json(status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> RestResponse:
    return RestResponse(status, (JSON, CORS, *headers), body)


# A bus gateway mirrors the producer's books only while someone reads them: the first read after
# an idle spell starts it, and the books are current a round trip later. Until then a venue's
# REST book answers 503 with this reason (and `Retry-After: 1`), never a stale book.
BOOKS_LOADING = "order books are loading on this server (a bus gateway fetching them): retry"
RETRY_SOON = (("Retry-After", "1"),)


class RestError(Exception):
    """A request the venue refuses: its HTTP status and error object."""

    def __init__(self, status: int, body: Any, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.headers = tuple(headers)

    def response(self) -> RestResponse:
        return json_response(self.status, self.body, self.headers)


class WeightWindow:
    """Request weight per client in fixed windows of event time (a minute by default), as
    Binance counts `X-MBX-USED-WEIGHT-1M`. Only the current window's clients are kept."""

    __slots__ = ("_used", "_window", "limit", "window_ns")

    def __init__(self, limit: int, window_ns: int = 60_000_000_000) -> None:
        if limit < 1 or window_ns < 1:
            raise ValueError(f"a limit and its window are 1 or more, got {limit}, {window_ns}")
        self.limit = limit
        self.window_ns = window_ns
        self._window = -1
        self._used: dict[str, int] = {}

    def charge(self, peer: str, weight: int, now_ns: int) -> tuple[int, int | None]:
        """Charge `weight` to `peer`; its weight used this window, and the seconds to wait
        (Retry-After) if that is past the limit, else None."""
        window = now_ns // self.window_ns
        if window != self._window:
            self._window = window
            self._used.clear()
        used = self._used[peer] = self._used.get(peer, 0) + weight
        if used <= self.limit:
            return used, None
        return used, max(1, -(-self.reset_ns(now_ns) // 1_000_000_000))

    def reset_ns(self, now_ns: int) -> int:
        """Time left until the window ends."""
        return (now_ns // self.window_ns + 1) * self.window_ns - now_ns


@dataclass(slots=True)
class MarketView:
    """What the REST handlers read: the universe, the latest record per symbol, the tape, and
    the server's order books (None: the market keeps none, `serve --book-depth 0`)."""

    universe: Universe
    latest: Callable[[], TickBatch]
    tape: RestTape
    # The symbol ids halted now (a market scenario's halts; none without one).
    halted: Callable[[], Collection[int]] = lambda: ()
    books: Books | None = None
    size_decimals: list[int] = field(init=False)
    price_decimals: list[int] = field(init=False)
    sizes: Sizes = field(init=False)

    def __post_init__(self) -> None:
        self.sizes = Sizes(self.universe)
        self.size_decimals = self.sizes.decimals
        self.price_decimals = [decimals_of(float(t)) for t in self.universe.tick_size]

    def size(self, sym: int, units: int, places: int = 0) -> str:
        """A size in the universe's units as the asset's decimal quantity ("0.00123"), with at
        least `places` decimals (Binance's 8: "0.00123000")."""
        return self.sizes.text(sym, units, places)

    def unit(self, sym: int) -> float:
        """What one size unit of the symbol is worth in its asset (1 share, 0.00001 BTC)."""
        return self.sizes.units[sym]

    def price(self, sym: int, value: float) -> str:
        return f"{value:.{self.price_decimals[sym]}f}"


Handler = Callable[[RestRequest, int], RestResponse]
