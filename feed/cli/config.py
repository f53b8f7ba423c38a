"""Settings from a TOML file and `TICKWIRE_*` variables, layered under a command's flags.

Generic over an argparse parser: every long option becomes a file key (`max-connections`, or
`max_connections`) and an environment variable (`TICKWIRE_MAX_CONNECTIONS`), converted and
checked by the option's own `type` and `choices`, so a flag added tomorrow is configurable with
no change here. Precedence: flags > environment > file > the parser's defaults.

How flags are told apart from defaults: `install()` wraps each default in a marker before
parsing; a value that is still a marker after parsing was not on the command line. (Comparing
with the default cannot work: `--port 8765` must beat `TICKWIRE_PORT=9000`.)

argparse has no public accessor for a parser's actions or exclusive groups, and we never read
another package's private attributes: the parser is a `ConfigurableParser`, which records every
Action `add_argument` returns (with the `action=` it was asked for) and every exclusive group's
members, and this module reads that record.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from tickwire.feed.urls import redact
from tickwire.simulators.errors import UserError

ENV_PREFIX = "TICKWIRE_"
_SKIP = {"help", "version", "config", "print_config"}
_SECRET_WORDS = ("token", "secret", "password")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_FLAGS = ("store_true", "store_false")
# A settings file is a few hundred bytes: past this it is the wrong file (or /dev/zero), and
# reading it whole would take memory (or forever).
MAX_FILE_BYTES = 1 << 20


class _Unset:
    """A default nobody overrode on the command line (argparse leaves non-str defaults as is)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:  # `%(default)s` in help texts
        return str(self.value)

    def __float__(self) -> float:  # `%(default)g`
        return float(self.value)

    def __int__(self) -> int:  # `%(default)d`
        return int(self.value)


class _UnsetList(list[Any]):
    """The marker for `append` actions: argparse copies the default before appending, and
    `copy.copy` of this returns a plain list, so an appended value is no longer a marker."""

    def __copy__(self) -> list[Any]:
        return list(self)


@dataclass(frozen=True, slots=True)
class Recorded:
    """One option as it was added: argparse's public Action and the `action=` keyword."""

    action: argparse.Action
    kind: str  # "store", "append", "store_true", "store_false", "version", "help"...


class _ExclusiveGroup:
    """What `add_mutually_exclusive_group` returns: argparse's group, recording its options."""

    def __init__(self, parser: ConfigurableParser, group: Any) -> None:
        self._parser, self._group, self.dests = parser, group, set[str]()

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action: argparse.Action = self._group.add_argument(*args, **kwargs)
        self._parser.record(action, kwargs.get("action"))
        self.dests.add(action.dest)
        return action


