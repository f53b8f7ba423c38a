"""Universe files: reading and checking the CSV and TOML reference files a `Universe` loads.

Every mistake in a file is a `UserError` naming the file, the line (or entry) and the field.
Owns the columns (`FIELDS`), the kinds, and the default base and quote of a symbol. Imports the
standard library and `errors` only; `universe` builds on it and re-exports `FIELDS` and `KINDS`.
"""

from __future__ import annotations

import csv
import math
from typing import Any

from .errors import UserError

Row = tuple[str, str, str, float, float, float, float, str, str, str]

FIELDS = (
    "symbol",
    "name",
    "sector",
    "price",
    "tick_size",
    "lot_size",
    "activity",
    "kind",
    "base",
    "quote",
)
_REQUIRED = ("symbol", "price")
KINDS = ("stock", "etf", "crypto")
_MAX_DECIMALS = 9  # ticks and crypto lots: at most 9 decimal places (1e-9)
_MAX_SYMBOL_LEN = 32  # as the wire protocol allows
_MAX_TEXT_LEN = 200


def read_csv(data: bytes, shown: str) -> list[Row]:
    text = _decode(data, shown)
    lines = text.splitlines()
    reader = csv.reader(lines)
    header: list[str] | None = None
    header_line = 0
    rows: list[Row] = []
    seen: dict[str, str] = {}
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values) or values[0].lstrip().startswith("#"):
            continue  # blank lines and comments
        if header is None:
            header, header_line = [v.strip().lower() for v in values], line
            _check_header(header, shown, line)
            continue
        where = f"{shown} line {line}"
        if len(values) > len(header):
            raise UserError(
                f"{where}: {len(values)} fields but the header (line {header_line}) names "
                f"{len(header)}; quote values that contain commas"
            )
        record = {k: v.strip() for k, v in zip(header, values, strict=False) if v.strip()}
        rows.append(_row(record, where, seen, f"line {line}"))
    if header is None:
        raise UserError(
            f"{shown} is empty; expected a header line {','.join(FIELDS[:7])}"
            "[,kind,base,quote] "
            "and one line per symbol"
        )
    if not rows:
        raise UserError(f"{shown} has a header but no symbols; add one line per symbol")
    return rows


def _check_header(header: list[str], shown: str, line: int) -> None:
    allowed = ", ".join(FIELDS)
    for col in header:
        if col not in FIELDS:
            raise UserError(
                f"{shown} line {line}: unknown column {col!r} in the header; columns are {allowed}"
            )
    for col in _REQUIRED:
        if col not in header:
            raise UserError(
                f"{shown} line {line}: the header has no {col!r} column; it needs "
                f"at least symbol and price (columns are {allowed})"
            )
    dup = next((c for c in header if header.count(c) > 1), None)
    if dup is not None:
        raise UserError(f"{shown} line {line}: column {dup!r} appears twice in the header")


