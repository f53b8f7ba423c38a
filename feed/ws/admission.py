"""Who may come in, sans-IO: the Origin hosts that are this server, origins as browsers send
them, and the token check (constant time, never logged). The HTTP front (`http.py`) applies
them; no trio, sockets or clock.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def own_hosts(bind_host: str) -> tuple[frozenset[str], bool]:
    """The Origin hosts that are this server when bound to `bind_host`, and whether it is a
    wildcard bind (then a browser's Host header tells which name it used to reach us)."""
    host = bind_host.strip("[]").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        names = {host}
        if host == "localhost":
            names |= _LOOPBACK_NAMES
        return frozenset(names), False
    if ip.is_unspecified:
        return frozenset(_LOOPBACK_NAMES), True
    if ip.is_loopback:
        return frozenset(_LOOPBACK_NAMES | {host}), False
    return frozenset({host}), False


def normalise_origin(origin: str) -> str:
    """`scheme://host[:port]` in lower case, as browsers send it; '*' stays '*'."""
    origin = origin.strip()
    if origin == "*":
        return origin
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"an origin is scheme://host[:port] (http or https), got {origin!r}")
    port = f":{parts.port}" if parts.port else ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{port}".lower()


TOKEN_REFUSED = (
    "an empty or whitespace token would let anyone in: give the token clients must send, "
    "or leave the token out to serve without one"
)


def token_ok(tokens: tuple[str, ...], headers: Mapping[str, str], query: str) -> bool:
    sent: str | None = None
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        sent = value.strip()
    else:
        values = parse_qs(query).get("token")
        sent = values[0] if values else None
    if not sent:  # no token, or an empty one: never a match, whatever the server holds
        return False
    given = sent.encode()
    ok = False
    for token in tokens:  # every token compared, in constant time each
        ok |= hmac.compare_digest(given, token.encode())
    return ok
