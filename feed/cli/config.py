"""Settings declared once, read from flags, `TICKWIRE_*` variables and a TOML file.

A command lists its settings as `Setting`s (name, type, default, help, unit, section); from that
one list come the argparse flags (`add_arguments`), the file keys (`max-connections` or
`max_connections`), the variables (`TICKWIRE_MAX_CONNECTIONS`), `--print-config` and the
Markdown reference in the README. Precedence: flags > environment > file > declared defaults.

How flags are told apart from defaults: every flag is added with `default=argparse.SUPPRESS`,
so a setting absent from the parsed namespace was not on the command line (comparing with the
default cannot work: `--port 8765` must beat `TICKWIRE_PORT=9000`). `resolve` then fills it from
the lower layers. Only argparse's public API is used. Conversion and the file's safety checks
live in `setting`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from tickwire.feed.cli.setting import (
    ENV_PREFIX,
    Kind,
    Section,
    Setting,
    convert_env,
    convert_file,
    read_file,
    toml_value,
)
from tickwire.feed.urls import redact
from tickwire.simulators.errors import UserError

__all__ = ["Kind", "Section", "Setting", "add_arguments", "markdown", "print_config", "resolve"]


# --------------------------------------------------------------------------- flags


def add_arguments(parser: argparse.ArgumentParser, settings: Sequence[Setting]) -> None:
    """Add a flag for each setting, grouped by section, then `--config` and `--print-config`."""
    groups: dict[str, Any] = {}
    exclusive: dict[str, Any] = {}
    for s in settings:
        where: Any = parser
        if s.section.title is not None:
            if s.section.name not in groups:
                title, text = s.section.title, s.section.description
                groups[s.section.name] = parser.add_argument_group(title, text)
            where = groups[s.section.name]
        if s.exclusive is not None:
            if s.exclusive not in exclusive:
                exclusive[s.exclusive] = where.add_mutually_exclusive_group()
            where = exclusive[s.exclusive]
        _add_flag(where, s)
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="read settings from a TOML file (keys are the long options: port = 9000); "
        f"{ENV_PREFIX}* environment variables override it, flags override both",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective configuration (tokens redacted) and exit",
    )


def _add_flag(where: Any, s: Setting) -> None:
    flags = ([s.short] if s.short else []) + [f"--{s.name}"]
    kw: dict[str, Any] = {"dest": s.attr, "default": argparse.SUPPRESS}
    kw["help"] = argparse.SUPPRESS if s.hidden else s.help_text()
    if s.kind is Kind.SWITCH:
        kw["action"] = "store_true"
    elif s.kind is Kind.SWITCH_OFF:
        kw["action"] = "store_false"
    else:
        kw.update(type=s.type, choices=s.choices, metavar=s.unit, nargs=s.nargs)
        if s.kind is Kind.LIST:
            kw["action"] = "append"
    where.add_argument(*flags, **kw)


# --------------------------------------------------------------------------- layers


def resolve(
    settings: Sequence[Setting],
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Fill every setting of `args` not given as a flag from the environment, then the file,
    then its default.

    Returns where each value came from (dest -> "flag", "env NAME", "file PATH", "default").
    Raises UserError naming the key and the file (or the variable) for anything wrong.
    """
    environ = os.environ if environ is None else environ
    path = getattr(args, "config", None) or environ.get(ENV_PREFIX + "CONFIG") or None
    visible = [s for s in settings if not s.hidden]
    layers = [("env", _from_env(visible, environ))]
    if not getattr(args, "worker", False):  # a --workers child: its parent said it already
        warn_typos(settings, environ)
    layers.append((f"file {path}", _from_file(path, visible) if path else {}))
    flagged = {s.attr for s in settings if hasattr(args, s.attr)}
    sources = dict.fromkeys(flagged & {s.attr for s in visible}, "flag")
    groups = _exclusive_groups(settings)
    taken = set(flagged)  # dests set by a higher layer: their exclusive rivals are dropped
    for name, values in layers:
        blocked = {d for g in groups if g & taken for d in g}
        layer_set: set[str] = set()
        for dest, (value, origin) in values.items():
            if dest in taken or dest in blocked:
                continue
            for g in groups:
                rivals = (g & layer_set) - {dest}
                if dest in g and rivals:
                    other = values[rivals.pop()][1]
                    raise UserError(f"{origin} and {other} cannot be used together")
            setattr(args, dest, value)
            layer_set.add(dest)
            sources[dest] = origin if name == "env" else name
        taken |= layer_set
    for s in settings:
        if not hasattr(args, s.attr):
            setattr(args, s.attr, s.initial())
            if not s.hidden:
                sources[s.attr] = "default"
    return sources


