"""`--bus URL` checked before anything connects: one line for every malformed URL.

`redis://[USER:PASSWORD@]HOST[:PORT][/DB]`, `rediss://...` (TLS) or `unix:///PATH.sock[?db=N]`,
as coredis reads them. coredis itself raises bare ValueErrors (or asserts) for a bad port, an
unclosed IPv6 bracket or no host, and ignores a database that is not a number: this module turns
each into a UserError saying what is allowed. Pure string work: imports neither coredis nor trio.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from tickwire.feed.urls import UrlError, redact, split_url
from tickwire.simulators.errors import UserError

FORMS = "redis://HOST:PORT/DB or unix:///PATH.sock (rediss:// for TLS)"
_SCHEMES = ("redis", "rediss", "unix")


def check_bus_url(url: str) -> str:
    """`url` itself if coredis can use it as the bus; else UserError naming the bad part."""
    shown = redact(url)  # an error line never prints the password
    where = f"--bus {shown}"
    try:
        parts = split_url(url, _SCHEMES, hostless=("unix",))
        port = parts.port
    except UrlError as exc:
        if exc.part == "url":  # e.g. "Invalid IPv6 URL" for redis://[::1
            raise UserError(f"{where}: not a URL ({exc}); use {FORMS}") from None
        if exc.part == "scheme":
            raise UserError(f"--bus must be {FORMS}, got {shown!r}") from None
        if exc.part == "host":
            raise UserError(
                f"{where}: no host; use {FORMS}, e.g. redis://127.0.0.1:6379/0"
            ) from None
        assert exc.parts is not None  # a bad port comes with the URL split
        parts, port = exc.parts, -1  # not a number, or beyond 65535
    db_arg = parse_qs(parts.query).get("db")
    if parts.scheme == "unix":
        if not parts.path:
            raise UserError(f"{where}: no socket path; use unix:///PATH.sock")
        _db(where, db_arg[0] if db_arg else "")
        return url
    if port is not None and not 1 <= port <= 65535:
        text = parts.netloc.rpartition(":")[2]
        raise UserError(f"{where}: the port must be from 1 to 65535, got {text!r}")
    _db(where, db_arg[0] if db_arg else parts.path.strip("/"))
    return url


def _db(where: str, text: str) -> None:
    if text and not (text.isascii() and text.isdigit()):
        raise UserError(
            f"{where}: the database must be a number (0, 1, ...: /0 or ?db=0), got {text!r}"
        )


__all__ = ["FORMS", "check_bus_url"]
