"""Alpaca's crypto market-data REST API under `/alpaca/v1beta3/crypto/us/`, sans-IO.

`bars`, `trades` and `quotes` for many symbols (`?symbols=BTC/USD,ETH/USD`, with `start`, `end`,
`limit`, `sort`, `page_token` and, for bars, `timeframe`, exactly as the stock API's in
`rest_alpaca.py`), `latest/trades`, `latest/quotes`, `latest/bars` and `snapshots`, each
answered as Alpaca answers them (`{"bars": {"BTC/USD": [...]}, "next_page_token": ...}`,
`{"snapshots": {...}}`). Symbols are Alpaca's `BASE/QUOTE` for the universe's crypto pairs
(`BTC/USD` is `BTC-USD`); others have no data, as at Alpaca. Crypto's records: a trade is
`{t, p, s, i, tks}` (the taker's side), a quote `{t, bp, bs, ap, as}`, sizes in the asset.
`latest/orderbooks` waits for the order book (404 until then).
"""

from __future__ import annotations

from typing import Any

from tickwire.feed.venues._rest_common import (
    MarketView,
    RestError,
    RestRequest,
    RestResponse,
    json_response,
)
from tickwire.feed.venues.alpaca_crypto import alpaca_names
from tickwire.feed.venues.rest_alpaca import KINDS, AlpacaRest

PREFIX = "/alpaca/v1beta3/crypto/us"


class AlpacaCryptoRest(AlpacaRest):
    """The Alpaca crypto data handlers of one server: the stock API's paging and bars over
    crypto's paths, names and records."""

    def __init__(self, view: MarketView) -> None:
        super().__init__(view)
        self.index = alpaca_names(view.universe)

    def handle(self, req: RestRequest, now_ns: int) -> RestResponse:
        parts = req.path[len(PREFIX) :].strip("/").split("/")
        try:
            return json_response(200, self._crypto(parts, req.params(), now_ns))
        except RestError as exc:
            return exc.response()

    def _crypto(self, parts: list[str], params: dict[str, str], now_ns: int) -> Any:
        if len(parts) == 1 and parts[0] in KINDS:
            return self._history(parts[0], self._symbols(params), params, now_ns, None)
        if len(parts) == 2 and parts[0] == "latest" and parts[1] in KINDS:
            latest = self._latest(parts[1], self._symbols(params))
            return {parts[1]: {name: v for name, v in latest.items() if v is not None}}
        if parts == ["snapshots"]:
            return {"snapshots": self._snapshots(self._symbols(params))}
        raise RestError(404, {"code": 40410000, "message": "endpoint not found"})

    def _trade(self, sym: int, r: Any) -> dict[str, Any]:
        return {
            "t": self._clock.ns(int(r["ts"])),
            "p": float(r["price"]),
            "s": self._size(sym, int(r["size"])),
            "i": int(r["id"]),
            "tks": "B" if r["buy"] else "S",
        }

    def _quote(self, sym: int, r: Any) -> dict[str, Any]:
        return {
            "t": self._clock.ns(int(r["ts"])),
            "bp": float(r["bid"]),
            "bs": self._size(sym, int(r["bid_size"])),
            "ap": float(r["ask"]),
            "as": self._size(sym, int(r["ask_size"])),
        }
