"""How every venue API (streams and REST) writes a size: the universe counts sizes in integer
size units (`Universe.size_unit`: 1 share, or a crypto lot such as 0.00001 BTC); a venue shows
the asset's quantity, exactly, built from integers (210 units of 0.00001 are "0.00210", never a
float product). Sans-IO: plain arithmetic, no trio, no sockets.
"""

from __future__ import annotations

from tickwire.feed.venues._common import decimals_of
from tickwire.simulators.universe import Universe


class Sizes:
    """Per symbol of a universe, its size unit as an exact decimal: `scaled` * 10^-`decimals`."""

    __slots__ = ("decimals", "scaled", "units", "whole")

    def __init__(self, universe: Universe) -> None:
        assert universe.size_unit is not None
        self.units = [float(u) for u in universe.size_unit]  # one size unit in the asset
        self.decimals = [decimals_of(u) for u in self.units]  # 0 for 1, 5 for 0.00001
        pairs = zip(self.units, self.decimals, strict=True)
        self.scaled: list[int] = [round(u * 10.0**d) for u, d in pairs]  # the unit in 10^-d
        self.whole = [d == 0 for d in self.decimals]  # sizes are whole numbers of the asset

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

    def number(self, sym: int, units: int) -> int | float:
        """The quantity as a JSON number: an integer for whole units (shares), else the float
        nearest the exact decimal, which JSON writes back as that decimal ("0.0021")."""
        if self.whole[sym]:
            return int(units) * self.scaled[sym]
        return float(self.text(sym, units))

    def notional(self, sym: int, per_unit: float) -> float:
        """An amount counted per size unit (price x size units) per unit of the asset: the
        quote currency's notional. Unchanged for shares (x 1.0 is exact)."""
        return per_unit * self.units[sym]
