"""Market scenarios: a TOML file of timed events (halts, crashes, gaps, droughts), checked.

A scenario is a list of `[[event]]` tables, each with a `kind`, a time `at` (an offset from the
start of the run, "90s", "5m", "1h10m", "1.5h" or a number of seconds, or a TOML date-time with an
offset) and the fields of its kind; `symbol` is one symbol, a list of them, or "*" (the default:
every symbol). Fractions are numbers (0.08) or percents ("8%"). Kinds and their fields:
- `halt` (`duration`, optional: else until a `resume`), `resume`: a trading halt; a halted
  symbol makes no trades and no quote changes until it resumes;
- `luld`: limit up-limit down bands: a symbol whose price leaves `band` around its reference
  (the mean price of about the last `window`, 5m) halts from the next 0.1 s for `pause` (5m);
  in force from `at` for `duration` (default: to the end);
- `flash-crash`: the mid falls `drop` over `fall`, stays `hold` (0s), recovers over `recover`;
  meanwhile the spread widens up to `spread` times (4) and the book thins to `thin` (0.25) of its
  flow of new orders;
- `opening-gap`: session `session`'s open (0, the first of the run) is `move` away;
- `vol-regime`: volatility times `factor` from `at`, for `duration` (default: on); on some
  symbols, their own moves grow so that their total volatility is `factor` times (a calmer
  symbol keeps its share of the market's moves);
- `drought`: the spread `spread` times wider (3), the book thinned to `thin` (0.25) for `duration`;
- `jump`: the price moves by `move` at `at` and stays there;
- `fat-finger`: one trade of `size` round lots (1000) printed `move` away from the quote (a
  sell below the bid if negative, a buy above the ask if positive), none if the symbol is
  halted then; the record repeats the quote before it, and the book does not see the trade.
Times resolve to the market's 0.1 s grid. A mistake is one `ScenarioError` line naming the file,
the event (1-based) and the field.

Status records, for the wire to carry: `STATUS_DTYPE` (16 bytes, little-endian): ts (ns), sym,
status (`Status`: 0 trading, 1 halted), reason (`HaltReason`: 1 a scenario halt or resume,
2 LULD band: the cause in force, a scenario halt first). A halt's record has the ts of the first
0.1 s with no record of the symbol; its resume's, the ts from which records may come again. Per
symbol they alternate, halted first (overlapping causes make one halt). `Market.statuses()`
releases them with time; `Market.play.status` is each symbol's status as of the last release.
LULD bands, for the wire too: `BAND_DTYPE` (32 bytes): ts, sym, indicator (the UTP price band
indicator's letter as its ASCII code: A a first band, B a move, E after a pause; 0: the symbol
has no bands from ts on, and up and down are NaN), up and down (the limit prices, on the tick
grid). A symbol's bands are set when `luld` takes its first reference, move when the reference
has moved `BAND_MOVE` (1%, as the LULD plan says) from the one published, and are cleared when
the `luld` ends; `Market.bands()` releases them with time.
Ready scenarios ship in `data/scenarios/` (`names()`); `load` takes a name or a path. Imports
numpy, the standard library, `errors` and `universe`; never the feed.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from enum import IntEnum
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .durations import DurationError, parse_duration
from .errors import UserError
from .universe import Universe

STATUS_DTYPE = np.dtype(
    [("ts", "<i8"), ("sym", "<u2"), ("status", "u1"), ("reason", "u1"), ("_pad", "V4")]
)
assert STATUS_DTYPE.itemsize == 16
BAND_DTYPE = np.dtype(
    [("ts", "<i8"), ("sym", "<u2"), ("indicator", "u1"), ("_pad", "V5"), ("up", "<f8"),
     ("down", "<f8")]
)  # fmt: skip
assert BAND_DTYPE.itemsize == 32
BAND_MOVE = 0.01  # a reference this far from the published one publishes new bands


class Status(IntEnum):
    TRADING = 0
    HALTED = 1


class HaltReason(IntEnum):
    SCENARIO = 1  # a halt or resume event of the scenario (news pending, a regulator's halt)
    LULD = 2  # the price left its limit up-limit down band


class ScenarioError(UserError, ValueError):
    """A scenario file that cannot be used; str(error) names the file, event and field."""


_TIME = {"at"}
# kind -> {field: default}; None means required; "dur" fields are durations, "frac" fractions
KINDS: dict[str, dict[str, Any]] = {
    "halt": {"duration": math.inf},
    "resume": {},
    "luld": {"band": None, "window": 300.0, "pause": 300.0, "duration": math.inf},
    "flash-crash": {"drop": None, "fall": None, "hold": 0.0, "recover": None, "spread": 4.0,
                    "thin": 0.25},
    "opening-gap": {"move": None, "session": 0},
    "vol-regime": {"factor": None, "duration": math.inf},
    "drought": {"duration": None, "spread": 3.0, "thin": 0.25},
    "jump": {"move": None},
    "fat-finger": {"move": None, "size": 1000},
}  # fmt: skip
MIN_HALT_S = 0.1  # the market's grid: a shorter halt would vanish
_DURATIONS = {"duration", "window", "pause", "fall", "hold", "recover"}
_FRACTIONS = {"band", "drop", "move", "thin"}
_ALLOWED = {
    "band": "between 0 and 100%",
    "drop": "between 0 and 100%",
    "thin": "above 0 and at most 100%",
    "move": "above -100%, not 0",
}
_NO_AT = {"opening-gap"}  # the session says when
_ONE_SYMBOL = {"fat-finger"}


@dataclass(frozen=True)
class Event:
    """One checked event: times in seconds from the start (absolute ones resolved by `at_ns`)."""

    index: int  # 1-based position in the file
    kind: str
    at_s: float
    symbols: NDArray[np.intp]  # symbol ids it applies to
    params: dict[str, float] = field(default_factory=dict)
    at_abs_ns: int | None = None  # a TOML date-time: absolute

    def at_ns(self, start_ns: int) -> int:
        return self.at_abs_ns if self.at_abs_ns is not None else start_ns + round(self.at_s * 1e9)


@dataclass(frozen=True)
class Scenario:
    """A checked scenario for one universe; `Market(..., scenario=s)` plays it."""

    name: str
    events: tuple[Event, ...]
    n_symbols: int
    description: str = ""

    def count(self, kind: str) -> int:
        return sum(e.kind == kind for e in self.events)


def names() -> list[str]:
    """The scenarios shipped with tickwire, by name."""
    return sorted(p.name[:-5] for p in _shipped().iterdir() if p.name.endswith(".toml"))


def _shipped() -> Any:
    return resources.files(__package__).joinpath("data", "scenarios")


def load(source: str | Path, universe: Universe) -> Scenario:
    """A scenario from a file path or a shipped name, checked against `universe`."""
    path = Path(source)
    if path.suffix.lower() == ".toml" or path.exists():
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario {source}: {exc.strerror or exc}") from None
        return parse(data, universe, shown=str(source))
    text = str(source)
    if text in names():
        return parse(_shipped().joinpath(f"{text}.toml").read_bytes(), universe, shown=text)
    raise ScenarioError(
        f"scenario {text!r} is neither a file nor a shipped scenario ({', '.join(names())})"
    )


def parse(data: bytes | str, universe: Universe, *, shown: str = "<scenario>") -> Scenario:
    """Check a scenario's TOML text against `universe`; ScenarioError says what is wrong."""
    import tomllib

    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        doc = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ScenarioError(f"{shown}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{shown}: not valid TOML: {exc}") from None
    extra = sorted(set(doc) - {"event", "name", "description"})
    if extra:
        raise ScenarioError(
            f"{shown}: unknown top-level key {extra[0]!r} (allowed: name, description, [[event]])"
        )
    raw = doc.get("event")
    if not isinstance(raw, list) or not raw or not all(isinstance(e, dict) for e in raw):
        raise ScenarioError(f"{shown}: no events; add [[event]] tables with a kind and a time")
    events = tuple(_event(e, i, universe, shown) for i, e in enumerate(raw, 1))
    _check_halts(events, universe, shown)
    name = doc.get("name", Path(shown).stem)
    return Scenario(str(name), events, len(universe), str(doc.get("description", "")))


