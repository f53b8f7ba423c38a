"""Argument types shared by the CLI's commands: each bad value is argparse's one-line error."""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Callable

from tickwire.simulators.errors import UserError
from tickwire.simulators.numbers import non_negative_float as non_negative_float
from tickwire.simulators.numbers import positive_float as positive_float


def _int_in(lo: int, hi: int | None, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            bound = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"{what} must be {bound}, got {value}")
        return value

    return parse


port_number = _int_in(0, 65535, "port")
positive_int = _int_in(1, None, "value")
non_negative_int = _int_in(0, None, "value")
book_depth = _int_in(0, 1000, "book depth")


def duration_s(text: str) -> float:
    """A duration such as 90, 90s, 5m, 1h or 500ms, in seconds."""
    # here: the parser (decimal) loads only when a command is given a duration, not for `tail`
    from tickwire.simulators.durations import DurationError, parse_duration

    try:
        return parse_duration(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def server_token(text: str) -> str:
    """A server token: never empty or whitespace (an unset templated secret must not open the
    server to everyone)."""
    if not text.strip():
        from tickwire.feed.ws.http import TOKEN_REFUSED  # here: `tail` never loads ws.http

        raise argparse.ArgumentTypeError(f"got {text!r}: {TOKEN_REFUSED}")
    return text


def split_symbols(values: list[str] | str) -> list[str]:
    """Symbols as given on a command line, `AAPL MSFT` or `AAPL,MSFT` alike (or mixed)."""
    items = [values] if isinstance(values, str) else values
    return [s for item in items for s in item.replace(",", " ").split()]


def add_cafile_argument(ap: argparse.ArgumentParser) -> None:
    """`--cafile`, for every command that connects: trust a private CA for wss://."""
    ap.add_argument(
        "--cafile",
        metavar="CA.pem",
        help="trust the certificate authority in this PEM file for wss:// (a private or "
        "self-signed CA); default: the system's trust store",
    )


def ssl_context_from(cafile: str | None) -> ssl.SSLContext | None:
    """The client's TLS context for `--cafile`, or None for the system's trust store."""
    if not cafile:
        return None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UserError(f"cannot read --cafile {cafile!r}: {why}") from None
