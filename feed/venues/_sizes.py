"""How every venue API (streams and REST) writes a size: the universe counts sizes in integer
size units (`Universe.size_unit`: 1 share, or a crypto lot such as 0.00001 BTC); a venue shows
the asset's quantity, exactly, built from integers (210 units of 0.00001 are "0.00210", never a
float product). Sans-IO: plain arithmetic, no trio, no sockets.
"""

from __future__ import annotations

from collections.abc import Callable

from tickwire.feed.venues._common import decimals_of
from tickwire.simulators.universe import Universe

BINANCE_PLACES = 8  # Binance writes quantities with 8 decimals: "0.00210000", "210.00000000"


def _shares8(units: int) -> str:
    return f"{units}.00000000"  # a literal: the fastest form, on every Binance message


# Shares (a unit of 1) with the decimals the venues use: the formats are the hot path of every
# stream message, so they are the cheapest calls there are (Coinbase: 0, Binance: 8).
_SHARES: dict[int, Callable[[int], str]] = {0: str, 8: _shares8}


class Sizes:
    """Per symbol of a universe, its size unit as an exact decimal: `scaled` * 10^-`decimals`."""

    __slots__ = ("decimals", "plain", "powers", "scaled", "units", "whole")

    def __init__(self, universe: Universe) -> None:
        assert universe.size_unit is not None
        self.units = [float(u) for u in universe.size_unit]  # one size unit in the asset
        self.decimals = [decimals_of(u) for u in self.units]  # 0 for 1, 5 for 0.00001
        pairs = zip(self.units, self.decimals, strict=True)
        self.scaled: list[int] = [round(u * 10.0**d) for u, d in pairs]  # the unit in 10^-d
        self.powers: list[int] = [10**d for d in self.decimals]
        self.whole = [d == 0 for d in self.decimals]  # sizes are whole numbers of the asset
        self.plain = [w and s == 1 for w, s in zip(self.whole, self.scaled, strict=True)]  # 1:1

    def text(self, sym: int, units: int, places: int = 0) -> str:
        """`units` size units of symbol `sym` as the asset's decimal quantity, with the unit's
        decimals or `places` if more: (210 units of 0.00001) "0.00210", or "0.00210000" with
        `places` 8 as Binance writes it; (210 shares) "210", or "210.00000000" with 8."""
        d = self.decimals[sym]
        value = int(units) * self.scaled[sym]  # in 10^-d of the asset: exact
        if places > d:
            value *= 10 ** (places - d)
            d = places
        if d == 0:
            return str(value)
        text = f"{value:0{d + 1}d}"
        return f"{text[:-d]}.{text[-d:]}"

    def formats(self, places: int = 0) -> list[Callable[[int], str]]:
        """Per symbol, `text(sym, units, places)` as a function of `units`, for hot loops: a
        whole unit of 1 (shares) is a builtin's call, with no arithmetic."""

        def scaled(sym: int) -> Callable[[int], str]:
            d = max(places, self.decimals[sym])
            mult, whole = self.scaled[sym] * 10 ** (d - self.decimals[sym]), 10**d

            def text(units: int) -> str:
                q, r = divmod(units * mult, whole)  # exact: integers only
                return f"{q}.{r:0{d}d}"

            return text if d else lambda units: str(units * mult)

        whole = _SHARES.get(places) or ("{}." + "0" * places).format
        return [whole if plain else scaled(sym) for sym, plain in enumerate(self.plain)]

    def number(self, sym: int, units: int) -> int | float:
        """The quantity as a JSON number: an integer for whole units (shares), else the float
        nearest the exact decimal, which JSON writes back as that decimal ("0.0021")."""
        if self.whole[sym]:
            return int(units) * self.scaled[sym]
        # int / int is correctly rounded: the float nearest the exact decimal, as float(text)
        return int(units) * self.scaled[sym] / self.powers[sym]

    def notional(self, sym: int, per_unit: float) -> float:
        """An amount counted per size unit (price x size units) per unit of the asset: the
        quote currency's notional. Unchanged for shares (x 1.0 is exact)."""
        return per_unit * self.units[sym]
