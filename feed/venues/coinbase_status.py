"""Coinbase's `status` channel over a market scenario's halts: products and their trading status.

Coinbase Exchange's `status` channel sends `{"type": "status", "products": [...], "currencies":
[...]}`, each product with its `status`, `status_message`, `trading_disabled` and order-type
flags. Here a subscriber gets its products' status when it subscribes, then a `status`
message naming the product each time a scenario halts it (`"status": "offline"`,
`trading_disabled` and `cancel_only` true, `status_message` saying why) or it trades again
(`"online"`). The real feed repeats every product on a timer; the simulated one sends changes
only: it has nothing else to say between them. `currencies` lists the product's two currencies.
Sans-IO; used by `coinbase.CoinbaseEncoder`.
"""

from __future__ import annotations

from typing import Any

import orjson

from tickwire.simulators.universe import Universe

CHANNEL = "status"
_REASONS = {1: "a halt of the market scenario", 2: "its limit up-limit down band"}


def split_product(name: str) -> tuple[str, str]:
    """A product id's base and quote currencies ("BTC-USD"; a stock "AAPL" is quoted in USD)."""
    base, _, quote = name.partition("-")
    return base, quote or "USD"


def product(
    universe: Universe, sym: int, halted: bool, reason: int, *, quote_increment: str
) -> dict[str, Any]:
    """One product of a `status` message."""
    name = universe.symbols[sym]
    base, quote = split_product(name)
    why = f"trading halted: {_REASONS.get(reason, 'a market event')}" if halted else ""
    return {
        "id": name,
        "base_currency": base,
        "quote_currency": quote,
        "quote_increment": quote_increment,
        "display_name": f"{base}/{quote}",
        "status": "offline" if halted else "online",
        "status_message": why,
        "post_only": False,
        "limit_only": False,
        "cancel_only": halted,
        "trading_disabled": halted,
        "auction_mode": False,
    }


def message(products: list[dict[str, Any]]) -> dict[str, Any]:
    """The `status` message of `products`, with their currencies."""
    currencies: dict[str, None] = {}
    for p in products:
        currencies.update(dict.fromkeys((p["base_currency"], p["quote_currency"])))
    listed = [{"id": c, "name": c, "status": "online"} for c in currencies]
    return {"type": "status", "products": products, "currencies": listed}


def encoded(
    universe: Universe, sym: int, halted: bool, reason: int, *, quote_increment: str
) -> bytes:
    """The `status` message of one product, as sent."""
    one = product(universe, sym, halted, reason, quote_increment=quote_increment)
    return orjson.dumps(message([one]))
