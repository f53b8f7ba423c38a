"""Every `serve` setting that configures the server reaches `ServerConfig` through its own
declaration (`Setting.field`), and every `ServerConfig` field a user can set is declared."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from tickwire.feed.cli import config
from tickwire.feed.cli.serve_settings import SERVE, server_config
from tickwire.feed.cli.setting import Kind, Setting
from tickwire.feed.server.server import ServerConfig
from tickwire.simulators.scenario import names as scenario_names

# ServerConfig fields that are not settings, and why.
NOT_SETTINGS = {
    "reuse_port": "set by --workers for the gateways it starts, not by a user",
    "binance_ping_s": "Binance's fixed ping interval; tests shorten it",
}
# A value other than the default for each setting whose default gives no other.
OTHER = {
    "host": "127.0.0.2",
    "universe": "default",
    "scenario": scenario_names()[0],
    "token": "t1",
    "certfile": "cert.pem",
    "keyfile": "key.pem",
    "allow-origin": "https://example.com",
    "symbols": "5",
    "faults": "/v1=drop:0.1",
    "admin-token": "a1",
}
SETS_A_FIELD = [s for s in SERVE if s.field is not None]


def other_value(s: Setting) -> str:
    """The text of a valid value other than the setting's default."""
    if s.name in OTHER:
        return OTHER[s.name]
    if s.choices:
        return next(c for c in s.choices if c != s.default)
    assert isinstance(s.default, int | float), f"add a value for --{s.name} to OTHER"
    return f"{s.default * 2 + 1:g}"


def parsed(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    config.add_arguments(ap, SERVE)
    args = ap.parse_args(argv)
    config.resolve(SERVE, args, {})
    return args


def test_without_settings_the_config_is_the_default() -> None:
    assert server_config(parsed([])) == ServerConfig()


@pytest.mark.parametrize("s", SETS_A_FIELD, ids=lambda s: s.name)
def test_each_setting_sets_the_field_it_names(s: Setting) -> None:
    args = parsed([f"--{s.name}", other_value(s)])
    got = getattr(server_config(args), s.field or "")
    assert got != getattr(ServerConfig(), s.field or ""), f"--{s.name} did not reach the server"
    if s.field not in ("universe", "scenario"):  # built from several settings
        value = getattr(args, s.attr)
        assert got == (value if s.to_field is None else s.to_field(value))
    assert not isinstance(got, list), "ServerConfig holds tuples, not lists"


def test_every_server_config_field_is_a_setting() -> None:
    fields = {f.name for f in dataclasses.fields(ServerConfig)}
    declared = {s.field for s in SETS_A_FIELD}
    assert declared <= fields, declared - fields
    assert fields - declared == set(NOT_SETTINGS), (
        "declare each new ServerConfig field a user sets in serve_settings (Setting.field), "
        "or name it in NOT_SETTINGS"
    )


def test_a_list_setting_becomes_a_tuple() -> None:
    cfg = server_config(parsed(["--token", "a", "--token", "b"]))
    assert cfg.tokens == ("a", "b")
    lists = [s.name for s in SETS_A_FIELD if s.kind is Kind.LIST]
    assert lists == ["token", "allow-origin", "faults"]
