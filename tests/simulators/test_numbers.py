"""The one positive/non-negative number parser, and the flags of every command that use it."""

from __future__ import annotations

import argparse

import pytest

from tickwire.feed.cli.main import build_parser
from tickwire.simulators.numbers import non_negative_float, positive_float

BAD_POSITIVE = ["nan", "NaN", "inf", "-inf", "0", "-0", "-1", "x", "", "1e999"]


@pytest.mark.parametrize("text", BAD_POSITIVE)
def test_positive_float_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as err:
        positive_float(text)
    assert str(err.value) == f"must be a finite number > 0, got {text!r}"


@pytest.mark.parametrize("text", ["nan", "inf", "-1", "x", "-0.5"])
def test_non_negative_float_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as err:
        non_negative_float(text)
    assert str(err.value) == f"must be a finite number >= 0, got {text!r}"


def test_both_take_finite_numbers() -> None:
    assert positive_float("0.5") == 0.5
    assert positive_float(" 2 ") == 2.0
    assert positive_float("1e3") == 1000.0
    assert non_negative_float("0") == 0.0
    assert non_negative_float("10") == 10.0


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--cadence", "nan"],  # feed.cli.args
        ["serve", "--activity", "inf"],  # the market's flag in serve
        ["serve", "--history-mb", "inf"],
        ["serve", "--drain-s", "nan"],
        ["simulate", "--activity", "nan"],  # simulators.cli
        ["demo", "--activity", "nan"],  # dashboard.cli: nan passed before
        ["demo", "--activity", "inf"],
    ],
)
def test_every_command_refuses_nan_and_inf_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser(argv[0]).parse_args(argv)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    bound = ">=" if "drain" in argv[1] else ">"
    assert len(lines) == 1 and "Traceback" not in lines[0]
    assert f"{argv[1]}: must be a finite number {bound} 0, got {argv[2]!r}" in lines[0]
