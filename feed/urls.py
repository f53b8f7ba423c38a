"""URLs as we show them: every URL the project prints (ready lines, logs, `/readyz`,
`--print-config`, error messages) goes through `redact` first, so a password in `--bus
redis://:PASSWORD@host` or a `?token=` in a URL is never on a screen, in a log or on an
unauthenticated HTTP path. `split_url` is the one check of a URL's scheme, host and port
(the feed's ws:// URLs, the bus's redis:// ones), and `check_ws_url` the feed's own. Pure text;
imports nothing of ours.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

MASK = "***"
# scheme://USERINFO@ : the userinfo runs to the authority's last '@' (an unencoded '@' in a
# password still ends up masked), and never past '/', '?', '#', whitespace or a quote.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#\s'\"<>]*)@")
_SECRET_PARAM = re.compile(r"(?i)([?&](?:password|passwd|pass|token|secret)=)([^&#\s'\"<>]*)")


def redact(text: str) -> str:
    """`text` (a URL, or a line holding URLs) with URL credentials masked: the password of
    `user:password@` (`redis://:***@host`, `redis://user:***@host`), a userinfo without a colon
    as a whole (some clients read it as the password), and secret query parameters."""
    return _SECRET_PARAM.sub(_mask_param, _USERINFO.sub(_mask_userinfo, text))


def _mask_userinfo(m: re.Match[str]) -> str:
    scheme, userinfo = m.group(1), m.group(2)
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{user}:{MASK}@" if colon else f"{scheme}{MASK}@"


def _mask_param(m: re.Match[str]) -> str:
    return f"{m.group(1)}{MASK}" if m.group(2) else m.group(0)


WS_FORMS = "ws://HOST:PORT/v1 or wss://HOST:PORT/v1"


class UrlError(ValueError):
    """A URL we cannot use; `part` says which: "url" (not one), "scheme", "host" or "port".
    `parts` is the URL split, where it could be."""

    def __init__(self, part: str, message: str, parts: SplitResult | None = None) -> None:
        super().__init__(message)
        self.part, self.parts = part, parts


def split_url(url: str, schemes: tuple[str, ...], *, hostless: tuple[str, ...] = ()) -> SplitResult:
    """`url` split, once its scheme is one of `schemes`, it has a host (unless its scheme is in
    `hostless`) and its port, if any, is a number from 0 to 65535; else UrlError."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL" for ws://[::1
        raise UrlError("url", str(exc)) from None
    if parts.scheme not in schemes:
        raise UrlError("scheme", f"the scheme must be one of {', '.join(schemes)}", parts)
    if parts.scheme not in hostless and not parts.hostname:
        raise UrlError("host", "no host", parts)
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:  # not a number, or beyond 65535
        raise UrlError("port", "the port must be a number from 0 to 65535", parts) from None
    return parts


def check_ws_url(url: str) -> SplitResult:
    """`url` split if it is a feed URL (ws:// or wss://, a host, a valid port); else UrlError
    with the one-line message every client of ours shows, the URL redacted."""
    try:
        return split_url(url, ("ws", "wss"))
    except UrlError as exc:
        why = str(exc) if exc.part == "port" else f"expected {WS_FORMS}"
        raise UrlError(exc.part, f"bad URL {redact(url)!r}: {why}", exc.parts) from None
