"""What every venue dialect shares: the decisions a session returns, the per-batch shared output,
venue symbol names and the number and time formats the venues use.

Sans-IO: imports neither trio nor any socket library; time arrives as `now_ns` arguments and
event time as the records' `ts`.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tickwire.simulators.universe import Universe

from ._authguard import AuthFailures

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
NS_PER_MIN = 60 * NS_PER_S


class Frame(NamedTuple):
    """One WebSocket message to send: UTF-8 text (`binary` False) or binary payload bytes."""

    data: bytes
    binary: bool = False


class Close(NamedTuple):
    """Close the connection with this WebSocket close code and reason, after the frames."""

    code: int
    reason: str


class HandshakeRefused(Exception):
    """The upgrade request names no valid stream: answer it with this HTTP status, no upgrade."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class Reply:
    """A session's decisions for one input: frames to send in order, then maybe close.

    `symbols` is the session's new set of symbol ids when the input changed it (None: unchanged);
    a connection layer that routes batches by symbol uses it, one that feeds every batch to every
    session of the venue may ignore it. `books` is the session's new set of order books when the
    input changed it ({symbol id: depth}; see `venues.books`).
    """

    frames: list[Frame] = field(default_factory=list)
    symbols: frozenset[int] | None = None
    close: Close | None = None
    books: dict[int, int] | None = None  # the new {symbol id: depth} it books (see books.py)


class KeyLimit:
    """Connections per key, shared by every session of one server (Alpaca's 406).

    A session `acquire`s its key when it authenticates and `release`s it when the connection
    ends, however it ends; `per_key` 0 means no limit (the counts are still kept).
    """

    __slots__ = ("counts", "per_key")

    def __init__(self, per_key: int = 0) -> None:
        if per_key < 0:
            raise ValueError(f"per_key must be 0 (no limit) or more, got {per_key}")
        self.per_key = per_key
        self.counts: Counter[Hashable] = Counter()

    def acquire(self, key: Hashable) -> bool:
        """Count one more connection for `key`; False (nothing counted) when at the limit."""
        if self.per_key and self.counts[key] >= self.per_key:
            return False
        self.counts[key] += 1
        return True

    def release(self, key: Hashable) -> None:
        left = self.counts[key] - 1
        if left > 0:
            self.counts[key] = left
        else:
            del self.counts[key]


class MessageRate:
    """A venue's limit on what a client sends: at most `limit` units in any `window_ns`.

    A sliding window of the accepted messages and their cost, as Binance counts its "5 incoming
    messages a second". The cost of one message is 1 for a message limit, or the symbols it
    names for a symbol budget (a subscribe of 5000 symbols costs 5000); a message that costs
    more than `limit` is charged `limit`, so the largest request still passes on an empty
    window. The deque holds at most `limit` entries.
    """

    __slots__ = ("_recent", "_total", "limit", "window_ns")

    def __init__(self, limit: int, window_ns: int = NS_PER_S) -> None:
        if limit < 1 or window_ns < 1:
            raise ValueError(f"limit and window_ns must be positive, got {limit}, {window_ns}")
        self.limit = limit
        self.window_ns = window_ns
        self._recent: deque[tuple[int, int]] = deque()  # (time ns, cost), oldest first
        self._total = 0

    def allow(self, now_ns: int, cost: int = 1) -> bool:
        """Charge one message of `cost` at `now_ns`; False (nothing charged) when over."""
        recent = self._recent
        while recent and now_ns - recent[0][0] >= self.window_ns:
            self._total -= recent.popleft()[1]
        cost = max(1, min(cost, self.limit))
        if self._total + cost > self.limit:
            return False
        recent.append((now_ns, cost))
        self._total += cost
        return True


def _no_current(venue: str, sym: int, channel: str) -> bytes | None:
    return None


@dataclass(slots=True)
class Services:
    """What a server lends its venue sessions beyond one request: state shared across
    connections, as plain objects and callables (no I/O, no clock)."""

    alpaca_keys: KeyLimit = field(default_factory=KeyLimit)  # authenticated, per (feed, key)
    # (venue, symbol id, channel) -> that venue's message for the symbol's latest state, built
    # from the hub's last-value cache (Coinbase's ticker at subscribe), or None
    current: Callable[[str, int, str], bytes | None] = _no_current
    alpaca_auth_failures: AuthFailures = field(default_factory=AuthFailures)  # by address
    book_depth: int = 0  # the server's order book depth (--book-depth); 0: it keeps no books
    # the symbol ids with LULD bands now (a scenario's), whose `current` "lulds:json" or
    # "lulds:msgpack" message is Alpaca's `lulds` at subscribe
    banded: Callable[[], Collection[int]] = tuple


class Entry(NamedTuple):
    """One venue message of a batch, before encoding: its order, channel and content."""

    order: int  # position in the batch's event order, across symbols and channels
    channel: str
    message: Any  # what the venue's codecs build the message from, lazily, once per codec


Codec = Callable[["Shared", Entry], bytes]


