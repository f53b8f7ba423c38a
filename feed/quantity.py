"""Sizes as quantities of the asset, for people: the one place that turns a /v1 size into text.

On /v1 (JSON and binary), bid_size, ask_size, last_size and volume are integer counts of each
symbol's `size_unit` (the `symbols` reply: 1 for shares, a lot such as 0.00001 BTC for crypto).
A screen, `tail` or a file shows units x size_unit, exactly: built from integers with the unit's
decimals (210 units of 0.00001 are "0.00210"), never a float product that drifts. Shares (a unit
of 1) read as they always did. Pure Python: no trio, no numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MAX_PLACES = 12  # a unit finer than 1e-12 is not a lot any venue uses


def unit_places(unit: float) -> int:
    """The decimals that write every multiple of `unit` exactly (1: 0, 0.00001: 5, 0.25: 2)."""
    for d in range(MAX_PLACES + 1):
        if abs(round(unit, d) - unit) <= 1e-15 * max(1.0, unit):
            return d
    return MAX_PLACES


def quantity(units: int, unit: float = 1.0) -> str:
    """`units` counts of `unit` as an exact decimal with the unit's decimals ("0.00210")."""
    d = unit_places(unit)
    value = int(units) * round(unit * 10**d)  # in 10^-d of the asset: exact
    if d == 0:
        return str(value)
    sign, value = ("-", -value) if value < 0 else ("", value)
    q, r = divmod(value, 10**d)
    return f"{sign}{q}.{r:0{d}d}"


class Quantities:
    """Every symbol's size unit, by symbol id, from a `symbols` reply (or `Universe.reference()`).

    `text(sym, units)` is the exact quantity; `value(sym, units)` the float nearest it (for
    arithmetic and compact display). A symbol the reply did not list counts whole units.
    """

    __slots__ = ("ids", "places", "scaled", "units")

    def __init__(self, refs: Iterable[Mapping[str, Any]] = ()) -> None:
        self.ids: dict[str, int] = {}  # symbol -> id
        self.units: dict[int, float] = {}
        self.places: dict[int, int] = {}
        self.scaled: dict[int, int] = {}  # the unit in 10^-places of the asset
        for r in refs:
            unit = float(r.get("size_unit", 1.0) or 1.0)
            if unit <= 0:
                raise ValueError(f"size_unit must be positive, got {unit!r} for {r.get('symbol')}")
            sid, d = int(r["id"]), unit_places(unit)
            self.ids[str(r["symbol"])] = sid
            self.units[sid], self.places[sid], self.scaled[sid] = unit, d, round(unit * 10**d)

    def unit(self, sym: int) -> float:
        return self.units.get(sym, 1.0)

    def whole(self, sym: int) -> bool:
        """True when sizes of `sym` are whole numbers of the asset (shares): shown as before."""
        return self.places.get(sym, 0) == 0

    def text(self, sym: int, units: int) -> str:
        """The exact quantity: "0.00210" for 210 units of 0.00001, "300" for 300 shares."""
        d = self.places.get(sym, 0)
        value = int(units) * self.scaled.get(sym, 1)
        if d == 0:
            return str(value)
        sign, value = ("-", -value) if value < 0 else ("", value)
        q, r = divmod(value, 10**d)
        return f"{sign}{q}.{r:0{d}d}"

    def value(self, sym: int, units: int) -> float:
        """The float nearest the exact quantity (int / int is correctly rounded)."""
        power: int = 10 ** self.places.get(sym, 0)
        return int(units) * self.scaled.get(sym, 1) / power
