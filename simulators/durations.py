"""The one duration syntax of tickwire: `90s`, `5m`, `1.5h`, `250ms`, `1h10m`, `2d`.

Every command-line flag, scenario `at` offset and replay `+10m` goes through `parse_duration`;
callers add their own bounds and wrap `DurationError` in their own error type. It lives in
`simulators` because `feed` may import `simulators` but not the other way round. Imports nothing
of ours.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

UNITS_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"({_NUM})\s*(ms|s|m|h|d)", re.IGNORECASE)
_TEXT = re.compile(rf"\s*(-?)\s*((?:{_NUM}\s*(?:ms|s|m|h|d)\s*)+|{_NUM}\s*)", re.IGNORECASE)


class DurationError(ValueError):
    """Not a duration, or a negative one; the message says which and what is allowed."""


def parse_duration(text: str, *, day_s: float | None = None, bare: bool = True) -> float:
    """Seconds from a duration: parts of a number and a unit (ms, s, m, h), summed.

    `d` is a unit only where the caller says how long a day is (`day_s`: a trading session
    or 86400); a bare number means seconds unless `bare` is false. Never negative, never inf.
    """
    m = _TEXT.fullmatch(text)
    parts = _PART.findall(m[2]) if m else []
    days_ok = day_s is not None or all(u.lower() != "d" for _, u in parts)
    if m is None or not days_ok or (not parts and not bare):
        raise DurationError(f"expected a duration such as 60s, 5m or 1h, got {text!r}")
    if m[1]:
        raise DurationError(f"must be >= 0, got {text.strip()}")
    per_unit = {**UNITS_S, "d": day_s or 0.0}
    seconds = sum(float(k) * per_unit[u.lower()] for k, u in parts) if parts else float(m[2])
    if not math.isfinite(seconds):
        raise DurationError(f"must be finite, got {text.strip()}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest text `parse_duration` reads back as exactly `seconds` (`1h30m`, `250ms`)."""
    if seconds < 0 or not math.isfinite(seconds):
        raise DurationError(f"must be >= 0 and finite, got {seconds!r}")
    whole = int(seconds)
    if whole == seconds and 0 < whole < 2**53:  # whole seconds sum exactly as floats
        h, rest = divmod(whole, 3600)
        mins, s = divmod(rest, 60)
        return "".join(f"{n}{u}" for n, u in ((h, "h"), (mins, "m"), (s, "s")) if n)
    return f"{Decimal(repr(seconds)):f}s"  # positional: the syntax has no exponent


__all__ = ["UNITS_S", "DurationError", "format_duration", "parse_duration"]