class Shared:
    """One batch's messages for one venue: built once, read by every session of that venue.

    An encoder appends `(symbol id, channel, content)` to `items` in event order and nothing
    more; the symbol index, the messages and their bytes are built only when a session asks.
    Each message is encoded at most once per codec and the bytes are shared, as `/v1` shares
    JSON fragments; sessions with the same subscription share their whole output (`memo`), as
    `/v1` subscribers at the same generation share one body.
    """

    __slots__ = ("_by_sym", "_cache", "_codecs", "_memo", "items", "now_ns")

    def __init__(self, now_ns: int, codecs: Mapping[str, Codec]) -> None:
        self.now_ns = now_ns  # event time the market stepped to
        self.items: list[tuple[int, str, Any]] = []  # (symbol id, channel, content), in order
        self._codecs = codecs
        self._by_sym: dict[int, list[int]] | None = None
        self._cache: dict[tuple[str, int], bytes] = {}
        self._memo: dict[Hashable, list[Frame]] = {}

    def add(self, sym: int, channel: str, content: Any) -> None:
        """Append the batch's next message (hot loops append to `items` directly)."""
        self.items.append((sym, channel, content))

    def __len__(self) -> int:
        return len(self.items)

    def _index(self) -> dict[int, list[int]]:
        if self._by_sym is None:
            by_sym: dict[int, list[int]] = {}
            for i, (sym, _, _) in enumerate(self.items):
                found = by_sym.get(sym)
                if found is None:
                    by_sym[sym] = [i]
                else:
                    found.append(i)
            self._by_sym = by_sym
        return self._by_sym

    @property
    def syms(self) -> set[int]:
        """Symbol ids with messages in this batch."""
        return set(self._index())

    def encoded(self, entry: Entry, codec: str) -> bytes:
        """The bytes of `entry` in `codec`, encoded on first use and then shared."""
        key = (codec, entry.order)
        data = self._cache.get(key)
        if data is None:
            data = self._cache[key] = self._codecs[codec](self, entry)
        return data

    def memo(self, key: Hashable, build: Callable[[], list[Frame]]) -> list[Frame]:
        """`build()`, computed once per batch for every session whose subscription is `key`.

        The list and its frames are shared: callers must not change them.
        """
        frames = self._memo.get(key)
        if frames is None:
            frames = self._memo[key] = build()
        return frames

    def select(self, syms: set[int] | None, wants: Callable[[int, str], bool]) -> list[Entry]:
        """The entries a session wants, in event order. `syms` None: every symbol."""
        items = self.items
        if syms is None:
            return [Entry(i, c, m) for i, (s, c, m) in enumerate(items) if wants(s, c)]
        index = self._index()
        chosen = index.keys() & syms
        if 4 * len(chosen) > len(index):  # most of the batch: one pass, already in order
            return [
                Entry(i, c, m) for i, (s, c, m) in enumerate(items) if s in chosen and wants(s, c)
            ]
        picked = [i for s in chosen for i in index[s]]
        if len(chosen) > 1:
            picked.sort()
        out = []
        for i in picked:
            s, c, m = items[i]
            if wants(s, c):
                out.append(Entry(i, c, m))
        return out


# ----------------------------------------------------------------------------- symbol names


def binance_name(symbol: str) -> str:
    """Binance's symbol for a universe symbol: ASCII letters and digits, upper case."""
    return "".join(c for c in symbol if c.isascii() and c.isalnum()).upper()


def binance_names(universe: Universe) -> dict[str, int]:
    """Lower-case Binance stream symbol to symbol id; on a clash the first symbol keeps it."""
    out: dict[str, int] = {}
    for i, s in enumerate(universe.symbols):
        out.setdefault(binance_name(s).lower(), i)
    return out


# ----------------------------------------------------------------------------- numbers and times


def decimals_of(tick: float) -> int:
    """How many decimals a price on a grid of `tick` needs (0.01: 2, 0.5: 1, 1: 0)."""
    for d in range(10):
        if abs(round(tick, d) - tick) < 1e-12:
            return d
    return 10


def price_formats(universe: Universe) -> list[str]:
    """Per symbol, the format string of a price at its tick size ("{:.2f}" for 0.01)."""
    return [f"{{:.{decimals_of(float(t))}f}}" for t in universe.tick_size]


class Clock:
    """RFC 3339 UTC time stamps from event-time ns, with the date part cached per second."""

    __slots__ = ("_prefix", "_sec")

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def _head(self, sec: int) -> str:
        if sec != self._sec:
            self._sec = sec
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return self._prefix

    def ns(self, ts: int) -> str:
        """2021-02-22T15:51:45.335689322Z (Alpaca)."""
        sec, frac = divmod(ts, NS_PER_S)
        return f"{self._head(sec)}.{frac:09d}Z"

    def us(self, ts: int) -> str:
        """2022-10-19T23:28:22.061769Z (Coinbase)."""
        sec, frac = divmod(ts, NS_PER_S)
        return f"{self._head(sec)}.{frac // 1000:06d}Z"

    def whole(self, ts: int) -> str:
        """2021-02-22T19:15:00Z (Alpaca bar starts)."""
        return f"{self._head(ts // NS_PER_S)}Z"


def describe(value: Any) -> str:
    """A short, safe rendering of a client's value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
