"""The adapter the connection layer plugs in: routes, factories and the session protocol."""

from __future__ import annotations

import pytest

from tickwire.feed.venues import ENCODERS, ROUTES, HandshakeRefused, Reply, Upgrade, route
from tickwire.simulators.ticks import empty_batch
from tickwire.simulators.universe import Universe

NOW = 1_700_000_000 * 10**9
U = Universe.default()
PATHS = {
    "/alpaca/v2/iex": "alpaca",
    "/alpaca/v2/sip/": "alpaca",
    "/alpaca/v2/test": "alpaca",
    "/binance/ws": "binance",
    "/binance/ws/aapl@trade": "binance",
    "/binance/stream": "binance",
    "/coinbase": "coinbase",
    "/alpaca/v1beta3/crypto/us": "alpaca_crypto",
    "/kraken/v2": "kraken",
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_every_route_makes_a_session_that_speaks_the_protocol(path: str) -> None:
    factory = route(path)
    assert factory is not None
    s = factory(Upgrade(path, "streams=aapl@bookTicker", {}, U, (), NOW))
    assert s.venue == PATHS[path] and s.venue in ENCODERS
    assert isinstance(s.opened(NOW), Reply)
    assert isinstance(s.receive("{}", NOW), Reply)
    assert isinstance(s.receive(b"\x00", NOW), Reply)
    assert isinstance(s.overflow(), Reply) and s.overflow().close is not None
    deadline = s.next_deadline()
    assert deadline is None or deadline > NOW
    assert isinstance(s.timeout(NOW), Reply)
    assert isinstance(s.symbols, frozenset)
    shared = ENCODERS[s.venue](U).encode(empty_batch(), NOW)
    assert s.deliver(shared) == []


@pytest.mark.parametrize("path", ["/v1", "/", "/alpacas", "/bin/ws", "/coin", "/krakenv2"])
def test_other_paths_are_not_venues(path: str) -> None:
    assert route(path) is None


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/alpaca/v1/iex", "", 404),
        ("/alpaca/v2/crypto", "", 404),
        ("/alpaca/v2", "", 404),
        ("/binance/api", "", 404),
        ("/binance/ws/aapl@depth", "", 400),
        ("/binance/stream", "streams=aapl@trade/AAPL@trade", 400),
        ("/coinbase/ws", "", 404),
        ("/alpaca/v1beta3/crypto/eu", "", 404),
        ("/alpaca/v1beta3/stocks/us", "", 404),
        ("/kraken/v1", "", 404),
        ("/kraken/v2/ticker", "", 404),
    ],
)
def test_bad_venue_paths_are_refused(path: str, query: str, status: int) -> None:
    factory = route(path)
    assert factory is not None
    with pytest.raises(HandshakeRefused) as info:
        factory(Upgrade(path, query, {}, U, (), NOW))
    assert info.value.status == status and info.value.reason


def test_routes_are_prefixes() -> None:
    assert set(ROUTES) == {"/alpaca/", "/binance/", "/coinbase", "/kraken/"}
