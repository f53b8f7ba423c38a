"""Universes: the symbols a market simulates, with their reference data.

A `Universe` is a struct of arrays indexed by symbol id (the `sym` field of every tick). Built-in:
`Universe.default()` (well-known large caps and ETFs, all prices simulated) and
`Universe.synthetic(n)` and `Universe.crypto()` (large crypto pairs, see `crypto.py`);
`Universe.load(path)` reads one from a CSV or TOML file, and every mistake
in the file is a `UserError` naming the file, the line (or entry) and the field (read and checked
by `_universe_files`). Imports numpy only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._universe_files import FIELDS as FIELDS  # the columns of a universe file, public here
from ._universe_files import KINDS as KINDS
from ._universe_files import Row as Row
from ._universe_files import decimals as decimals
from ._universe_files import (
    default_base,
    default_quote,
    read_csv,
    read_toml,
)
from .errors import UserError
from .ticks import MAX_SYMBOLS


@dataclass(frozen=True, eq=False)
class Universe:
    """Reference data of every symbol, by symbol id (index)."""

    symbols: tuple[str, ...]
    names: tuple[str, ...]
    sectors: tuple[str, ...]
    price: NDArray[np.float64]  # start price
    tick_size: NDArray[np.float64]
    lot_size: NDArray[np.float64]  # whole shares for stocks and ETFs, fractional for crypto
    activity: NDArray[np.float64]  # relative trade rate, 1.0 = a typical large cap
    kinds: tuple[str, ...] = ()  # "stock", "etf" or "crypto"
    source: str | None = None  # where the prices come from when not the simulator (a replay)
    # What one unit of bid_size/ask_size/last_size/volume is worth: 1 (shares) for the simulator,
    # 10**-k for data with fractional sizes (0.0123 BTC is 123 units of 0.0001). None: all 1.
    # For crypto the simulator counts sizes in lots: size_unit = lot_size (exact integers).
    size_unit: NDArray[np.float64] | None = None
    bases: tuple[str, ...] = ()  # the asset traded: the symbol for stocks, BTC for BTC-USD
    quotes: tuple[str, ...] = ()  # the asset prices are in: USD
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        n = len(self.symbols)
        if not 0 < n <= MAX_SYMBOLS:
            raise ValueError(f"a universe holds 1 to {MAX_SYMBOLS} symbols, got {n}")
        if not self.kinds:
            object.__setattr__(self, "kinds", ("stock",) * n)
        object.__setattr__(self, "lot_size", np.asarray(self.lot_size, np.float64))
        _check_arrays(self)
        crypto = np.array([k == "crypto" for k in self.kinds])
        if self.size_unit is None:
            object.__setattr__(self, "size_unit", np.where(crypto, self.lot_size, 1.0))
        if not self.bases:
            object.__setattr__(self, "bases", tuple(default_base(s) for s in self.symbols))
        if not self.quotes:
            object.__setattr__(
                self,
                "quotes",
                tuple(default_quote(s, k) for s, k in zip(self.symbols, self.kinds, strict=True)),
            )
        self._index.update({s: i for i, s in enumerate(self.symbols)})
        if len(self._index) != n:
            raise ValueError("symbols must be unique")

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._index

    def index(self, symbol: str) -> int:
        """Symbol id of `symbol`; KeyError if it is not in the universe."""
        return self._index[symbol]

    @property
    def lot_units(self) -> NDArray[np.int64]:
        """Each lot in size units (the integers every size is counted in): 100 for a stock."""
        assert self.size_unit is not None
        return np.maximum(1, np.round(self.lot_size / self.size_unit)).astype(np.int64)

    @property
    def crypto(self) -> NDArray[np.bool_]:
        """Which symbols are crypto pairs (fractional sizes, trading around the clock)."""
        return np.array([k == "crypto" for k in self.kinds])

    @property
    def sector_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.sectors))

    def reference(self) -> list[dict[str, Any]]:
        """Reference data as the `symbols` reply lists it."""
        return [
            {
                "symbol": s,
                "id": i,
                "name": self.names[i],
                "sector": self.sectors[i],
                "kind": self.kinds[i],
                "price": float(self.price[i]),
                "tick_size": float(self.tick_size[i]),
                "lot_size": _number(float(self.lot_size[i])),
                "activity": float(self.activity[i]),
                "size_unit": float(self.size_unit[i]) if self.size_unit is not None else 1.0,
                "base": self.bases[i],
                "quote": self.quotes[i],
                "simulated": self.source is None,
                **({"source": self.source} if self.source is not None else {}),
            }
            for i, s in enumerate(self.symbols)
        ]

    @classmethod
    def from_reference(cls, refs: list[dict[str, Any]]) -> Universe:
        """The universe a `symbols` reply (or `reference()`) describes, ordered by symbol id."""
        rows = sorted(refs, key=lambda r: int(r["id"]))
        unit = np.array([float(r.get("size_unit", 1.0)) for r in rows])
        source = rows[0].get("source") if rows and not rows[0].get("simulated", True) else None
        universe = cls.from_rows(
            [
                (
                    r["symbol"],
                    r.get("name") or r["symbol"],
                    r.get("sector") or "Other",
                    float(r.get("price", 0.0)),
                    float(r.get("tick_size", 0.01)),
                    float(r.get("lot_size", 100)),
                    float(r.get("activity", 1.0)),
                    r.get("kind") or "stock",
                    r.get("base") or "",
                    r.get("quote") or "",
                )
                for r in rows
            ],
            size_unit=unit,
        )
        return replace(universe, source=source) if source else universe

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[tuple[Any, ...]],
        *,
        size_unit: NDArray[np.float64] | None = None,
    ) -> Universe:
        """From rows of (symbol, name, sector, price, tick, lot, activity, kind[, base, quote]);
        an empty base or quote takes its default (the symbol's parts)."""
        full = [(*r, "", "") if len(r) == 8 else tuple(r) for r in rows]
        sym, name, sector, price, tick, lot, act, kind, base, quote = zip(*full, strict=True)
        bases = tuple(b or default_base(s) for b, s in zip(base, sym, strict=True))
        quotes = tuple(q or default_quote(s, k) for q, s, k in zip(quote, sym, kind, strict=True))
        return cls(
            symbols=tuple(sym),
            names=tuple(name),
            sectors=tuple(sector),
            price=np.asarray(price, np.float64),
            tick_size=np.asarray(tick, np.float64),
            lot_size=np.asarray(lot, np.float64),
            activity=np.asarray(act, np.float64),
            kinds=tuple(kind),
            size_unit=size_unit,
            bases=bases,
            quotes=quotes,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Universe:
        """Read a universe from a `.csv` or `.toml` file.

        CSV: a header `symbol,name,sector,price,tick_size,lot_size,activity[,kind]` then one line
        per symbol; TOML: one `[[symbol]]` table per symbol with the same keys. Only `symbol` and
        `price` are required (defaults: name = symbol, sector "Other", tick_size 0.01, lot_size
        100, activity 1.0, kind "stock").

        Raises:
            UserError: the file is missing, unreadable or wrong, with where and what is allowed.
        """
        p = Path(path)
        shown = os.fspath(path)
        ext = p.suffix.lower()
        if ext not in (".csv", ".toml"):
            raise UserError(
                f"{shown}: unknown universe file type {ext or '(none)'!r}; use .csv or .toml"
            )
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise UserError(f"universe file {shown} not found") from None
        except OSError as exc:
            raise UserError(f"cannot read universe file {shown}: {exc.strerror or exc}") from None
        rows = read_csv(data, shown) if ext == ".csv" else read_toml(data, shown)
        if len(rows) > MAX_SYMBOLS:
            raise UserError(
                f"{shown} has {len(rows)} symbols; a universe holds at most {MAX_SYMBOLS}"
            )
        return cls.from_rows(rows)

    @classmethod
    def default(cls) -> Universe:
        """Well-known large caps across sectors plus a few ETFs. Every price is simulated."""
        return cls.from_rows([(*r[:4], 0.01, 100, r[4], r[5]) for r in _DEFAULT])

    @classmethod
    def crypto_pairs(cls) -> Universe:
        """The large crypto pairs by their venue names (BTC-USD...), trading around the clock."""
        from .crypto import CRYPTO

        return cls.from_rows(CRYPTO)

    @classmethod
    def builtin(cls, name: str) -> Universe:
        """A built-in universe by name: "default" or "crypto"."""
        if name == "default":
            return cls.default()
        if name == "crypto":
            return cls.crypto_pairs()
        raise UserError(f"unknown built-in universe {name!r}; built-ins are default, crypto")

    @classmethod
    def synthetic(cls, n: int, seed: int = 0) -> Universe:
        """`n` made-up symbols (SYM0001...) spread over the default sectors."""
        if not 1 <= n <= MAX_SYMBOLS:
            raise ValueError(f"--symbols must be from 1 to {MAX_SYMBOLS}, got {n}")
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EC7]))
        sectors = _SECTORS
        width = max(4, len(str(n)))
        price = np.round(np.exp(rng.normal(np.log(80), 0.9, n)), 2).clip(2.0, 3000.0)
        activity = np.exp(rng.normal(-0.3, 0.6, n)).clip(0.05, 4.0)
        rows = [
            (
                f"S{i:0{width}d}",
                f"Simulated Co. {i}",
                sectors[i % len(sectors)],
                float(price[i]),
                0.01,
                100,
                float(activity[i]),
                "stock",
            )
            for i in range(n)
        ]
        return cls.from_rows(rows)


