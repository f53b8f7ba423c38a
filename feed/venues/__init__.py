"""Exchange dialects: the simulated market in Alpaca's (stocks and crypto), Binance's,
Coinbase's and Kraken's own protocols.

Each venue is two sans-IO classes (no trio, no sockets, no clock of their own):

- an **encoder**, one per venue per server, shared by all of that venue's connections:
  `encoder.encode(batch, now_ns) -> Shared` turns one `TICK_DTYPE` batch (and the event time the
  market stepped to) into the venue's messages, each encoded at most once per codec. Call it for
  every batch the hub publishes, in order, from the server's start (bars and session statistics
  are running state; a trade's id is its record's `seq`); skip it only while the venue has no
  sessions if those may restart.
  `encoder.current(record, channel) -> bytes | None` is the venue's message for a symbol's
  latest state (a `TICK_DTYPE` record from the hub's last-value cache), for venues that send
  one at subscribe (Coinbase's ticker); the others return None.
- a **session** per connection, made by `ROUTES[prefix](Upgrade(path, query, headers, universe,
  tokens, now_ns, services))` when an upgrade's path starts with `prefix` (`route(path)` finds it).
  `services` (a `Services`) is what the server's sessions share: Alpaca's connections per key,
  the `current` messages above. A factory may raise `HandshakeRefused(status, reason)`: answer
  the HTTP request with that status, no upgrade.

The VenueSession protocol, and what the connection layer must do with each result:

- `venue: str` names the encoder whose `Shared` output the session reads.
- `opened(now_ns) -> Reply`: right after the handshake; send its frames.
- `receive(data: str | bytes, now_ns) -> Reply`: every complete text (`str`) or binary (`bytes`)
  message from the client; send the reply's frames in order, before any later data.
- `deliver(shared) -> list[Frame]`: for each batch's `Shared`, in order; send the frames (none:
  nothing). The list, like the bytes, is shared with sessions of the same subscription: read it,
  never change it.
- `next_deadline() -> int | None` (ns, the same clock as `now_ns`): call `timeout(now_ns) -> Reply`
  once it has passed (Alpaca's auth timeout, Coinbase's 5 s subscribe deadline, Binance's 24 h
  connection lifetime), then ask for the next deadline again.
- `overflow() -> Reply`: the connection's bounded send buffer is full (a slow reader); send what
  the reply says if it can (Alpaca's 407) and close. The buffers are the connection layer's.
- `closed()`: the connection has ended, however it ended (called once, even if `opened` was
  not): the session gives back what it holds in `services` (an Alpaca key's connection slot).
- `symbols: frozenset[int]`: symbol ids the session wants data for (also in `Reply.symbols`
  whenever it changes), for statistics or routing; `deliver` is still called for every batch
  (it is cheap when nothing matches, and Coinbase's first messages ride on the next batch).

Order books (`books.py`): a session books symbols at a depth with `Reply.books` (its whole new
set, {symbol id: depth}; `Services.book_depth` is the server's, 0 when it keeps none), and an
encoder that serves books is a `books.BookCodec` (`book_snapshot`, `encode_books`): its book
messages reach the sessions through `deliver`, as ticks do, before the ticks of the same flush.

WebSocket pings, pongs and the close handshake stay the connection layer's (it pings Binance
connections every 20 s, as Binance does). A `Reply` holds `frames` (`Frame(data: bytes,
binary: bool)`: text frames carry UTF-8 bytes), `symbols` (the new symbol set, or None when
unchanged) and `close` (`Close(code, reason)`: send the frames, then close the WebSocket with
that code). Nothing a client sends raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

import numpy as np

from tickwire.simulators.ticks import TickBatch
from tickwire.simulators.universe import Universe

from ._common import Close, Frame, HandshakeRefused, KeyLimit, Reply, Services, Shared
from .alpaca import AlpacaEncoder, AlpacaSession
from .alpaca_crypto import AlpacaCryptoEncoder, AlpacaCryptoSession
from .binance import BinanceEncoder, BinanceSession
from .coinbase import CoinbaseEncoder, CoinbaseSession
from .kraken import KrakenSession
from .kraken_encoder import KrakenEncoder

__all__ = [
    "ENCODERS",
    "ROUTES",
    "Close",
    "Frame",
    "HandshakeRefused",
    "KeyLimit",
    "Reply",
    "Services",
    "Shared",
    "Upgrade",
    "VenueEncoder",
    "VenueSession",
    "route",
]


class VenueSession(Protocol):
    """One venue connection's state; see the module docstring for the contract."""

    venue: str

    @property
    def symbols(self) -> frozenset[int]: ...
    def opened(self, now_ns: int) -> Reply: ...
    def receive(self, data: str | bytes, now_ns: int) -> Reply: ...
    def deliver(self, shared: Shared) -> list[Frame]: ...
    def next_deadline(self) -> int | None: ...
    def timeout(self, now_ns: int) -> Reply: ...
    def overflow(self) -> Reply: ...
    def closed(self) -> None: ...


