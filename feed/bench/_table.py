"""Rows of the bench table: one figure, the baseline measured beside it, and their ratio.

A row is a plain dict so `--json` prints it as is. `status` is "ok" for a measured row, "n/a" for a
row whose code is not there (e.g. the dashboard is not installed) and "error" for a step that
failed; only "ok" rows carry numbers. A ratio exists only where the baseline is a real figure: a
baseline at or below zero, or within its own noise (`base_noise`), makes the ratio n/a instead
of a number like -1139 G. A target is a goal written so it can be checked ("< 8 ms", ">= 2x",
"5-20x", "<= 16 KiB"; "x" means the ratio), and `met` says whether this run meets it.
Imports nothing from tickwire.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Any, TextIO

Row = dict[str, Any]
NAN = float("nan")
PASS, FAIL = "✓", "✗"

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_SCALE = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9}
_BOUND = re.compile(r"^(<=|>=|<|>)\s*([0-9.]+)\s*([kMG]?)\s*(x?)(.*)$")
_RANGE = re.compile(r"^([0-9.]+)\s*-\s*([0-9.]+)\s*x$")


def row(
    name: str,
    value: float,
    unit: str,
    baseline: str = "",
    base: float = NAN,
    *,
    higher: bool,
    target: str = "",
    base_noise: float = 0.0,
    **extra: Any,
) -> Row:
    """A measured row; `higher` says which way is better, `target` the goal it is held to."""
    ratio = NAN
    if baseline and math.isfinite(base) and base > 0 and abs(base) > base_noise:
        ratio = value / base
    r: Row = {
        "name": name,
        "status": "ok",
        "value": float(value),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": float(base) if baseline else None,
        "baseline_noise": base_noise,
        "ratio": ratio if baseline else None,
        "better": "higher" if higher else "lower",
        "target": target,
        "met": meets(target, float(value), ratio if baseline else None),
    }
    r.update(extra)
    return r


def meets(target: str, value: float, ratio: float | None) -> bool | None:
    """Whether `value` (or the ratio, for "x" goals) meets every clause of `target`.

    Clauses are separated by commas; a "stretch" clause is shown but not held against the row.
    None when there is no target, or a clause cannot be read.
    """
    held: list[bool] = []
    stretch: list[bool] = []
    for clause in (c.strip() for c in target.split(",")):
        if not clause:
            continue
        into = stretch if clause.startswith("stretch") else held
        clause = clause.removeprefix("stretch").strip()
        if m := _RANGE.match(clause):
            into.append(ratio is not None and float(m[1]) <= ratio <= float(m[2]))
            continue
        m = _BOUND.match(clause)
        if m is None:
            return None
        op, number, scale, x, rest = m.groups()
        goal = float(number) * _SCALE[scale]
        # "x real time" is a figure measured in multiples of real time, not a ratio
        figure = ratio if x and "real time" not in rest else value
        into.append(figure is not None and math.isfinite(figure) and _OPS[op](figure, goal))
    results = held or stretch  # a row whose only goal is a stretch is marked against it
    return all(results) if results else None


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
        "met": None,
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


def mark(r: Row) -> str:
    """The target column: a pass/fail mark, then the goal itself."""
    if not r.get("target"):
        return ""
    met = r.get("met")
    return f"{PASS if met else FAIL if met is False else '?'} {r['target']}"


def print_table(rows: list[Row], notes: list[str], out: TextIO) -> None:
    """The human table: row, tickwire's value, the baseline's, ratio, and the goal with ✓/✗."""
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
        ratio = ""
        if r["baseline"]:
            ratio = f"{fmt(r['ratio'])}x" if math.isfinite(r["ratio"]) else "n/a"
        print(f"{r['name']:{w}}  {value:>12}  {base:>26}  {ratio:>8}  {mark(r)}", file=out)
    print("-" * (w + 64), file=out)
    targets = [r for r in rows if r.get("met") is not None]
    if targets:
        met = sum(1 for r in targets if r["met"])
        print(f"targets: {met} of {len(targets)} met ({PASS} met, {FAIL} missed).", file=out)
    print(
        "ratio = tickwire / baseline, both measured in this run; n/a where the baseline is "
        "at or below zero or within its noise.",
        file=out,
    )
    for note in notes:
        print(f"note: {note}", file=out)
