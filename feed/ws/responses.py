"""The HTTP responses the front writes: a closing one built by hand (for refusals, where h11 may
already have given up on the peer) and a kept-alive one written through h11's public API, so
that h11 decides whether the connection may serve another request. Sans-IO: no trio, no socket.
"""

from __future__ import annotations

from http import HTTPStatus

import h11


def closing_response(
    status: int, headers: list[tuple[str, str]], body: bytes, *, head: bool = False
) -> bytes:
    """A complete HTTP/1.1 response that closes the connection (built by hand: h11 will not
    write one once the peer broke the protocol, and these are fixed, valid headers). A HEAD
    answer keeps GET's Content-Length and drops the body; a 304 has neither."""
    lines = [f"HTTP/1.1 {status} {phrase(status)}"]
    lines += [f"{k}: {v}" for k, v in framed(status, headers, len(body))]
    lines += ["Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + (b"" if head or status == 304 else body)


def framed(status: int, headers: list[tuple[str, str]], length: int) -> list[tuple[str, str]]:
    """`headers` with a Content-Type and a Content-Length where missing (a 304 has neither)."""
    names = {k.lower() for k, _ in headers}
    out = []
    if "content-type" not in names and status != 304:
        out.append(("Content-Type", "text/plain; charset=utf-8"))
    out += headers
    if "content-length" not in names and status != 304:
        out.append(("Content-Length", str(length)))
    return out


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def keep_alive_response(
    conn: h11.Connection,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    head: bool = False,
    last: bool = False,
) -> bytes:
    """The whole response to the request `conn` just parsed (a HEAD's without its body, with
    GET's Content-Length, as h11 frames it); `last` adds `Connection: close`. h11 adds that
    itself when the client asked to close or spoke HTTP/1.0 without keep-alive (then
    `conn.our_state` is MUST_CLOSE, not DONE)."""
    headers = framed(status, headers, len(body))
    if last:
        headers.append(("Connection", "close"))
    reason = phrase(status).encode()
    out = conn.send(h11.Response(status_code=status, headers=headers, reason=reason)) or b""
    if body and not head and status not in (204, 304):  # h11 would refuse (and fail) them
        out += conn.send(h11.Data(data=body)) or b""
    return out + (conn.send(h11.EndOfMessage()) or b"")
