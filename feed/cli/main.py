"""The `tickwire` console script: one parser, thin subcommands.

Each subcommand lives beside the code it drives and exposes `register(subparsers)`, which adds its
parser and sets `func` (called with the parsed namespace; returns an exit code). This module is the
composition root: the only place in `feed` that may import `tickwire.dashboard`, lazily.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from tickwire.feed.version import version
from tickwire.simulators.errors import Interrupted, UserError

# Modules providing `register(subparsers)` and the commands each registers, in the order
# `tickwire --help` lists them. A command line naming one of these commands loads its module
# alone: `tickwire tail` never imports the server (tests pin this table to what registers).
_SUBCOMMANDS: dict[str, tuple[str, ...]] = {
    "tickwire.feed.cli.serve": ("serve",),
    "tickwire.feed.cli.tail": ("tail",),
    "tickwire.feed.cli.record": ("record",),
    "tickwire.feed.cli.ops": ("symbols", "stats"),
    "tickwire.feed.cli.scenario": ("scenario",),
    "tickwire.dashboard.cli": ("demo", "dashboard"),
    "tickwire.simulators.cli": ("simulate",),
    "tickwire.feed.bench": ("bench",),
}
# What `tickwire --help` says of each command, so that it (and a line naming no command) loads
# none of their modules; a test pins these to the help each module registers.
_SUMMARIES = {
    "serve": "run the feed server with its built-in simulated market",
    "tail": "print live ticks from a server, one line each",
    "record": "write every update from a server to a file (.parquet, .npy, .csv)",
    "symbols": "list a server's symbols and their reference data",
    "stats": "show a server's counters",
    "scenario": "start a market scenario on a running server",
    "demo": "a live simulated market in the terminal dashboard, nothing else to run",
    "dashboard": "the terminal dashboard on a running server",
    "simulate": "generate simulated ticks offline, to a file or a stylized-facts report",
    "bench": "speed figures, each beside a baseline measured in the same run",
}
_GLOBAL_FLAGS = ("--debug",)  # the top-level options that take no value
INTERRUPTED = 130  # the exit status of a command stopped by Ctrl+C: 128 + SIGINT, as in shells

_EPILOG = """\
quick start:
  tickwire demo                 a live market in a terminal dashboard, nothing else to run
  tickwire serve                the feed on ws://127.0.0.1:8765/v1
  tickwire tail AAPL MSFT       print live ticks from a running server
  tickwire simulate --symbols 30 --duration 2d --activity 0.05 --report
                                the stylized facts of the simulated market

`tickwire COMMAND --help` tells more about each command.
"""


class _Parser(argparse.ArgumentParser):
    """Flag errors in one line with a pointer to --help, instead of the whole usage.

    Also "did you mean" for a mistyped flag or command, on every Python (argparse's own
    `suggest_on_error` exists from 3.14 only), from the options this parser recorded as they were
    added (what `add_argument` returns, in groups too) and the commands its subparsers action
    holds: public attributes, no argparse internals.
    """

    commands: argparse.Action | None = None  # what add_subparsers returned, if it was called

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.added: list[argparse.Action] = []
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")

    def add_subparsers(self, **kwargs: Any) -> Any:  # argparse's own return type is private
        self.commands = super().add_subparsers(**kwargs)
        return self.commands

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.added.append(action)
        return action

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        """argparse's own group (its __init__ uses two), whose options are recorded too."""
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument

        def add_argument(*a: Any, **kw: Any) -> argparse.Action:
            action = add(*a, **kw)
            self.added.append(action)
            return action

        def add_mutually_exclusive_group(**kw: Any) -> _Recording:
            return _Recording(self, add_exclusive(**kw))

        add_exclusive = group.add_mutually_exclusive_group
        group.add_argument = add_argument  # type: ignore[method-assign]
        group.add_mutually_exclusive_group = add_mutually_exclusive_group  # type: ignore[method-assign,assignment]
        return group

    def add_mutually_exclusive_group(self, **kwargs: Any) -> Any:
        return _Recording(self, super().add_mutually_exclusive_group(**kwargs))

    def option_strings(self) -> list[str]:
        shown = [a for a in self.added if a.help != argparse.SUPPRESS]
        return [s for action in shown for s in action.option_strings]

    def unrecognized(self, unknown: Sequence[str]) -> NoReturn:
        """The error for arguments nobody took, with the closest flag for a mistyped one."""
        hints = []
        for arg in unknown:
            flag = arg.split("=", 1)[0]
            if flag.startswith("-") and (close := _closest(flag, self.option_strings())):
                hints.append(f"{flag}: did you mean {close}?")
        hint = f" ({'; '.join(hints)})" if hints else ""
        self.error(f"unrecognized arguments: {' '.join(unknown)}{hint}")

    def unknown_command(self, name: str, known: Sequence[str]) -> NoReturn:
        close = _closest(name, known)
        hint = f" (did you mean {close}?)" if close else ""
        self.error(f"unknown command {name!r}{hint}; the commands are {', '.join(known)}")


