"""Opening one client connection: TCP, TLS, the WebSocket upgrade and `welcome`, within a deadline.

Every way the opening can fail becomes one `ConnectError` (`AuthError` for HTTP 401) whose message
says what is wrong and what to do next. We open the TCP and TLS stream ourselves and hand it to
trio-websocket's public `wrap_client_stream`, for two reasons found the hard way: trio-websocket's
reader task swallows a TLS failure (a bad certificate left the client waiting forever), and it
raises a refused upgrade (`ConnectionRejected`) from that reader task, so the rejection surfaces as
an exception group of the nursery that runs the connection, which is where we catch it.
Imports trio and trio-websocket; never the rest of the client.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    wrap_client_stream,
)

from tickwire.feed.client.events import AuthError, ConnectError
from tickwire.feed.urls import UrlError, check_ws_url, redact

HANDSHAKE_TIMEOUT_S = 10.0
"""TCP, TLS, upgrade and welcome must all be done within this (connect's `handshake_timeout_s`)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL points: `ws://HOST:PORT/PATH?QUERY`, split once."""

    url: str
    host: str
    port: int
    resource: str
    tls: bool

    @property
    def shown(self) -> str:
        """The URL as messages print it: credentials masked."""
        return redact(self.url)

    @property
    def feed_url(self) -> str:
        """The URL of the tickwire feed on the same server (path /v1)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'wss' if self.tls else 'ws'}://{host}:{self.port}/v1"


def parse_url(url: str) -> Target:
    """Split a ws:// or wss:// URL; anything else is a ConnectError saying what is expected."""
    try:
        parts = check_ws_url(url)
    except UrlError as exc:
        raise ConnectError(str(exc)) from None
    port, host = parts.port, parts.hostname or ""
    tls = parts.scheme == "wss"
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, host, port or (443 if tls else 80), resource, tls)


@asynccontextmanager
async def open_connection(
    target: Target,
    *,
    token: str | None,
    subprotocol: str,
    ssl_context: ssl.SSLContext | None,
    timeout_s: float,
    max_message_size: int,
) -> AsyncIterator[tuple[WebSocketConnection, dict[str, Any]]]:
    """Yield an open connection and its `welcome`; the connection's tasks live inside the block.

    Raises ConnectError (AuthError for 401) for every failure before `welcome`, within `timeout_s`.
    """
    deadline = trio.current_time() + timeout_s
    with trio.move_on_at(deadline) as dialing:
        stream = await _dial(target, ssl_context)
    if dialing.cancelled_caught:
        raise ConnectError(_timeout_text(target, timeout_s))
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    try:
        async with trio.open_nursery() as nursery:
            first: str | bytes | None = None
            with trio.move_on_at(deadline):
                ws = await wrap_client_stream(
                    nursery,
                    stream,
                    target.host,
                    target.resource,
                    subprotocols=[subprotocol],
                    extra_headers=headers,
                    max_message_size=max_message_size,
                )
                try:
                    first = await ws.get_message()
                except ConnectionClosed as exc:
                    raise ConnectError(_closed_text(target, exc)) from None
            if first is None:
                raise ConnectError(_timeout_text(target, timeout_s))
            welcome = _welcome(target, first)
            try:
                yield ws, welcome
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise _translate(group, target, token) from None
    finally:
        await trio.aclose_forcefully(stream)


async def _dial(
    target: Target, ssl_context: ssl.SSLContext | None
) -> trio.SocketStream | trio.SSLStream[trio.SocketStream]:
    try:
        tcp = await trio.open_tcp_stream(target.host, target.port)
    except OSError as exc:
        raise ConnectError(
            f"cannot connect to {target.shown}: {_os_reason(exc)} (is `tickwire serve` running?)"
        ) from None
    if not target.tls:
        return tcp
    context = ssl_context or ssl.create_default_context()
    stream = trio.SSLStream(tcp, context, server_hostname=target.host, https_compatible=True)
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as exc:
        await trio.aclose_forcefully(tcp)
        raise ConnectError(_tls_text(target, exc.__cause__)) from None
    except BaseException:
        await trio.aclose_forcefully(tcp)
        raise
    return stream