class ConfigurableParser(argparse.ArgumentParser):
    """An ArgumentParser that keeps a public record of its options for `install`/`resolve`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.recorded: list[Recorded] = []
        self.exclusive: list[_ExclusiveGroup] = []
        super().__init__(*args, **kwargs)

    def record(self, action: argparse.Action, kind: Any) -> None:
        self.recorded.append(Recorded(action, kind if isinstance(kind, str) else "store"))

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.record(action, kwargs.get("action"))
        return action

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        """A titled group of options (for --help), whose options are recorded like the rest."""
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument

        def add_argument(*a: Any, **kw: Any) -> argparse.Action:
            action = add(*a, **kw)
            self.record(action, kw.get("action"))
            return action

        group.add_argument = add_argument  # type: ignore[method-assign]
        return group

    def add_mutually_exclusive_group(self, **kwargs: Any) -> Any:
        group = _ExclusiveGroup(self, super().add_mutually_exclusive_group(**kwargs))
        self.exclusive.append(group)
        return group


def _recorded(parser: argparse.ArgumentParser) -> list[Recorded]:
    if not isinstance(parser, ConfigurableParser):
        raise TypeError("config options need a _config.ConfigurableParser (it records them)")
    return parser.recorded


@dataclass(frozen=True, slots=True)
class _Option:
    dest: str
    key: str  # file key: the long option without dashes
    env: str
    action: argparse.Action
    kind: str


def install(parser: argparse.ArgumentParser) -> None:
    """Add `--config FILE` and `--print-config` to `parser`; call after its other options."""
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
    for rec in _recorded(parser):
        action = rec.action
        if action.dest in _SKIP or not action.option_strings or _hidden(action):
            continue
        if rec.kind == "append":
            action.default = _UnsetList(action.default or [])
        elif not isinstance(action.default, _Unset):
            action.default = _Unset(action.default)


def _hidden(action: argparse.Action) -> bool:
    """An internal option (help=SUPPRESS, e.g. the supervisor's `--worker`): not a setting."""
    return action.help == argparse.SUPPRESS


def options(parser: argparse.ArgumentParser) -> list[_Option]:
    """The configurable options of `parser`: every long option but help, config's own and the
    hidden ones (no file key, no variable, not in --print-config)."""
    out = []
    for rec in _recorded(parser):
        action = rec.action
        longs = [s for s in action.option_strings if s.startswith("--")]
        if action.dest in _SKIP or not longs or _hidden(action):
            continue
        key = longs[0][2:]
        env = ENV_PREFIX + key.replace("-", "_").upper()
        out.append(_Option(action.dest, key, env, action, rec.kind))
    return out


def resolve(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Fill every option of `args` not given as a flag from the environment, then the file.

    Returns where each value came from (dest -> "flag", "env NAME", "file PATH", "default").
    Raises UserError naming the key and the file (or the variable) for anything wrong.
    """
    environ = os.environ if environ is None else environ
    opts = options(parser)
    path = getattr(args, "config", None) or environ.get(ENV_PREFIX + "CONFIG") or None
    file_values = _read_file(path, opts) if path else {}
    sources: dict[str, str] = {}
    layers: list[tuple[str, dict[str, Any]]] = [
        ("env", _from_env(opts, environ)),
        (f"file {path}", file_values),
    ]
    taken: set[str] = set()  # dests set by a higher layer: their exclusive rivals are dropped
    flagged = {o.dest for o in opts if not _is_unset(getattr(args, o.dest, None))}
    taken |= flagged
    for o in opts:
        if o.dest in flagged:
            sources[o.dest] = "flag"
    exclusive = parser.exclusive if isinstance(parser, ConfigurableParser) else []
    groups = [set(g.dests) for g in exclusive]
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
    for o in opts:
        current = getattr(args, o.dest, None)
        if _is_unset(current):
            setattr(args, o.dest, _default_value(o.action))
            sources.setdefault(o.dest, "default")
    return sources


def print_config(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    sources: Mapping[str, str],
    out: TextIO = sys.stdout,
) -> None:
    """The effective settings as a TOML file `--config` would accept; secrets redacted."""
    for o in options(parser):
        value = getattr(args, o.dest, None)
        where = f"  # {sources.get(o.dest, 'default')}"
        if value is None:
            print(f"# {o.key} =  (unset){where}", file=out)
            continue
        if o.kind == "store_false":
            value = not value  # `no-color = true` means color is False
        if _secret(o) and value:
            value = ["<redacted>"] * len(value) if isinstance(value, list) else "<redacted>"
        elif isinstance(value, str):
            value = redact(value)  # a password inside a URL (--bus redis://:PASSWORD@host)
        elif isinstance(value, list):
            value = [redact(v) if isinstance(v, str) else v for v in value]
        print(f"{o.key} = {_toml(value)}{where}", file=out)


# --------------------------------------------------------------------------- layers


def _read_file(path: str, opts: list[_Option]) -> dict[str, tuple[Any, str]]:
    data = _load_toml(path)
    by_key = {o.key: o for o in opts} | {o.key.replace("-", "_"): o for o in opts}
    out: dict[str, tuple[Any, str]] = {}
    for key, raw in data.items():
        opt = by_key.get(key)
        if opt is None:
            close = difflib.get_close_matches(key, [o.key for o in opts], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(
                f"config file {path}: unknown key {key!r}{hint}; "
                f"keys are the long options of --help: {', '.join(o.key for o in opts)}"
            )
        where = f"config file {path}: key {key!r}"
        out[opt.dest] = (_convert_file(opt, raw, where), where)
    return out


def _load_toml(path: str) -> dict[str, Any]:
    """The file's TOML table; a file too big, not UTF-8 or not TOML is one UserError."""
    import tomllib  # here: every command builds a parser, few read a config file

    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)  # bounded: a device or a FIFO may never end
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise UserError(
            f"config file {path}: larger than {MAX_FILE_BYTES >> 20} MiB; "
            "a config file is a short TOML text (keys are the long options: port = 9000)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"config file {path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); TOML files are UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path}: not valid TOML: {exc}") from None


def _from_env(opts: list[_Option], environ: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    out: dict[str, tuple[Any, str]] = {}
    for o in opts:
        text = environ.get(o.env)
        if text is None:
            continue
        where = f"environment variable {o.env}"
        out[o.dest] = (_convert_env(o, text, where), f"env {o.env}")
    return out


# --------------------------------------------------------------------------- conversion


def _convert_file(opt: _Option, raw: Any, where: str) -> Any:
    action = opt.action
    if opt.kind in _FLAGS:
        if not isinstance(raw, bool):
            raise UserError(f"{where}: must be true or false, got {raw!r}")
        return raw if action.const is True else not raw
    if opt.kind == "append":
        items = raw if isinstance(raw, list) else [raw]
        if not items and _secret(opt):
            raise UserError(f"{where} is empty: set it, or leave the key out to go without one")
        return [_one(action, _scalar(x, where), where) for x in items]
    return _one(action, _scalar(raw, where), where)


def _convert_env(opt: _Option, text: str, where: str) -> Any:
    action = opt.action
    if opt.kind in _FLAGS:
        word = text.strip().lower()
        if word not in _TRUE | _FALSE:
            raise UserError(f"{where}: must be 1/true/yes/on or 0/false/no/off, got {text!r}")
        return (word in _TRUE) == (action.const is True)
    if opt.kind == "append":
        parts = [_one(action, part.strip(), where) for part in text.split(",") if part.strip()]
        if not parts and _secret(opt):  # an unset templated secret must not mean "no secret"
            raise UserError(f"{where} is empty: set it, or unset it to go without one")
        return parts
    return _one(action, text, where)


def _secret(opt: _Option) -> bool:
    return any(w in opt.dest for w in _SECRET_WORDS)


def _scalar(raw: Any, where: str) -> str:
    """TOML's typed value as the text a flag would carry (types check it as they check flags)."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str | int | float):
        return str(raw)
    raise UserError(f"{where}: expected a string or a number, got {type(raw).__name__}")


def _one(action: argparse.Action, text: str, where: str) -> Any:
    convert = action.type if callable(action.type) else None
    try:
        value = convert(text) if convert else text
    except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
        raise UserError(f"{where}: {exc or 'invalid value'}") from None
    if action.choices is not None and value not in action.choices:
        allowed = ", ".join(map(str, action.choices))
        raise UserError(f"{where}: must be one of {allowed}, got {text!r}")
    return value


def _is_unset(value: Any) -> bool:
    return isinstance(value, _Unset | _UnsetList)


def _default_value(action: argparse.Action) -> Any:
    default = action.default
    if isinstance(default, _UnsetList):
        return list(default)
    value = default.value if isinstance(default, _Unset) else default
    if isinstance(value, str) and callable(action.type):  # as argparse converts str defaults
        return action.type(value)
    return value


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