def _event(raw: dict[str, Any], i: int, universe: Universe, shown: str) -> Event:
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ScenarioError(
            f"{shown}: event {i}: unknown kind {kind!r} (allowed: {', '.join(KINDS)})"
        )
    where = f"{shown}: event {i} ({kind})"
    spec = KINDS[kind]
    allowed = {"kind", "symbol", *spec} | (set() if kind in _NO_AT else _TIME)
    for key in raw:
        if key not in allowed:
            raise ScenarioError(
                f"{where}: unknown field {key!r} (allowed: {', '.join(sorted(allowed))})"
            )
    params: dict[str, float] = {}
    for key, default in spec.items():
        if key not in raw:
            if default is None:
                raise ScenarioError(f"{where}: {key} is required")
            params[key] = float(default)
        else:
            params[key] = _value(raw[key], key, kind, where)
    at_s, at_abs = 0.0, None
    if kind in _NO_AT:
        at_s = math.nan  # resolved from the session when played
    elif "at" not in raw:
        if kind != "luld":
            raise ScenarioError(f"{where}: at is required (an offset such as '5m', or a date-time)")
    elif isinstance(raw["at"], dt.datetime):
        if raw["at"].tzinfo is None:
            raise ScenarioError(f"{where}: at needs a time zone offset, e.g. 2025-01-06T15:00:00Z")
        at_abs = int(raw["at"].timestamp()) * 10**9 + raw["at"].microsecond * 1000
    else:
        at_s = _duration(raw["at"], "at", where)
    syms = _symbols(raw.get("symbol", "*"), kind, universe, where)
    return Event(i, str(kind), at_s, syms, params, at_abs)


