"""Alpaca's crypto market-data REST API under `/alpaca/v1beta3/crypto/us/`, sans-IO.

`bars`, `trades` and `quotes` for many symbols (`?symbols=BTC/USD,ETH/USD`, with `start`, `end`,
`limit`, `sort`, `page_token` and, for bars, `timeframe`, exactly as the stock API's in
`rest_alpaca.py`), `latest/trades`, `latest/quotes`, `latest/bars` and `snapshots`, each
answered as Alpaca answers them (`{"bars": {"BTC/USD": [...]}, "next_page_token": ...}`,
`{"snapshots": {...}}`). Symbols are Alpaca's `BASE/QUOTE` for the universe's crypto pairs
(`BTC/USD` is `BTC-USD`); others have no data, as at Alpaca. Crypto's records: a trade is
`{t, p, s, i, tks}` (the taker's side), a quote `{t, bp, bs, ap, as}`, sizes in the asset.
`latest/orderbooks` is each pair's book now, `{t, b: [{p, s}], a: [...]}` best first: every
level of the server's book, or the best bid and ask from the latest tick on a server without
books.
"""

from __future__ import annotations

from typing import Any

from tickwire.feed.venues._rest_common import (
    BOOKS_LOADING,
    RETRY_SOON,
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
        if parts == ["latest", "orderbooks"]:
            return {"orderbooks": self._orderbooks(self._symbols(params))}
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

    def _orderbooks(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Each known pair's book now (unknown pairs have none, as at Alpaca)."""
        books, latest, out = self.view.books, self.view.latest(), {}
        for name in names:
            sym = self.index.get(name)
            if sym is None:
                continue
            if books is None:
                rec = latest[sym]
                ts = int(rec["ts"])
                bids = [(float(rec["bid"]), int(rec["bid_size"]))] if rec["bid_size"] else []
                asks = [(float(rec["ask"]), int(rec["ask_size"]))] if rec["ask_size"] else []
            else:
                (bid_units, ask_units), _, ts = books.ladder(sym, books.depth)
                if not books.ready:  # read anyway: that starts a gateway's mirror
                    raise RestError(503, {"code": 50300000, "message": BOOKS_LOADING}, RETRY_SOON)
                scale = 10.0 ** self.view.price_decimals[sym]
                bids = [(u / scale, size) for u, size in bid_units]
                asks = [(u / scale, size) for u, size in ask_units]
            out[name] = {
                "t": self._clock.ns(ts),
                "b": [{"p": p, "s": self._size(sym, size)} for p, size in bids],
                "a": [{"p": p, "s": self._size(sym, size)} for p, size in asks],
            }
        return out
