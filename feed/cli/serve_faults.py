"""The `tickwire serve` settings of injected faults and live scenarios (`--faults`,
`--admin-token`), declared here and listed once in `serve_settings.SERVE`."""

from __future__ import annotations

import argparse

from tickwire.feed.cli import args
from tickwire.feed.cli.setting import Kind, Section, Setting
from tickwire.feed.faults import FaultSpec
from tickwire.feed.server.faulting import parse_path_spec


def settings(section: Section) -> list[Setting]:
    return [
        Setting(
            name="faults",
            section=section,
            kind=Kind.LIST,
            type=fault_path,
            unit="PATH=SPEC",
            field="faults",
            to_field=fault_specs,
            help="inject faults into every connection to PATH or below it that asks for none "
            "itself (repeatable), e.g. /binance=disconnect:30s or /v1=drop:0.01,delay:50ms~20ms; "
            "see Injected faults",
        ),
        Setting(
            name="admin-token",
            section=section,
            type=args.server_token,
            unit="TOKEN",
            field="admin_token",
            help="let an operator with this token start a market scenario live (`tickwire "
            "scenario run`, POST /admin/scenario); without it there is no admin endpoint",
        ),
    ]


def fault_specs(texts: list[str]) -> tuple[tuple[str, FaultSpec], ...]:
    """`ServerConfig.faults` from the `--faults` values (each checked by `fault_path`)."""
    return tuple(parse_path_spec(text) for text in texts)


def fault_path(text: str) -> str:
    """`--faults PATH=SPEC`, checked (one line if wrong); kept as text for --print-config."""
    try:
        parse_path_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