def _exclusive_groups(settings: Sequence[Setting]) -> list[set[str]]:
    groups: dict[str, set[str]] = {}
    for s in settings:
        if s.exclusive is not None:
            groups.setdefault(s.exclusive, set()).add(s.attr)
    return list(groups.values())


def _from_env(
    settings: Sequence[Setting], environ: Mapping[str, str]
) -> dict[str, tuple[Any, str]]:
    out: dict[str, tuple[Any, str]] = {}
    for s in settings:
        text = environ.get(s.env)
        if text is not None:
            where = f"environment variable {s.env}"
            out[s.attr] = (convert_env(s, text, where), f"env {s.env}")
    return out


def warn_typos(
    settings: Sequence[Setting], environ: Mapping[str, str], err: TextIO | None = None
) -> None:
    """One line on stderr for each TICKWIRE_* variable that is no setting but is spelled like
    one (TICKWIRE_PROT): ignored, as other programs' variables with our prefix are."""
    import difflib

    known = {s.env for s in settings} | {ENV_PREFIX + "CONFIG"}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.85)
        if close:
            print(
                f"tickwire: warning: environment variable {name} is not a setting, ignored"
                f" (did you mean {close[0]}?)",
                file=err or sys.stderr,
            )


def _from_file(path: str, settings: Sequence[Setting]) -> dict[str, tuple[Any, str]]:
    by_key = {s.name: s for s in settings} | {s.name.replace("-", "_"): s for s in settings}
    out: dict[str, tuple[Any, str]] = {}
    for key, raw in read_file(path, [s.name for s in settings]).items():
        s = by_key[key]
        where = f"config file {path}: key {key!r}"
        out[s.attr] = (convert_file(s, raw, where), where)
    return out


# --------------------------------------------------------------------------- output


def print_config(
    settings: Sequence[Setting],
    args: argparse.Namespace,
    sources: Mapping[str, str],
    out: TextIO | None = None,
) -> None:
    """The effective settings as a TOML file `--config` would accept; secrets redacted."""
    out = sys.stdout if out is None else out  # looked up now: a test may have replaced it
    for s in settings:
        if s.hidden:
            continue
        value = getattr(args, s.attr, None)
        where = f"  # {sources.get(s.attr, 'default')}"
        if value is None:
            print(f"# {s.name} =  (unset){where}", file=out)
            continue
        if s.kind is Kind.SWITCH_OFF:
            value = not value  # `no-color = true` means color is False
        if s.secret and value:
            value = ["<redacted>"] * len(value) if isinstance(value, list) else "<redacted>"
        elif isinstance(value, str):
            value = redact(value)  # a password inside a URL (--bus redis://:PASSWORD@host)
        elif isinstance(value, list):
            value = [redact(v) if isinstance(v, str) else v for v in value]
        print(f"{s.name} = {toml_value(value)}{where}", file=out)


def markdown(settings: Sequence[Setting]) -> str:
    """The settings as Markdown tables, one per section: the README's reference."""
    sections: dict[str, list[Setting]] = {}
    for s in settings:
        if not s.hidden:
            sections.setdefault(s.section.name, []).append(s)
    lines: list[str] = []
    for name, members in sections.items():
        lines += ["", f"**{name}**", ""] if lines else [f"**{name}**", ""]
        lines += ["| key | variable | what |", "|---|---|---|"]
        for s in members:
            text = s.help_text().replace("|", "\\|")
            lines.append(f"| `{s.name}` | `{s.env}` | {text} |")
    return "\n".join(lines) + "\n"


def check_unique(settings: Sequence[Setting]) -> None:
    """A declaration table names each flag, key and dest once (a test calls this)."""
    for what, names in (
        ("name", [s.name for s in settings]),
        ("dest", [s.attr for s in settings]),
        ("short flag", [s.short for s in settings if s.short]),
    ):
        seen = {n for n in names if names.count(n) > 1}
        if seen:
            raise ValueError(f"settings declared twice ({what}): {', '.join(sorted(seen))}")
