"""Flag mistakes point at the help of the command that was mistyped."""

from __future__ import annotations

import pytest

from tickwire.feed.cli.main import main


@pytest.mark.parametrize(
    ("argv", "where"),
    [
        (["tail", "AAPL", "--bogus"], "tickwire tail"),
        (["dashboard", "--nope", "1"], "tickwire dashboard"),
        (["simulate", "--outt", "x.csv"], "tickwire simulate"),
        (["--bogus"], "tickwire"),
    ],
)
def test_unknown_flag_points_at_that_commands_help(
    argv: list[str], where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{where}: error: unrecognized arguments")
    assert err[0].endswith(f"(see `{where} --help`)")
