"""One setting: its declaration, and its value read from a TOML file or a variable's text.

`Setting` says a setting once (name, type, default, help, unit, section, and the `ServerConfig`
field it sets); `config` turns a list of them into flags, variables, file keys and
`--print-config`. This module owns the file's safety (bounded read, UTF-8, TOML, known keys)
and the conversions: TOML's typed values and a variable's text go through the setting's own
`type` and `choices`, as its flag's text does, so each mistake is one line naming the file and
key (or the variable). Imports nothing of ours but the error type.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from tickwire.simulators.errors import UserError

ENV_PREFIX = "TICKWIRE_"
_SECRET_WORDS = ("token", "secret", "password")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# A settings file is a few hundred bytes: past this it is the wrong file (or /dev/zero), and
# reading it whole would take memory (or forever).
MAX_FILE_BYTES = 1 << 20


class Kind(Enum):
    """How a setting takes its value: one value, a repeatable flag, or a switch."""

    VALUE = "value"
    LIST = "list"  # repeatable flag; a TOML list; a comma-separated variable
    SWITCH = "switch"  # `--verbose` sets True
    SWITCH_OFF = "switch-off"  # `--no-color` sets `color` False; `no-color = true` in a file


@dataclass(frozen=True, slots=True)
class Section:
    """A titled part of --help and of the README's reference (None title: the main options)."""

    name: str
    title: str | None = None
    description: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Setting:
    """One setting: its flag `--NAME`, file key `NAME`, variable `TICKWIRE_NAME` and dest.

    `help` may say `{default}`, replaced by the default as the README and --help show it.
    """

    name: str  # the long flag without its dashes: "max-connections"
    help: str
    section: Section
    default: Any = None
    type: Callable[[str], Any] | None = None  # text -> value; ArgumentTypeError/ValueError if bad
    kind: Kind = Kind.VALUE
    choices: Sequence[str] | None = None
    unit: str | None = None  # the flag's metavar: MS, SECONDS, N, URL...
    short: str | None = None  # "-v"
    dest: str | None = None  # the namespace attribute, if not `name` with underscores
    nargs: str | None = None  # "+" for a flag taking several values
    exclusive: str | None = None  # settings sharing this word cannot be used together
    hidden: bool = False  # internal (a supervised child's --worker): flag only, no help
    # The ServerConfig field this setting sets (None: read elsewhere, e.g. by the replay), and
    # how its resolved value becomes the field's (None: as it is).
    field: str | None = None
    to_field: Callable[[Any], Any] | None = None

    @property
    def attr(self) -> str:
        return self.dest or self.name.replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.replace("-", "_").upper()

    @property
    def secret(self) -> bool:
        return any(w in self.attr for w in _SECRET_WORDS)

    @property
    def switch(self) -> bool:
        return self.kind in (Kind.SWITCH, Kind.SWITCH_OFF)

    def initial(self) -> Any:
        """The value when no layer sets it: the default (a fresh list; a switch is off)."""
        if self.kind is Kind.LIST:
            return list(self.default or [])
        if self.switch and self.default is None:
            return self.kind is Kind.SWITCH_OFF  # `--no-color` not given: color stays True
        return self.default

    def help_text(self) -> str:
        return self.help.replace("{default}", format_default(self.default))


def format_default(value: Any) -> str:
    """A default as --help and the README show it: 60.0 as 60, 0.25 as 0.25."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --------------------------------------------------------------------------- values


def read_file(path: str, names: Sequence[str]) -> dict[str, Any]:
    """The file's table, every key one of `names` (or with underscores for dashes)."""
    data = _load_toml(path)
    known = set(names) | {n.replace("-", "_") for n in names}
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, list(names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(
                f"config file {path}: unknown key {key!r}{hint}; "
                f"keys are the long options of --help: {', '.join(names)}"
            )
    return data


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


def convert_file(s: Setting, raw: Any, where: str) -> Any:
    """A TOML value for setting `s`: a bool for a switch, a list (or one item) for a list."""
    if s.switch:
        if not isinstance(raw, bool):
            raise UserError(f"{where}: must be true or false, got {raw!r}")
        return raw if s.kind is Kind.SWITCH else not raw
    if s.kind is Kind.LIST or s.nargs is not None:
        items = raw if isinstance(raw, list) else [raw]
        if not items and s.secret:
            raise UserError(f"{where} is empty: set it, or leave the key out to go without one")
        return [_one(s, _scalar(x, where), where) for x in items]
    return _one(s, _scalar(raw, where), where)


def convert_env(s: Setting, text: str, where: str) -> Any:
    """A variable's text for setting `s`: 1/true/yes/on for a switch, commas for a list."""
    if s.switch:
        word = text.strip().lower()
        if word not in _TRUE | _FALSE:
            raise UserError(f"{where}: must be 1/true/yes/on or 0/false/no/off, got {text!r}")
        return (word in _TRUE) == (s.kind is Kind.SWITCH)
    if s.kind is Kind.LIST or s.nargs is not None:
        parts = [_one(s, part.strip(), where) for part in text.split(",") if part.strip()]
        if not parts and s.secret:  # an unset templated secret must not mean "no secret"
            raise UserError(f"{where} is empty: set it, or unset it to go without one")
        return parts
    return _one(s, text, where)


def _scalar(raw: Any, where: str) -> str:
    """TOML's typed value as the text a flag would carry (types check it as they check flags)."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str | int | float):
        return str(raw)
    raise UserError(f"{where}: expected a string or a number, got {type(raw).__name__}")


def _one(s: Setting, text: str, where: str) -> Any:
    try:
        value = s.type(text) if s.type is not None else text
    except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
        raise UserError(f"{where}: {exc or 'invalid value'}") from None
    if s.choices is not None and value not in s.choices:
        allowed = ", ".join(map(str, s.choices))
        raise UserError(f"{where}: must be one of {allowed}, got {text!r}")
    return value


def toml_value(value: Any) -> str:
    """`value` as TOML text: what --print-config prints and the README shows as a default."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
