"""Rows of the bench table: one figure, the baseline measured beside it, and their ratio.

A row is a plain dict so `--json` prints it as is. `status` is "ok" for a measured row, "n/a" for a
row whose code is not there (e.g. the dashboard is not installed) and "error" for a step that
failed; only "ok" rows carry numbers. Imports nothing from tickwire.
"""

from __future__ import annotations

import math
from typing import Any, TextIO

Row = dict[str, Any]
NAN = float("nan")


def row(
    name: str,
    value: float,
    unit: str,
    baseline: str = "",
    base: float = NAN,
    *,
    higher: bool,
    target: str = "",
    **extra: Any,
) -> Row:
    """A measured row; `higher` says which way is better, `target` quotes the issue's goal."""
    ratio = value / base if baseline and base and math.isfinite(base) else NAN
    r: Row = {
        "name": name,
        "status": "ok",
        "value": float(value),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": float(base) if baseline else None,
        "ratio": ratio if baseline else None,
        "better": "higher" if higher else "lower",
        "target": target,
    }
    r.update(extra)
    return r


def unavailable(name: str, note: str, status: str = "n/a") -> Row:
    """A row that could not be measured: printed as n/a with the reason."""
    return {
        "name": name,
        "status": status,
        "value": None,
        "unit": "",
        "baseline": "",
        "baseline_value": None,
        "ratio": None,
        "better": "",
        "target": "",
        "note": note,
    }


def fmt(v: float | None) -> str:
    """Three significant digits with k/M suffixes; n/a for a missing or non-finite value."""
    if v is None or not math.isfinite(v):
        return "n/a"
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.2f}G"
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.1f}k"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def print_table(rows: list[Row], notes: list[str], out: TextIO) -> None:
    """The human table: row, tickwire's value, the baseline's, ratio, and the issue's target."""
    w = max(44, *(len(r["name"]) for r in rows)) if rows else 44
    print(f"{'row':{w}}  {'tickwire':>12}  {'baseline':>26}  {'ratio':>8}  target", file=out)
    print("-" * (w + 64), file=out)
    for r in rows:
        if r["status"] != "ok":
            note = str(r.get("note", r["status"])).splitlines()[0][:120]
            print(f"{r['name']:{w}}  {'n/a':>12}  ({note})", file=out)
            continue
        value = f"{fmt(r['value'])} {r['unit']}"
        base = f"{r['baseline']} {fmt(r['baseline_value'])}" if r["baseline"] else ""
        ratio = f"{fmt(r['ratio'])}x" if r["baseline"] else ""
        print(f"{r['name']:{w}}  {value:>12}  {base:>26}  {ratio:>8}  {r['target']}", file=out)
    print("-" * (w + 64), file=out)
    print("ratio = tickwire / baseline, both measured in this run.", file=out)
    for note in notes:
        print(f"note: {note}", file=out)
