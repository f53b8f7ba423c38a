"""The `tickwire` console script: one parser, thin subcommands.

Each subcommand lives beside the code it drives and exposes `register(subparsers)`, which adds its
parser and sets `func` (called with the parsed namespace; returns an exit code). This module is the
composition root: the only place in `feed` that may import `tickwire.dashboard`, lazily.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from tickwire.simulators.errors import UserError

from ._config import ConfigurableParser

# Modules providing `register(subparsers)`, in the order `tickwire --help` lists them.
_SUBCOMMANDS = (
    "tickwire.feed._cli_serve",  # serve, tail
    "tickwire.feed._cli_record",  # record
    "tickwire.feed._cli_ops",  # symbols, stats
    "tickwire.dashboard.cli",  # demo, dashboard
    "tickwire.simulators.cli",  # simulate
    "tickwire.feed.bench",  # bench
)

_EPILOG = """\
quick start:
  tickwire demo                 a live market in a terminal dashboard, nothing else to run
  tickwire serve                the feed on ws://127.0.0.1:8765/v1
  tickwire tail AAPL MSFT       print live ticks from a running server
  tickwire simulate --symbols 30 --duration 2d --activity 0.05 --report
                                the stylized facts of the simulated market

`tickwire COMMAND --help` tells more about each command.
"""


class _Parser(ConfigurableParser):
    """Flag errors in one line with a pointer to --help, instead of the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tickwire",
        description="A realistic simulated market, streamed over WebSocket at millisecond cadence.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tickwire {_version()}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    for name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command still being built is simply absent
            if exc.name != name:
                raise
            continue
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    for command in sub.choices.values():  # so an unknown flag points at that command's help
        command.set_defaults(command_parser=command)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tickwire")
    except PackageNotFoundError:
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        where: argparse.ArgumentParser = getattr(args, "command_parser", parser)
        where.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        if args.debug:
            raise
        print(f"tickwire: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except Exception:
        # The CLI's top level is a named boundary: log the bug with its traceback, exit 1.
        logging.getLogger("tickwire").exception("unexpected error (please report it)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
