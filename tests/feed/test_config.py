"""Config file and TICKWIRE_* variables under the flags: precedence, errors, --print-config."""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
from pathlib import Path

import pytest
from _support import tickwire_cmd

from tickwire.feed.cli import config
from tickwire.simulators.errors import UserError


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be from 0 to 65535, got {value}")
    return value


S = config.Section("test")
SETTINGS = (
    config.Setting(name="host", section=S, default="127.0.0.1", help=""),
    config.Setting(name="port", section=S, type=_port, default=8765, help=""),
    config.Setting(name="cadence", section=S, type=float, default=1.0, unit="MS", help=""),
    config.Setting(name="token", section=S, kind=config.Kind.LIST, help=""),
    config.Setting(name="certfile", section=S, help=""),
    config.Setting(name="max-connections", section=S, type=int, default=1000, help=""),
    config.Setting(name="verbose", short="-v", section=S, kind=config.Kind.SWITCH, help=""),
    config.Setting(name="no-color", dest="color", section=S, kind=config.Kind.SWITCH_OFF, help=""),
    config.Setting(
        name="log-level", section=S, default="info", choices=("debug", "info", "warning"), help=""
    ),
    config.Setting(name="symbols", section=S, type=int, exclusive="universe", help=""),
    config.Setting(name="universe", section=S, exclusive="universe", help=""),
)


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tickwire serve")
    config.add_arguments(ap, SETTINGS)
    return ap


def resolve(
    argv: list[str], env: dict[str, str] | None = None
) -> tuple[argparse.Namespace, dict[str, str]]:
    args = make_parser().parse_args(argv)
    sources = config.resolve(SETTINGS, args, env or {})
    return args, sources


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "tickwire.toml"
    path.write_text(text)
    return str(path)


def test_defaults_untouched_without_file_or_env() -> None:
    args, sources = resolve([])
    assert (args.host, args.port, args.cadence, args.token) == ("127.0.0.1", 8765, 1.0, [])
    assert args.verbose is False and args.color is True and args.certfile is None
    assert set(sources.values()) == {"default"}


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = 1111\nhost = "0.0.0.0"\ncadence = 5\nmax-connections = 7\n')
    env = {"TICKWIRE_PORT": "2222", "TICKWIRE_CADENCE": "2.5"}
    args, sources = resolve(["--config", path, "--port", "3333"], env)
    assert args.port == 3333 and sources["port"] == "flag"
    assert args.cadence == 2.5 and sources["cadence"] == "env TICKWIRE_CADENCE"
    assert args.host == "0.0.0.0" and sources["host"] == f"file {path}"
    assert args.max_connections == 7
    args, _ = resolve(["--config", path], env)
    assert args.port == 2222


def test_a_flag_equal_to_its_default_still_wins(tmp_path: Path) -> None:
    args, sources = resolve(["--port", "8765"], {"TICKWIRE_PORT": "9000"})
    assert args.port == 8765 and sources["port"] == "flag"


def test_config_path_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 4444\n")
    args, _ = resolve([], {"TICKWIRE_CONFIG": path})
    assert args.port == 4444


def test_file_keys_accept_dashes_or_underscores(tmp_path: Path) -> None:
    args, _ = resolve(["--config", write(tmp_path, "max_connections = 3\nlog-level = 'debug'\n")])
    assert args.max_connections == 3 and args.log_level == "debug"


def test_booleans_from_file_and_env(tmp_path: Path) -> None:
    args, _ = resolve(["--config", write(tmp_path, "verbose = true\nno-color = true\n")])
    assert args.verbose is True and args.color is False
    args, _ = resolve([], {"TICKWIRE_VERBOSE": "yes", "TICKWIRE_NO_COLOR": "0"})
    assert args.verbose is True and args.color is True


def test_append_options(tmp_path: Path) -> None:
    args, _ = resolve(["--config", write(tmp_path, 'token = ["a", "b"]\n')])
    assert args.token == ["a", "b"]
    args, _ = resolve([], {"TICKWIRE_TOKEN": "x, y"})
    assert args.token == ["x", "y"]
    args, _ = resolve(["--token", "z"], {"TICKWIRE_TOKEN": "x"})
    assert args.token == ["z"]


def test_exclusive_options_across_layers(tmp_path: Path) -> None:
    path = write(tmp_path, "symbols = 500\n")
    args, _ = resolve(["--config", path, "--universe", "u.csv"])
    assert args.universe == "u.csv" and args.symbols is None  # the flag's choice wins
    args, _ = resolve(["--config", path], {"TICKWIRE_UNIVERSE": "u.csv"})
    assert args.universe == "u.csv" and args.symbols is None
    with pytest.raises(UserError, match="cannot be used together"):
        resolve(["--config", write(tmp_path, "symbols = 5\nuniverse = 'u.csv'\n")])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prot = 1\n", r"tickwire.toml: unknown key 'prot' \(did you mean 'port'\?\)"),
        ("port = 70000\n", r"tickwire.toml: key 'port': port must be from 0 to 65535, got 70000"),
        ("port = 'abc'\n", r"tickwire.toml: key 'port': invalid literal"),
        ("log-level = 'loud'\n", r"key 'log-level': must be one of debug, info, warning"),
        ("verbose = 'yes'\n", r"key 'verbose': must be true or false, got 'yes'"),
        ("host = {a = 1}\n", r"key 'host': expected a string or a number, got dict"),
        ("port = \n", r"tickwire.toml: not valid TOML"),
    ],
)
def test_file_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        resolve(["--config", write(tmp_path, text)])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TICKWIRE_PORT": "-1"}, "environment variable TICKWIRE_PORT: port must be from 0"),
        ({"TICKWIRE_VERBOSE": "maybe"}, "TICKWIRE_VERBOSE: must be 1/true/yes/on or 0/false"),
        ({"TICKWIRE_LOG_LEVEL": "x"}, "TICKWIRE_LOG_LEVEL: must be one of debug, info"),
    ],
)
def test_env_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(UserError, match=message):
        resolve([], env)


