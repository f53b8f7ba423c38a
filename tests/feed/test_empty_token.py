"""An empty or whitespace token, from a flag, TICKWIRE_TOKEN or a config file, is a one-line
startup error (exit 2) and never an unauthenticated server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from _support import tickwire_cmd

from tickwire.feed.cli import main as cli
from tickwire.feed.server.server import ServerConfig
from tickwire.simulators.errors import UserError

CASES = [
    (["--token", ""], {}, ""),
    (["--token", "  "], {}, ""),
    (["--token", "ok", "--token", ""], {}, ""),
    ([], {"TICKWIRE_TOKEN": ""}, ""),
    ([], {"TICKWIRE_TOKEN": "  "}, ""),
    ([], {"TICKWIRE_TOKEN": " , "}, ""),
    ([], {}, 'token = ""\n'),
    ([], {}, "token = []\n"),
    ([], {}, 'token = ["ok", " "]\n'),
    (["--workers", "2", "--bus", "redis://127.0.0.1:1/0"], {"TICKWIRE_TOKEN": ""}, ""),
]


@pytest.mark.timeout(30)  # before the fix, these started a server that let anyone in
@pytest.mark.parametrize(("argv", "env", "toml"), CASES)
def test_an_empty_token_is_a_one_line_startup_error(
    argv: list[str],
    env: dict[str, str],
    toml: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [k for k in os.environ if k.startswith("TICKWIRE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if toml:
        (tmp_path / "t.toml").write_text(toml)
        argv = [*argv, "--config", str(tmp_path / "t.toml")]
    try:
        code = cli.main(["serve", "--port", "0", *argv])  # a UserError: printed, 2
    except SystemExit as exc:  # argparse's own error for a bad flag value: also 2
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "token" in err.lower() and ("leave" in err or "unset" in err), err


def test_a_config_with_an_empty_token_cannot_build_a_policy() -> None:
    with pytest.raises(UserError, match="empty or whitespace token"):
        ServerConfig(tokens=("s3cret", " ")).policy()  # library use, as the server builds it


def test_tickwire_token_empty_exits_2_before_listening() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWIRE_")}
    out = subprocess.run(
        tickwire_cmd("serve", "--port", "0"),
        env=env | {"TICKWIRE_TOKEN": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stdout == ""  # no ready line: it never served
    assert out.stderr.strip().splitlines() == [
        "tickwire: error: environment variable TICKWIRE_TOKEN is empty: set it, or unset it to "
        "go without one"
    ]