class _Recording:
    """An argument group (or exclusive group) whose options its parser records too."""

    def __init__(self, parser: _Parser, group: Any) -> None:
        self.parser, self.group = parser, group

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action: argparse.Action = self.group.add_argument(*args, **kwargs)
        self.parser.added.append(action)
        return action

    def add_mutually_exclusive_group(self, **kwargs: Any) -> _Recording:
        return _Recording(self.parser, self.group.add_mutually_exclusive_group(**kwargs))


def _closest(word: str, choices: Sequence[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def build_parser(command: str | None = None, *, summaries: bool = False) -> _Parser:
    """The whole parser, or with `command` only that command's (its module alone imported);
    with `summaries`, every command by name and help line only, no module imported (what
    `tickwire --help` shows, the same text as the whole parser's)."""
    parser = _Parser(
        prog="tickwire",
        description="A realistic simulated market, streamed over WebSocket at millisecond cadence.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    if summaries:
        for command_name, summary in _SUMMARIES.items():
            sub.add_parser(command_name, help=summary)
        return parser
    for name, commands in _SUBCOMMANDS.items():
        if command is not None and command not in commands:
            continue
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command still being built is simply absent
            if exc.name != name:
                raise
            continue
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    for each in sub.choices.values():  # so an unknown flag points at that command's help
        each.set_defaults(command_parser=each)
    return parser


class _Version(argparse.Action):
    """`--version`, looked up only when asked (importlib.metadata costs every command ~30 ms)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS)
        super().__init__(option_strings, argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(f"tickwire {version()}")  # on stdout, as argparse's own version action does
        parser.exit()


def _first_word(argv: Sequence[str]) -> str | None:
    """The first argument that is not a top-level flag: the command, if the line names one."""
    for arg in argv:
        if arg not in _GLOBAL_FLAGS:
            return arg
    return None


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's flush at exit cannot fail again."""
    import os

    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    known = [c for commands in _SUBCOMMANDS.values() for c in commands]
    word = _first_word(argv)
    try:
        # A named command loads its module alone; no command (or an unknown one) loads none.
        parser = build_parser(word) if word in known else build_parser(summaries=True)
    except KeyboardInterrupt:  # Ctrl+C while the command's modules load: nothing started yet
        print(f"tickwire{f' {word}' if word in known else ''}: interrupted", file=sys.stderr)
        return INTERRUPTED
    if word is not None and not word.startswith("-") and word not in known:
        parser.unknown_command(word, list(getattr(parser.commands, "choices", None) or known))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        where = getattr(args, "command_parser", parser)
        if not isinstance(where, _Parser):
            where.error(f"unrecognized arguments: {' '.join(unknown)}")
        where.unrecognized(unknown)
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
    except Interrupted as exc:
        if args.debug:
            raise
        print(f"tickwire {_first_word(argv)}: {exc}", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # `tickwire symbols --json | head`: the reader is done, so are we
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:  # a command that keeps nothing (symbols, stats): nothing to say
        # A WebSocket client interrupted while it opened may leave a task's coroutine unstarted;
        # Python would say so at exit, on the user's screen, for nothing the user did.
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
        print(f"tickwire {_first_word(argv)}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception:
        # The CLI's top level is a named boundary: log the bug with its traceback, exit 1.
        import logging

        logging.getLogger("tickwire").exception("unexpected error (please report it)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