class VenueEncoder(Protocol):
    """A venue's per-batch encoder, shared by all of the venue's sessions."""

    venue: str

    def encode(self, batch: TickBatch, now_ns: int) -> Shared: ...
    def current(self, record: np.void, channel: str) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Upgrade:
    """One accepted upgrade request to a venue's path, and what the server's sessions share."""

    path: str
    query: str
    headers: Mapping[str, str]
    universe: Universe
    tokens: Sequence[str]
    now_ns: int
    services: Services | None = None
    peer: str = ""  # the client's address (Alpaca slows down addresses that fail auths)


Factory = Callable[[Upgrade], VenueSession]  # may raise HandshakeRefused


def _alpaca(up: Upgrade) -> VenueSession:
    parts = up.path.strip("/").split("/")  # alpaca, v2, feed; or alpaca, v1beta3, crypto, feed
    crypto = len(parts) == 4 and parts[1:3] == ["v1beta3", "crypto"]
    if not crypto and (len(parts) != 3 or parts[1] != "v2"):
        raise HandshakeRefused(
            404,
            f"unknown Alpaca path {up.path!r}; use /alpaca/v2/{{iex,sip,test}} "
            "or /alpaca/v1beta3/crypto/us",
        )
    services = up.services
    options: dict[str, Any] = {
        "keys": services.alpaca_keys if services is not None else None,
        "failures": services.alpaca_auth_failures if services is not None else None,
        "peer": up.peer,
    }
    if services is not None and not crypto:  # `lulds`: the bands standing, at subscribe
        options["current"], options["banded"] = services.current, services.banded
    if crypto:
        options["book_depth"] = services.book_depth if services is not None else 0
    return (AlpacaCryptoSession if crypto else AlpacaSession)(
        parts[-1], up.headers, up.universe, up.tokens, up.now_ns, **options
    )


def _binance(up: Upgrade) -> VenueSession:
    depth = up.services.book_depth if up.services is not None else 0
    return BinanceSession(up.path, parse_qs(up.query), up.universe, up.now_ns, depth)


def _coinbase(up: Upgrade) -> VenueSession:
    if up.path.rstrip("/") != "/coinbase":
        raise HandshakeRefused(404, f"unknown Coinbase path {up.path!r}; use /coinbase")
    services = up.services
    if services is None:
        return CoinbaseSession(up.universe, up.now_ns, tokens=up.tokens)
    return CoinbaseSession(
        up.universe,
        up.now_ns,
        current=services.current,
        tokens=up.tokens,
        book_depth=services.book_depth,
    )


def _kraken(up: Upgrade) -> VenueSession:
    if up.path.rstrip("/") != "/kraken/v2":
        raise HandshakeRefused(404, f"unknown Kraken path {up.path!r}; use /kraken/v2")
    services = up.services
    if services is None:
        return KrakenSession(up.universe, up.now_ns)
    return KrakenSession(
        up.universe, up.now_ns, current=services.current, book_depth=services.book_depth
    )


ROUTES: dict[str, Factory] = {
    "/alpaca/": _alpaca,
    "/binance/": _binance,
    "/coinbase": _coinbase,
    "/kraken/": _kraken,
}

ENCODERS: dict[str, Callable[[Universe], VenueEncoder]] = {
    "alpaca": AlpacaEncoder,
    "alpaca_crypto": AlpacaCryptoEncoder,
    "binance": BinanceEncoder,
    "coinbase": CoinbaseEncoder,
    "kraken": KrakenEncoder,
}


def route(path: str) -> Factory | None:
    """The session factory for an upgrade request's path (no query), or None if no venue's."""
    for prefix, factory in ROUTES.items():
        if path.startswith(prefix) or path == prefix.rstrip("/"):
            return factory
    return None
