"""The built-in crypto universe: the large pairs by their venue names, and what makes them differ.

Crypto pairs (`kind = "crypto"`) quote in fractional ticks and trade fractional sizes: BTC-USD at
0.01 USD and 0.00001 BTC. Every size stays exact because the simulator counts sizes in lots
(`Universe.size_unit = lot_size`): 123 means 0.00123 BTC, an integer end to end. They trade around
the clock (`tickwire simulate --universe crypto` runs 24 h sessions unless `--session` says
otherwise). Prices and activity are round figures of the large pairs, not live data. Imports
nothing of ours.
"""

from __future__ import annotations

# symbol, name, sector, price, tick_size, lot_size, activity, kind, base, quote
CRYPTO: list[tuple[str, str, str, float, float, float, float, str, str, str]] = [
    ("BTC-USD", "Bitcoin", "Crypto", 95_000.00, 0.01, 0.00001, 3.0, "crypto", "BTC", "USD"),
    ("ETH-USD", "Ethereum", "Crypto", 3_500.00, 0.01, 0.0001, 2.5, "crypto", "ETH", "USD"),
    ("SOL-USD", "Solana", "Crypto", 180.00, 0.01, 0.001, 2.0, "crypto", "SOL", "USD"),
    ("XRP-USD", "XRP", "Crypto", 2.2000, 0.0001, 0.1, 1.5, "crypto", "XRP", "USD"),
    ("DOGE-USD", "Dogecoin", "Crypto", 0.32000, 0.00001, 1.0, 1.2, "crypto", "DOGE", "USD"),
    ("ADA-USD", "Cardano", "Crypto", 0.9000, 0.0001, 0.1, 0.8, "crypto", "ADA", "USD"),
    ("AVAX-USD", "Avalanche", "Crypto", 38.00, 0.01, 0.001, 0.7, "crypto", "AVAX", "USD"),
    ("LINK-USD", "Chainlink", "Crypto", 22.000, 0.001, 0.01, 0.8, "crypto", "LINK", "USD"),
    ("LTC-USD", "Litecoin", "Crypto", 105.00, 0.01, 0.0001, 0.7, "crypto", "LTC", "USD"),
    ("DOT-USD", "Polkadot", "Crypto", 7.500, 0.001, 0.01, 0.5, "crypto", "DOT", "USD"),
    ("BCH-USD", "Bitcoin Cash", "Crypto", 480.00, 0.01, 0.0001, 0.5, "crypto", "BCH", "USD"),
    ("UNI-USD", "Uniswap", "Crypto", 13.000, 0.001, 0.01, 0.4, "crypto", "UNI", "USD"),
    ("AAVE-USD", "Aave", "Crypto", 300.00, 0.01, 0.001, 0.4, "crypto", "AAVE", "USD"),
    ("ATOM-USD", "Cosmos", "Crypto", 8.000, 0.001, 0.01, 0.4, "crypto", "ATOM", "USD"),
]

NOTIONAL_LOT = 100.0  # a crypto "round lot" in quote currency: trade sizes scale from it
