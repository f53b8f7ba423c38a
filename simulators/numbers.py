"""The one parser of a number flag for the whole project: `positive_float`, `non_negative_float`.

Both are argparse types (a bad value raises `argparse.ArgumentTypeError`, which argparse and the
settings' file and variable layers print as one line). A value is finite: `nan` and `inf` parse
as floats but bound nothing, so they are refused with the rest. It lives in `simulators` because
`feed` and the dashboard may import `simulators` but not the other way round. Imports nothing of
ours.
"""

from __future__ import annotations

import argparse
import math


def _finite(text: str, *, zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0: `0.5`, `2`, `1e3`."""
    return _finite(text, zero=False)


def non_negative_float(text: str) -> float:
    """A finite number >= 0: `0`, `0.5`, `10`."""
    return _finite(text, zero=True)


__all__ = ["non_negative_float", "positive_float"]