def _value(v: Any, key: str, kind: str, where: str) -> float:
    if key in _DURATIONS:
        x = _duration(v, key, where)
        if x == 0 and key not in ("hold",):
            raise ScenarioError(f"{where}: {key} must be longer than 0s, got {v!r}")
        return x
    if key in _FRACTIONS:
        x = _fraction(v, key, where)
        lo, hi = {"band": (0, 1), "drop": (0, 1), "thin": (0, 1), "move": (-1, math.inf)}[key]
        ok = lo < x <= hi if key == "thin" else lo < x < hi and not (key == "move" and x == 0)
        if not ok:
            allowed = _ALLOWED[key]
            raise ScenarioError(f"{where}: {key} must be {allowed}, got {v!r}")
        return x
    if key in ("session", "size"):
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if key == "session" else 1):
            low = "0" if key == "session" else "1"
            raise ScenarioError(f"{where}: {key} must be a whole number from {low}, got {v!r}")
        return float(v)
    # factor, spread: positive multipliers (spread at least 1)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise ScenarioError(f"{where}: {key} must be a number > 0, got {v!r}")
    if key == "spread" and v < 1:
        raise ScenarioError(f"{where}: spread must be at least 1 (times the usual), got {v!r}")
    return float(v)


def _duration(v: Any, key: str, where: str) -> float:
    """Seconds from '90s', '5m', '1.5h', '250ms' or a number of seconds; never negative."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        x = float(v)
    elif isinstance(v, str) and v.strip().startswith("-"):
        x = -1.0
    elif isinstance(v, str):
        try:
            x = parse_duration(v, bare=False)
        except DurationError:
            raise ScenarioError(
                f"{where}: {key} must be a time such as '90s', '5m', '1.5h' or seconds, got {v!r}"
            ) from None
    else:
        raise ScenarioError(
            f"{where}: {key} must be a time such as '90s', '5m', '1.5h' or seconds, got {v!r}"
        )
    if not math.isfinite(x) or x < 0:
        raise ScenarioError(f"{where}: {key} must not be negative, got {v!r}")
    return x


def _fraction(v: Any, key: str, where: str) -> float:
    if isinstance(v, str) and v.strip().endswith("%"):
        try:
            return float(v.strip()[:-1]) / 100
        except ValueError:
            pass
    elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    raise ScenarioError(f"{where}: {key} must be a fraction such as 0.08 or '8%', got {v!r}")


def _symbols(v: Any, kind: str, universe: Universe, where: str) -> NDArray[np.intp]:
    if v == "*":
        if kind in _ONE_SYMBOL:
            raise ScenarioError(f"{where}: symbol is required: one symbol of the universe")
        return np.arange(len(universe))
    names = [v] if isinstance(v, str) else v
    if not isinstance(names, list) or not names or not all(isinstance(s, str) for s in names):
        raise ScenarioError(
            f"{where}: symbol must be a symbol, a list of symbols or '*', got {v!r}"
        )
    if kind in _ONE_SYMBOL and len(names) != 1:
        raise ScenarioError(f"{where}: symbol must be exactly one symbol, got {len(names)}")
    for s in names:
        if s not in universe:
            some = ", ".join(universe.symbols[:5]) + (", ..." if len(universe) > 5 else "")
            raise ScenarioError(f"{where}: symbol {s!r} is not in the universe ({some})")
    return np.array(sorted({universe.index(s) for s in names}), np.intp)


def _check_halts(events: tuple[Event, ...], universe: Universe, shown: str) -> None:
    """Halts and resumes must alternate per symbol: no halt of a halted symbol, no stray resume."""
    timed = [e for e in events if e.kind in ("halt", "resume")]
    if any(e.at_abs_ns is not None for e in timed) and any(e.at_abs_ns is None for e in timed):
        raise ScenarioError(
            f"{shown}: halts and resumes must all use offsets or all date-times, not both"
        )
    n = len(universe)
    until = np.full(n, -math.inf)  # halted until (inf: until a resume)
    by = np.zeros(n, np.intp)  # the halt event in force
    since = np.zeros(n)
    for e in sorted(timed, key=lambda e: (e.at_abs_ns or 0, e.at_s, e.index)):
        t = e.at_s if e.at_abs_ns is None else e.at_abs_ns / 1e9
        where = f"{shown}: event {e.index} ({e.kind})"
        if e.kind == "halt":
            busy = e.symbols[until[e.symbols] > t]
            if busy.size:
                s = busy[0]
                raise ScenarioError(
                    f"{where}: at: {universe.symbols[s]} is already halted then (by event "
                    f"{by[s]}); resume it first"
                )
            if e.params["duration"] < MIN_HALT_S:
                raise ScenarioError(f"{where}: duration must be at least {MIN_HALT_S}s")
            until[e.symbols] = t + e.params["duration"]
            by[e.symbols], since[e.symbols] = e.index, t
            continue
        idle = e.symbols[until[e.symbols] <= t]
        if idle.size:
            s = idle[0]
            raise ScenarioError(
                f"{where}: at: {universe.symbols[s]} is not halted then; a resume must follow "
                "a halt without a duration"
            )
        timed_out = e.symbols[until[e.symbols] < math.inf]
        if timed_out.size:
            s = timed_out[0]
            raise ScenarioError(
                f"{where}: at: {universe.symbols[s]}'s halt (event {by[s]}) has a duration; "
                "give it either a duration or a resume, not both"
            )
        early = e.symbols[t - since[e.symbols] < MIN_HALT_S]
        if early.size:
            s = early[0]
            raise ScenarioError(
                f"{where}: at: {universe.symbols[s]} resumes less than {MIN_HALT_S}s after its "
                f"halt (event {by[s]}); the market's grid is {MIN_HALT_S}s"
            )
        until[e.symbols] = t