def _check_arrays(u: Universe) -> None:
    """Reference data built in code gets the checks a file gets (ValueError, one line)."""
    for i, (sym, kind) in enumerate(zip(u.symbols, u.kinds, strict=True)):
        tick, lot = float(u.tick_size[i]), float(u.lot_size[i])
        if kind not in KINDS:
            raise ValueError(f"{sym}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not (math.isfinite(tick) and tick > 0):
            raise ValueError(f"{sym}: tick_size must be a number > 0, got {tick:g}")
        if not (math.isfinite(lot) and lot > 0):
            raise ValueError(f"{sym}: lot_size must be a number > 0, got {lot:g}")
        if kind != "crypto" and lot != int(lot):
            raise ValueError(
                f"{sym}: lot_size must be a whole number for a {kind} "
                f"(fractional lots are for kind crypto), got {lot:g}"
            )


def _number(x: float) -> int | float:
    """A whole lot as an int (100), a fractional one as a float (0.00001)."""
    return int(x) if x == int(x) else x


_SECTORS = (
    "Technology",
    "Communication",
    "Consumer Discretionary",
    "Consumer Staples",
    "Financials",
    "Health Care",
    "Industrials",
    "Energy",
    "Materials",
    "Utilities",
)

# symbol, name, sector, start price, activity, kind
_DEFAULT: list[tuple[str, str, str, float, float, str]] = [
    ("AAPL", "Apple", "Technology", 189.50, 2.0, "stock"),
    ("MSFT", "Microsoft", "Technology", 415.20, 1.8, "stock"),
    ("NVDA", "NVIDIA", "Technology", 121.40, 2.5, "stock"),
    ("AVGO", "Broadcom", "Technology", 168.30, 1.1, "stock"),
    ("ORCL", "Oracle", "Technology", 140.10, 0.8, "stock"),
    ("ADBE", "Adobe", "Technology", 512.70, 0.7, "stock"),
    ("CRM", "Salesforce", "Technology", 272.40, 0.7, "stock"),
    ("AMD", "Advanced Micro Devices", "Technology", 158.60, 1.6, "stock"),
    ("INTC", "Intel", "Technology", 31.20, 1.3, "stock"),
    ("GOOGL", "Alphabet", "Communication", 172.80, 1.6, "stock"),
    ("META", "Meta Platforms", "Communication", 498.30, 1.5, "stock"),
    ("NFLX", "Netflix", "Communication", 655.90, 0.8, "stock"),
    ("DIS", "Walt Disney", "Communication", 101.40, 0.8, "stock"),
    ("AMZN", "Amazon", "Consumer Discretionary", 183.70, 1.9, "stock"),
    ("TSLA", "Tesla", "Consumer Discretionary", 248.50, 2.4, "stock"),
    ("HD", "Home Depot", "Consumer Discretionary", 362.10, 0.6, "stock"),
    ("MCD", "McDonald's", "Consumer Discretionary", 268.20, 0.5, "stock"),
    ("NKE", "Nike", "Consumer Discretionary", 82.60, 0.7, "stock"),
    ("WMT", "Walmart", "Consumer Staples", 68.90, 0.8, "stock"),
    ("PG", "Procter & Gamble", "Consumer Staples", 166.40, 0.6, "stock"),
    ("KO", "Coca-Cola", "Consumer Staples", 63.80, 0.7, "stock"),
    ("PEP", "PepsiCo", "Consumer Staples", 171.20, 0.6, "stock"),
    ("COST", "Costco", "Consumer Staples", 846.30, 0.5, "stock"),
    ("JPM", "JPMorgan Chase", "Financials", 205.70, 1.0, "stock"),
    ("BAC", "Bank of America", "Financials", 39.40, 1.1, "stock"),
    ("GS", "Goldman Sachs", "Financials", 468.20, 0.6, "stock"),
    ("MS", "Morgan Stanley", "Financials", 101.30, 0.6, "stock"),
    ("V", "Visa", "Financials", 273.50, 0.7, "stock"),
    ("MA", "Mastercard", "Financials", 451.60, 0.6, "stock"),
    ("BRK.B", "Berkshire Hathaway", "Financials", 412.80, 0.5, "stock"),
    ("UNH", "UnitedHealth", "Health Care", 512.40, 0.7, "stock"),
    ("JNJ", "Johnson & Johnson", "Health Care", 152.30, 0.6, "stock"),
    ("LLY", "Eli Lilly", "Health Care", 792.10, 0.8, "stock"),
    ("PFE", "Pfizer", "Health Care", 28.60, 1.0, "stock"),
    ("MRK", "Merck", "Health Care", 127.90, 0.6, "stock"),
    ("ABBV", "AbbVie", "Health Care", 171.40, 0.6, "stock"),
    ("CAT", "Caterpillar", "Industrials", 338.20, 0.5, "stock"),
    ("BA", "Boeing", "Industrials", 181.70, 0.8, "stock"),
    ("GE", "GE Aerospace", "Industrials", 162.30, 0.6, "stock"),
    ("HON", "Honeywell", "Industrials", 204.10, 0.4, "stock"),
    ("UPS", "United Parcel Service", "Industrials", 139.80, 0.5, "stock"),
    ("XOM", "Exxon Mobil", "Energy", 113.60, 0.9, "stock"),
    ("CVX", "Chevron", "Energy", 155.20, 0.7, "stock"),
    ("COP", "ConocoPhillips", "Energy", 112.40, 0.5, "stock"),
    ("LIN", "Linde", "Materials", 452.70, 0.4, "stock"),
    ("FCX", "Freeport-McMoRan", "Materials", 48.90, 0.6, "stock"),
    ("NEE", "NextEra Energy", "Utilities", 72.30, 0.5, "stock"),
    ("DUK", "Duke Energy", "Utilities", 101.60, 0.4, "stock"),
    ("SPY", "SPDR S&P 500 ETF", "ETF", 528.40, 3.0, "etf"),
    ("QQQ", "Invesco QQQ Trust", "ETF", 452.10, 2.2, "etf"),
    ("IWM", "iShares Russell 2000 ETF", "ETF", 205.30, 1.2, "etf"),
    ("XLF", "Financial Select Sector SPDR", "ETF", 41.20, 0.8, "etf"),
    ("XLE", "Energy Select Sector SPDR", "ETF", 92.50, 0.6, "etf"),
]
