"""`tickwire serve`'s settings table: the one declaration the flags, variables, file keys,
--print-config and the README's reference all come from."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from tickwire.feed.cli import config
from tickwire.feed.cli.main import build_parser, main
from tickwire.feed.cli.process_settings import BUS_NAMESPACE
from tickwire.feed.cli.serve_settings import SERVE
from tickwire.feed.cli.setting import Kind, format_default

README = Path(__file__).resolve().parents[2] / "README.md"
VISIBLE = [s for s in SERVE if not s.hidden]
# A valid text for each setting whose default cannot stand for one (None or a list).
SAMPLES = {
    "symbols": "5",
    "token": "t1, t2",
    "certfile": "cert.pem",
    "keyfile": "key.pem",
    "allow-origin": "https://example.com",
    "replay": "a.parquet, b.csv",
    "start": "+10m",
    "end": "+20m",
    "columns": "ts=time",
    "bus": "redis://127.0.0.1:6379/0",
    "faults": "/v1=drop:0.01;dup:1%, /binance=disconnect:30s",
    "admin-token": "a1",
}


def test_each_setting_is_declared_once() -> None:
    config.check_unique(SERVE)
    for s in SERVE:
        assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", s.name), s.name
        assert s.env == "TICKWIRE_" + s.name.upper().replace("-", "_")


def test_check_unique_catches_a_second_declaration() -> None:
    with pytest.raises(ValueError, match=r"declared twice \(name\): port"):
        config.check_unique([*SERVE, SERVE[1]])


def test_serve_has_no_flag_outside_the_table() -> None:
    serve = build_parser("serve").commands.choices["serve"]  # type: ignore[union-attr]
    declared = {f"--{s.name}" for s in VISIBLE} | {s.short for s in VISIBLE if s.short}
    assert set(serve.option_strings()) == declared | {"-h", "--help", "--config", "--print-config"}


def test_help_says_every_default() -> None:
    for s in VISIBLE:
        if s.default is not None and not s.switch:
            assert f"(default {format_default(s.default)}" in s.help_text(), s.name


def test_the_readme_reference_is_the_table() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- settings:begin[^\n]*-->\n(.*?)<!-- settings:end -->", text, re.S)
    assert block, "the README's settings reference, between its markers"
    assert block.group(1) == config.markdown(SERVE), (
        "README.md's settings reference is stale: replace it with the output of "
        "`python -m tickwire.feed.cli.serve_settings`"
    )


def sample(s: config.Setting) -> str:
    if s.name in SAMPLES:
        return SAMPLES[s.name]
    if s.switch:
        return "1"
    if s.choices:
        return s.choices[-1]
    return str(s.default)


def test_every_setting_has_a_variable_and_a_file_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = [s for s in VISIBLE if s.name != "universe"]  # the rival of --symbols
    for s in chosen:
        monkeypatch.setenv(s.env, sample(s))
    assert main(["serve", "--print-config"]) == 0
    printed = capsys.readouterr().out
    for s in chosen:
        assert re.search(rf"^{s.name} = .*  # env {s.env}$", printed, re.M), s.name
    # What it printed is a file that sets the same (the tokens were redacted: set them again).
    for s in chosen:
        monkeypatch.delenv(s.env)
    lines = [ln for ln in printed.splitlines() if not ln.startswith(("#", "token"))]
    path = tmp_path / "all.toml"
    path.write_text("\n".join([*lines, 'token = ["t1"]']) + "\n")
    assert main(["serve", "--print-config", "--config", str(path)]) == 0
    again = capsys.readouterr().out
    for s in chosen:
        assert re.search(rf"^{s.name} = .*  # file {path}$", again, re.M), s.name

    def values(text: str) -> set[str]:
        return {ln.split("  # ")[0] for ln in text.splitlines() if not ln.startswith("token")}

    assert values(again) == values(printed)


def resolve(env: dict[str, str], argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    config.add_arguments(ap, SERVE)
    args = ap.parse_args(argv or [])
    config.resolve(SERVE, args, env)
    return args


def test_replay_files_are_a_list_from_every_layer(tmp_path: Path) -> None:
    # Before: a variable or a file key gave one string, which the replay read letter by letter.
    assert resolve({"TICKWIRE_REPLAY": "a.parquet, b.csv"}).replay == ["a.parquet", "b.csv"]
    path = tmp_path / "replay.toml"
    path.write_text('replay = "day.parquet"\n')
    assert resolve({}, ["--config", str(path)]).replay == ["day.parquet"]
    path.write_text('replay = ["a.parquet", "b.parquet"]\n')
    assert resolve({}, ["--config", str(path)]).replay == ["a.parquet", "b.parquet"]
    assert resolve({}, ["--replay", "x.npy", "y.npy"]).replay == ["x.npy", "y.npy"]


def test_defaults_without_flags_file_or_variables() -> None:
    args = resolve({})
    for s in SERVE:
        expected = [] if s.kind is Kind.LIST else (False if s.switch else s.default)
        assert getattr(args, s.attr) == expected, s.name
    assert args.worker is False  # hidden, yet set for the code that reads it


def test_the_bus_namespace_is_the_bus_default() -> None:
    pytest.importorskip("coredis")
    from tickwire.feed.bus.api import DEFAULT_NAMESPACE

    assert BUS_NAMESPACE == DEFAULT_NAMESPACE


def test_the_readme_command_row_quotes_declared_flags_and_defaults() -> None:
    row = next(
        ln
        for ln in README.read_text(encoding="utf-8").splitlines()
        if ln.startswith("| `tickwire serve` |")
    )
    by_flag = {f"--{s.name}": s for s in VISIBLE}
    checked = 0
    for code in re.findall(r"`(--[^`]+)`", row):
        words = code.split()
        for i, word in enumerate(words):
            if not word.startswith("--") or word == "--config":
                continue
            for flag in word.split("/"):
                assert flag in by_flag or flag in ("--config", "--print-config"), flag
            value = words[i + 1] if i + 1 < len(words) else None
            if value is None or value.startswith("--") or value.isupper() or "|" in value:
                continue  # a placeholder (N, FILE...) or a choice list, not a default
            s = by_flag[word]
            assert (s.type(value) if s.type else value) == s.default, (word, value)
            checked += 1
    assert checked >= 10  # the row quotes defaults: --port 8765, --history 60s...


def test_a_misspelt_variable_is_named_and_ignored(capsys: pytest.CaptureFixture[str]) -> None:
    environ = {"TICKWIRE_PROT": "9000", "TICKWIRE_LOGLEVEL": "debug", "TICKWIRE_SOAK_S": "5"}
    args = resolve(environ)
    assert args.port == 8765 and args.log_level == "info"
    assert capsys.readouterr().err.splitlines() == [
        "tickwire: warning: environment variable TICKWIRE_LOGLEVEL is not a setting, ignored"
        " (did you mean TICKWIRE_LOG_LEVEL?)",
        "tickwire: warning: environment variable TICKWIRE_PROT is not a setting, ignored"
        " (did you mean TICKWIRE_PORT?)",
    ]  # and nothing for another program's variable with our prefix (TICKWIRE_SOAK_S)
    resolve(environ, ["--worker"])  # a --workers child: its parent warned already
    assert capsys.readouterr().err == ""
