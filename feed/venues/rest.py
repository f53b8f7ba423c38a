"""The venues' REST market-data APIs on the feed's own port: `/binance/api/v3/...`,
`/coinbase/...`, `/alpaca/v2/stocks/...`, `/alpaca/v1beta3/crypto/us/...` (`rest_binance.py`,
`rest_coinbase.py`, `rest_alpaca.py`, `rest_alpaca_crypto.py`).

Sans-IO, like the venues' sessions: a handler takes a `RestRequest` (method, path, query,
headers, the client's address) and the event time `now_ns`, and returns a `RestResponse`
(status, headers, body bytes), each body encoded once. Handlers read the same market as the
venue streams: the hub's last-value cache (`latest()`, one `TICK_DTYPE` record per symbol) and a
`RestTape` (recent trades and minute bars, fed every published batch). Work per request is
bounded: limits are capped as the venues cap them, and every read is a scan of a bounded ring.

`RestApi.route(path)` finds the venue of a path (None: not a REST path). With server tokens, a
request must carry one, as a bearer token, `?token=` or the venue's own key header (Binance's
`X-MBX-APIKEY`, Coinbase's `CB-ACCESS-KEY`, Alpaca's `APCA-API-KEY-ID` or
`APCA-API-SECRET-KEY`, as Alpaca's stream takes the key or the secret), and is refused in the
venue's error shape. Imports neither trio nor any socket library.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from tickwire.feed.venues._rest_common import (
    Handler,
    MarketView,
    RestRequest,
    RestResponse,
    WeightWindow,
    json_response,
)
from tickwire.feed.venues._rest_tape import RestTape
from tickwire.feed.venues.rest_alpaca import AlpacaRest
from tickwire.feed.venues.rest_alpaca_crypto import PREFIX as _CRYPTO_PREFIX
from tickwire.feed.venues.rest_alpaca_crypto import AlpacaCryptoRest
from tickwire.feed.venues.rest_binance import BinanceRest
from tickwire.feed.venues.rest_coinbase import CoinbaseRest
from tickwire.feed.venues.rest_coinbase_advanced import CoinbaseAdvancedRest

__all__ = ["MarketView", "RestApi", "RestRequest", "RestResponse", "RestTape"]


NS_PER_S = 1_000_000_000
# Coinbase Exchange's public endpoints: 10 requests a second per address, in bursts of up to
# 15 (as a fixed one-second window of 15). Alpaca's market data: 200 requests a minute per key.
COINBASE_PER_S = 15
ALPACA_PER_MIN = 200  # stocks and crypto together, as Alpaca counts them
CRYPTO = _CRYPTO_PREFIX + "/"


class RestApi:
    """Every venue's REST handlers over one market view, and the server's tokens."""

    def __init__(
        self,
        view: MarketView,
        *,
        tokens: Sequence[str] = (),
        binance_weight_per_min: int = 6000,
        coinbase_per_s: int = COINBASE_PER_S,
        alpaca_per_min: int = ALPACA_PER_MIN,
    ) -> None:
        """`coinbase_per_s`, `alpaca_per_min`: requests per address (Coinbase) or key (Alpaca)
        and window; 0: no limit."""
        self.view = view
        self.tokens = tuple(tokens)
        self.binance = BinanceRest(view, weight_per_min=binance_weight_per_min)
        coinbase, alpaca = CoinbaseRest(view), AlpacaRest(view)
        self._coinbase = _limited(coinbase.handle, coinbase_per_s, NS_PER_S, _coinbase_limit)
        advanced = CoinbaseAdvancedRest(view).handle
        self._advanced = _limited(advanced, coinbase_per_s, NS_PER_S, _coinbase_limit)
        crypto = AlpacaCryptoRest(view).handle

        def alpaca_data(req: RestRequest, now_ns: int) -> RestResponse:  # one rate for both
            return (crypto if req.path.startswith(CRYPTO) else alpaca.handle)(req, now_ns)

        self._alpaca = _limited(alpaca_data, alpaca_per_min, 60 * NS_PER_S, _alpaca_limit)

    def route(self, path: str) -> Handler | None:
        """The handler of a REST path, or None (WebSocket paths of the venues are not REST)."""
        if path.startswith("/binance/api/"):
            return self._guard(self.binance.handle, ("x-mbx-apikey",), _binance_refusal)
        if path.startswith(("/coinbase/api/", "/coinbase/v2/")):
            return self._guard(self._advanced, ("cb-access-key",), _coinbase_refusal)
        if path.startswith("/coinbase/") and path.rstrip("/") != "/coinbase":
            return self._guard(self._coinbase, ("cb-access-key",), _coinbase_refusal)
        if path.startswith("/alpaca/v2/stocks/") or path == "/alpaca/v2/stocks":
            keys = ("apca-api-key-id", "apca-api-secret-key")
            return self._guard(self._alpaca, keys, _alpaca_refusal)
        if path.startswith(CRYPTO):
            keys = ("apca-api-key-id", "apca-api-secret-key")
            return self._guard(self._alpaca, keys, _alpaca_refusal)
        return None

    def _guard(
        self, handler: Handler, key_headers: tuple[str, ...], refusal: RestResponse
    ) -> Handler:
        if not self.tokens:
            return handler
        tokens = self.tokens

        def guarded(req: RestRequest, now_ns: int) -> RestResponse:
            if not _token_sent(tokens, req, key_headers):
                return refusal
            return handler(req, now_ns)

        return guarded


def _limited(
    handler: Handler,
    limit: int,
    window_ns: int,
    refusal: Callable[[WeightWindow, int, int, int | None], RestResponse | None],
) -> Handler:
    """`handler` behind a per-client request count (`limit` 0: none); `refusal(window, used,
    now_ns, retry_s)` is the venue's 429 (None: answer), or adds the venue's headers."""
    if not limit:
        return handler
    window = WeightWindow(limit, window_ns)

    def limited(req: RestRequest, now_ns: int) -> RestResponse:
        client = req.headers.get("apca-api-key-id") or req.peer  # Alpaca counts per key
        used, retry_s = window.charge(client, 1, now_ns)
        refused = refusal(window, used, now_ns, retry_s)
        if refused is not None:
            return refused
        resp = handler(req, now_ns)
        extra = _alpaca_headers(window, used, now_ns) if refusal is _alpaca_limit else ()
        return RestResponse(resp.status, (*resp.headers, *extra), resp.body)

    return limited


def _coinbase_limit(
    window: WeightWindow, used: int, now_ns: int, retry_s: int | None
) -> RestResponse | None:
    if retry_s is None:
        return None
    return json_response(429, {"message": "Public rate limit exceeded"}, [("Retry-After", "1")])


def _alpaca_headers(window: WeightWindow, used: int, now_ns: int) -> tuple[tuple[str, str], ...]:
    reset_s = (now_ns + window.reset_ns(now_ns)) // NS_PER_S
    return (
        ("X-RateLimit-Limit", str(window.limit)),
        ("X-RateLimit-Remaining", str(max(0, window.limit - used))),
        ("X-RateLimit-Reset", str(reset_s)),
    )


def _alpaca_limit(
    window: WeightWindow, used: int, now_ns: int, retry_s: int | None
) -> RestResponse | None:
    if retry_s is None:
        return None
    body = {"code": 42910000, "message": "rate limit exceeded"}
    headers = [*_alpaca_headers(window, used, now_ns), ("Retry-After", str(retry_s))]
    return json_response(429, body, headers)


_binance_refusal = json_response(
    401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
)
_coinbase_refusal = json_response(401, {"message": "invalid api key"})
_alpaca_refusal = json_response(401, {"code": 40110000, "message": "request is not authorized"})


def _token_sent(tokens: tuple[str, ...], req: RestRequest, key_headers: tuple[str, ...]) -> bool:
    scheme, _, value = req.headers.get("authorization", "").partition(" ")
    sent = [value.strip()] if scheme.lower() == "bearer" else []
    sent += [req.headers.get(h, "") for h in key_headers]
    sent.append(req.params().get("token", ""))
    ok = False
    for given in filter(None, sent):  # an empty value never matches
        for token in tokens:  # every token compared, in constant time each
            ok |= hmac.compare_digest(given.encode(), token.encode())
    return ok