def read_toml(data: bytes, shown: str) -> list[Row]:
    import tomllib

    try:
        doc = tomllib.loads(_decode(data, shown))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{shown}: not valid TOML: {exc}") from None
    if not doc:
        raise UserError(f"{shown} is empty; expected one [[symbol]] table per symbol")
    extra = [k for k in doc if k != "symbol"]
    if extra:
        raise UserError(
            f"{shown}: unknown top-level key {extra[0]!r}; expected only [[symbol]] tables"
        )
    entries = doc["symbol"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UserError(f"{shown}: 'symbol' must be an array of tables, written [[symbol]]")
    if not entries:
        raise UserError(f"{shown} has no symbols; add one [[symbol]] table per symbol")
    rows: list[Row] = []
    seen: dict[str, str] = {}
    for i, entry in enumerate(entries, 1):
        sym = entry.get("symbol")
        label = f"[[symbol]] entry {i}" + (f" ({sym})" if isinstance(sym, str) and sym else "")
        where = f"{shown} {label}"
        for key in entry:
            if key not in FIELDS:
                raise UserError(f"{where}: unknown field {key!r}; fields are {', '.join(FIELDS)}")
        rows.append(_row(entry, where, seen, f"entry {i}"))
    return rows


def _decode(data: bytes, shown: str) -> str:
    try:
        return data.decode("utf-8-sig")  # tolerate the byte-order mark spreadsheets write
    except UnicodeDecodeError as exc:
        raise UserError(f"{shown}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _row(record: dict[str, Any], where: str, seen: dict[str, str], here: str) -> Row:
    """One validated row; `seen` maps symbols already read to where they were."""

    def bad(name: str, allowed: str) -> UserError:
        return UserError(f"{where}, field {name}: {allowed}, got {record.get(name)!r}")

    for name in _REQUIRED:
        if name not in record or record[name] == "":
            raise UserError(f"{where}, field {name}: missing; every symbol needs a {name}")
    symbol = record["symbol"]
    if (
        not isinstance(symbol, str)
        or not 0 < len(symbol) <= _MAX_SYMBOL_LEN
        or symbol == "*"
        or any(c.isspace() or c == "," for c in symbol)
    ):
        raise bad("symbol", f"must be 1 to {_MAX_SYMBOL_LEN} characters without spaces or commas")
    if symbol in seen:
        raise UserError(
            f"{where}, field symbol: {symbol!r} is already on {seen[symbol]}; "
            "symbols must be unique"
        )
    seen[symbol] = here

    def text(name: str, default: str) -> str:
        value = record.get(name, default)
        if not isinstance(value, str) or not 0 < len(value) <= _MAX_TEXT_LEN:
            raise bad(name, f"must be text of 1 to {_MAX_TEXT_LEN} characters")
        return value

    def number(name: str, default: float) -> float:
        value = record.get(name, default)
        try:
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise ValueError
            x = float(value)
        except ValueError:
            x = math.nan
        if not (math.isfinite(x) and x > 0):
            raise bad(name, "must be a number > 0")
        return x

    price, tick, activity = number("price", 0.0), number("tick_size", 0.01), number("activity", 1)
    kind = text("kind", "stock").lower()
    if kind not in KINDS:
        raise bad("kind", f"must be one of {', '.join(KINDS)}")
    if decimals(tick) is None:
        raise bad("tick_size", f"must have at most {_MAX_DECIMALS} decimal places")
    lot_value = record.get("lot_size", 100)
    if kind == "crypto":
        lot = number("lot_size", 1.0)
        if decimals(lot) is None:
            raise bad("lot_size", f"must have at most {_MAX_DECIMALS} decimal places")
    else:
        try:
            if isinstance(lot_value, bool) or not isinstance(lot_value, str | int):
                raise ValueError
            lot = int(lot_value)
        except ValueError:
            lot = 0
        if not 1 <= lot <= 1_000_000:
            raise bad(
                "lot_size",
                f"must be a whole number from 1 to 1000000 for a {kind} "
                "(fractional lots are for kind crypto)",
            )
    if price < tick:
        raise bad("price", f"must be at least one tick ({tick:g})")
    base, quote = text("base", default_base(symbol)), text("quote", default_quote(symbol, kind))
    name, sector = text("name", symbol), text("sector", "Other")
    return (symbol, name, sector, price, tick, float(lot), activity, kind, base, quote)


def decimals(x: float) -> int | None:
    """Decimal places of `x` (0.01 -> 2, 5 -> 0), or None beyond 9 (not a decimal grid)."""
    for places in range(_MAX_DECIMALS + 1):
        scaled = x * 10.0**places
        if abs(scaled - round(scaled)) <= 1e-9 * scaled:
            return places
    return None


def default_base(symbol: str) -> str:
    return symbol.split("-")[0].split("/")[0] if "-" in symbol or "/" in symbol else symbol


def default_quote(symbol: str, kind: str) -> str:
    for sep in ("-", "/"):
        if kind == "crypto" and sep in symbol:
            return symbol.split(sep, 1)[1]
    return "USD"
