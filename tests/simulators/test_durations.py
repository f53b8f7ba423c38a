"""The one duration parser: its syntax, its errors, and parse(format(x)) == x."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickwire.simulators.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
        ("1h10m", 4200.0),
        (" 2 M ", 120.0),
        (".5s", 0.5),
        ("0", 0.0),
    ],
)
def test_parses(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_days_only_where_the_caller_says_how_long() -> None:
    assert parse_duration("2d", day_s=23_400) == 46_800
    with pytest.raises(DurationError, match="expected a duration such as 60s"):
        parse_duration("2d")


@pytest.mark.parametrize("text", ["", "s", "5x", "1e3s", "five", "5s5", "inf", "nan"])
def test_rejects_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(DurationError, match=f"got {text!r}"):
        parse_duration(text)


def test_rejects_negative_with_its_own_message() -> None:
    with pytest.raises(DurationError, match="must be >= 0, got -5s"):
        parse_duration("-5s")


def test_bare_number_only_where_allowed() -> None:
    with pytest.raises(DurationError):
        parse_duration("90", bare=False)


def test_rejects_infinite() -> None:
    with pytest.raises(DurationError, match="must be finite"):
        parse_duration("9" * 400 + "h")


def test_format_examples() -> None:
    assert format_duration(5400) == "1h30m"
    assert format_duration(0.25) == "0.25s"
    assert format_duration(0) == "0s"
    assert format_duration(1e-7) == "0.0000001s"


@given(st.floats(min_value=0, allow_infinity=False, allow_nan=False))
def test_parse_reads_back_what_format_writes(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.floats() | st.floats(max_value=-1e-300))
def test_format_rejects_negative_and_non_finite(seconds: float) -> None:
    if seconds >= 0 and math.isfinite(seconds):
        return
    with pytest.raises(DurationError):
        format_duration(seconds)