def test_missing_file() -> None:
    with pytest.raises(UserError, match=r"config file /nonexistent\.toml: No such file"):
        resolve(["--config", "/nonexistent.toml"])


def test_help_still_shows_the_defaults() -> None:
    ap = argparse.ArgumentParser()
    port = config.Setting(
        name="port", section=S, type=int, default=8765, help="port (default {default})"
    )
    config.add_arguments(ap, [port])
    assert "port (default 8765)" in ap.format_help()


def test_print_config_redacts_tokens_and_round_trips(tmp_path: Path) -> None:
    args, sources = resolve(["--token", "s3cret", "--port", "9000"], {"TICKWIRE_HOST": "::1"})
    out = io.StringIO()
    config.print_config(SETTINGS, args, sources, out)
    text = out.getvalue()
    assert "s3cret" not in text
    assert 'token = ["<redacted>"]  # flag' in text
    assert 'host = "::1"  # env TICKWIRE_HOST' in text
    assert "port = 9000  # flag" in text
    assert "# certfile =  (unset)  # default" in text
    # What it prints (minus the redacted token) is a config file that gives the same settings.
    again, _ = resolve(
        [
            "--config",
            write(tmp_path, "\n".join(ln for ln in text.splitlines() if "token" not in ln)),
        ]
    )
    assert (again.host, again.port, again.cadence) == ("::1", 9000, 1.0)
    assert again.color is True and "no-color = false  # default" in text


# --------------------------------------------------------------------------- the real command


def run_tickwire(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TICKWIRE_")}
    return subprocess.run(
        tickwire_cmd(*args), env=clean | (env or {}), capture_output=True, text=True, timeout=60
    )


def test_serve_print_config(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 1111\nheartbeat-ms = 250\ntoken = ['from-file']\n")
    out = run_tickwire(
        "serve",
        "--print-config",
        "--config",
        path,
        "--port",
        "3333",
        env={"TICKWIRE_STALL_MS": "5000"},
    )
    assert out.returncode == 0, out.stderr
    assert "port = 3333  # flag" in out.stdout
    assert "heartbeat-ms = 250  # file" in out.stdout
    assert "stall-ms = 5000  # env TICKWIRE_STALL_MS" in out.stdout
    assert "from-file" not in out.stdout and 'token = ["<redacted>"]' in out.stdout


def test_serve_bad_config_is_one_line(tmp_path: Path) -> None:
    out = run_tickwire("serve", "--config", write(tmp_path, "heartbeat-ms = -5\n"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"tickwire: error: config file {tmp_path / 'tickwire.toml'}: key 'heartbeat-ms': "
        "value must be >= 0, got -5"
    ]


def test_readme_config_example_is_accepted(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = re.search(r"```toml\n# tickwire.toml\n(.*?)```", readme, re.S)
    assert example, "the README's tickwire.toml example"
    out = run_tickwire("serve", "--print-config", "--config", write(tmp_path, example.group(1)))
    assert out.returncode == 0, out.stderr
    assert "symbols = 500  # file" in out.stdout


# --------------------------------------------------------------------------- hostile files


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"port = 0\n# caf\xe9\n", "not UTF-8 text (byte 0xe9 at offset 14); TOML files are UTF-8"),
        (b"\x7fELF\x02\x01\x01\x00\xd0\x10" * 50, "not UTF-8 text (byte 0xd0 at offset 8)"),
        (b"seed = -1\n", "key 'seed': seed must be a whole number from 0 to 18446744073709551615"),
        (b"port = 0\n" + b"#" * (2 << 20), "larger than 1 MiB"),
    ],
    ids=["latin-1", "binary", "negative-seed", "huge"],
)
def test_serve_hostile_config_is_one_line(
    tmp_path: Path, content: bytes, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tickwire.feed.cli.main import main

    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    assert main(["serve", "--config", str(path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"tickwire: error: config file {path}: ") and says in err, err


def test_serve_config_dev_zero_is_refused_at_once() -> None:
    # Before: tomllib read /dev/zero to the end, i.e. forever (and all of memory).
    out = run_tickwire("serve", "--config", "/dev/zero", "--port", "0")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "tickwire: error: config file /dev/zero: larger than 1 MiB; a config file is a short TOML"
        " text (keys are the long options: port = 9000)"
    ]


@pytest.mark.parametrize("command", ["serve", "simulate"])
def test_negative_seed_flag_is_one_line(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    from tickwire.feed.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main([command, "--seed", "-1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "seed must be a whole number from 0 to" in err, err
