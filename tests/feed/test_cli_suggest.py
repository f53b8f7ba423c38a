""" "Did you mean" for a mistyped command or flag, on every Python the project supports.

argparse suggests only from Python 3.14 (`suggest_on_error`); the CLI's parser does it itself from
the options it recorded and its subparsers' choices, and hidden options are never suggested.
"""

from __future__ import annotations

import subprocess

import pytest
from _support import tickwire_cmd

from tickwire.feed.cli import main as cli


def _error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.main(list(argv))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["tial", "AAPL"], "unknown command 'tial' (did you mean tail?)"),
        (["--debug", "bnech"], "unknown command 'bnech' (did you mean bench?)"),
        (["serve", "--prot", "9000"], "--prot: did you mean --port?"),
        (["serve", "--prot=9000"], "--prot: did you mean --port?"),
        (["tail", "AAPL", "--cont", "1"], "--cont: did you mean --count?"),
        (["record", "--out", "x.csv", "--duraton", "5s"], "--duraton: did you mean --duration?"),
        (["--debg"], "--debg: did you mean --debug?"),
    ],
)
def test_a_typo_gets_the_closest_name(
    capsys: pytest.CaptureFixture[str], argv: list[str], hint: str
) -> None:
    assert hint in _error(capsys, *argv)


def test_nothing_close_means_no_guess_and_hidden_flags_are_never_offered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = _error(capsys, "zzzz")
    assert "did you mean" not in err and "the commands are serve, tail" in err
    err = _error(capsys, "serve", "--wrker")  # --worker is internal (help=SUPPRESS)
    assert "--worker?" not in err and "--workers?" in err
    assert "did you mean" not in _error(capsys, "tail", "AAPL", "--qqqqqqq")


def test_the_real_command_suggests_in_one_line() -> None:
    out = subprocess.run(
        tickwire_cmd("simulate", "--seeed", "1"), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "tickwire simulate: error: unrecognized arguments: --seeed 1 (--seeed: did you mean "
        "--seed?) (see `tickwire simulate --help`)"
    ]


def test_options_of_every_kind_of_group_are_suggested(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    group = parser.add_argument_group("g")
    group.add_argument("--plain-one")
    group.add_mutually_exclusive_group().add_argument("--in-a-group")
    parser.add_mutually_exclusive_group().add_argument("--at-the-top")
    assert {"--plain-one", "--in-a-group", "--at-the-top"} <= set(parser.option_strings())
    with pytest.raises(SystemExit):
        parser.unrecognized(["--in-a-grup"])
    assert "did you mean --in-a-group?" in capsys.readouterr().err