def _tls_text(target: Target, cause: BaseException | None) -> str:
    if isinstance(cause, ssl.SSLCertVerificationError):
        why = cause.verify_message or cause.reason or "untrusted"
        return (
            f"certificate verify failed for {target.shown}: {why}; if the server's certificate "
            "comes from a private CA, pass --cafile CA.pem (ssl_context= in the library)"
        )
    reason = getattr(cause, "reason", None) or (str(cause) if cause else "connection closed")
    reason = str(reason).lower().replace("_", " ")
    return (
        f"TLS handshake with {target.host}:{target.port} failed ({reason}); "
        f"if the server does not use TLS, use ws:// instead of wss://"
    )


def _timeout_text(target: Target, timeout_s: float) -> str:
    hint = (
        "if the server does not use TLS, use ws:// instead of wss://"
        if target.tls
        else "if the server uses TLS (--certfile), use wss:// instead of ws://"
    )
    return f"no WebSocket handshake from {target.host}:{target.port} within {timeout_s:g} s; {hint}"


def _closed_text(target: Target, exc: ConnectionClosed) -> str:
    reason = exc.reason
    code = getattr(reason, "code", None)
    text = getattr(reason, "reason", None)
    if code == 1013:
        return f"{target.shown} is full ({text or 'try again later'}); retry later"
    return (
        f"{target.shown} closed the connection during the handshake ({code} {text or ''})".strip()
    )


def _welcome(target: Target, first: str | bytes) -> dict[str, Any]:
    try:
        welcome = orjson.loads(first)
    except orjson.JSONDecodeError:
        welcome = None
    if not isinstance(welcome, dict) or welcome.get("type") != "welcome":
        raise ConnectError(
            f"{target.shown} is not a tickwire feed (its first message is not a welcome); "
            f"the feed is at {target.feed_url}"
        )
    return welcome


def _translate(group: BaseExceptionGroup[BaseException], target: Target, token: str | None) -> Any:
    """The one exception to raise for a group from the connection's nursery."""
    leaves = list(_leaves(group))
    for exc in leaves:
        if isinstance(exc, ConnectionRejected):
            return _rejected(exc, target, token)
    real = [e for e in leaves if not isinstance(e, trio.Cancelled)]
    if len(leaves) == 1:
        return leaves[0]
    if len(real) == 1:
        return real[0]
    return group


def _rejected(exc: ConnectionRejected, target: Target, token: str | None) -> ConnectError:
    status = exc.status_code
    where = f"{target.host}:{target.port}"
    if status == 401:
        if token is None:
            return AuthError(f"the server wants a token: pass --token TOKEN (HTTP 401, {where})")
        return AuthError(f"the server refused the token: check --token (HTTP 401, {where})")
    if status == 404:
        path = target.resource.split("?", 1)[0]
        if path.rstrip("/") == "/v1":  # the feed's own path: not a tickwire server at all
            return ConnectError(
                f"no tickwire feed at {path} on {where} (HTTP 404): is a `tickwire serve`"
                " listening on that port?"
            )
        return ConnectError(
            f"no tickwire feed at {path} on {where} (HTTP 404); the feed is at {target.feed_url}"
        )
    if status < 400:  # a page where the upgrade should be: another program's server
        return ConnectError(
            f"{target.shown} answered HTTP {status}, not a WebSocket upgrade: is a"
            " `tickwire serve` listening on that port?"
        )
    body = (exc.body or b"").decode(errors="replace").strip().splitlines()
    detail = f": {body[0]}" if body and not body[0].startswith("<") else ""  # no HTML
    return ConnectError(f"{target.shown} refused the connection: HTTP {status}{detail}")


def _leaves(exc: BaseException) -> Any:
    if isinstance(exc, BaseExceptionGroup):
        for e in exc.exceptions:
            yield from _leaves(e)
    else:
        yield exc


def _os_reason(exc: OSError) -> str:
    if exc.strerror:
        return exc.strerror.lower()
    # trio's "all attempts to connect to HOST:PORT failed" hides the errno in its cause
    cause = exc.__cause__
    while isinstance(cause, BaseExceptionGroup) and cause.exceptions:
        cause = cause.exceptions[0]
    if isinstance(cause, OSError) and cause.errno:
        return os.strerror(cause.errno).lower()
    return str(exc) or type(exc).__name__


def close_text(ws: WebSocketConnection) -> str:
    """How a connection ended, in words, for the next `Status` event."""
    reason = ws.closed
    if reason is None:
        return "connection lost"
    return f"closed by server: {reason.code}{f' {reason.reason}' if reason.reason else ''}"
