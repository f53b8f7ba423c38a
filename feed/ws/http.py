"""The HTTP front of the listener, sans-IO: request bytes in, an accept or a refusal out.

Every accepted socket starts here. Before h11 parses the request, its head is measured here
(at most 16 KiB and 100 header lines, however many reads it took: more is HTTP 431), so a
request that arrives in one read cannot make h11 parse thousands of headers. An upgrade must be
HTTP/1.1 with one `Origin`, `Host` and `Sec-WebSocket-Key` each (else 400); a HEAD is answered
without a body, whatever its status. A WebSocket upgrade goes through its checks in this order:
path (404), Origin (403), token (401), then the caller's per-IP and connection caps; `Accept`
carries the 101 response and the bytes that followed the request in the same packet (a client
may send its first frame with the handshake: they belong to the WebSocket). Any other request
gets an answer from `routes`, or from `rest_route` (the venues' REST paths, by prefix, under the
upgrades' Origin rules), 426 at a WebSocket route (one line saying where to go), 404 by
default. Such an answer keeps the connection open for the next request (HTTP/1.1's default,
through h11's keep-alive: `Connection: close` is honoured, HTTP/1.0 closes, at most
`Policy.keep_alive_requests` per connection); pipelined requests are answered in order
(`next_request`), each head measured as the first. A refusal, a method other than GET or HEAD
(POST: /admin/ only), or a body closes. The Origin and token rules are `admission.py`'s. No
trio, sockets or clock (the shell's).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import h11
from wsproto.utilities import generate_accept_token

from tickwire.feed.ws.admission import TOKEN_REFUSED as TOKEN_REFUSED
from tickwire.feed.ws.admission import normalise_origin as normalise_origin
from tickwire.feed.ws.admission import own_hosts as own_hosts
from tickwire.feed.ws.admission import token_ok
from tickwire.feed.ws.responses import closing_response as _response
from tickwire.feed.ws.responses import keep_alive_response

MAX_HEADER_BYTES = 16 * 1024  # a browser's request with cookies fits easily; more is abuse
MAX_HEADER_LINES = 100  # Apache's LimitRequestFields; a browser sends about 20
_BLANK_LINE = re.compile(b"\n\r?\n")  # the end of a request head, as h11 finds it
_UNIQUE = ("origin", "host", "sec-websocket-key")  # a second one could hide the first
KEEP_ALIVE_REQUESTS = 1000  # nginx's keepalive_requests default

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What a plain-HTTP route sees."""

    method: str
    path: str  # without the query
    query: str
    headers: Mapping[str, str]  # lower-cased names; the last value wins
    peer: str = ""  # the client's address (the venues' REST rate limits are per address)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


Route = Callable[[HttpRequest], HttpResponse]


@dataclass(frozen=True, slots=True)
class Accept:
    """Upgrade: write `response`, then speak WebSocket, starting with `trailing` bytes."""

    response: bytes
    route: str  # the WebSocket route's key, e.g. "/v1"
    subprotocol: str | None
    trailing: bytes
    query: str
    path: str = ""  # as requested (a venue route's key is its path)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-cased names
    peer: str = ""  # the client's address, filled in by the shell


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer with `response` and close, unless `keep_alive`: then read the connection's next
    request (`HttpFront.next_request` first). `reason` is for the log (never holds a token)."""

    response: bytes
    status: int
    reason: str
    upgrade: bool  # a refused WebSocket upgrade (counted and summarised), not a plain request
    keep_alive: bool = False  # a plain answer after which the connection serves another


@dataclass(frozen=True, slots=True)
class Policy:
    """Who may upgrade: the server's flags, decided once."""

    ws_routes: Mapping[str, tuple[str, ...]]  # path -> subprotocols it speaks, preferred first
    tokens: tuple[str, ...] = ()
    allow_origins: tuple[str, ...] = ()  # normalised "scheme://host[:port]", or "*"
    own_hosts: frozenset[str] = frozenset()  # Origin hosts that are this server
    wildcard_bind: bool = False  # bound to 0.0.0.0/::: the Host header names the server
    routes: Mapping[str, Route] = field(default_factory=dict)  # plain HTTP: path -> handler
    not_found: bytes = b"tickwire serves WebSocket at /v1\n"
    # Paths routed by prefix (the exchange dialects): is this path one of them? Their route key
    # is the path itself; `self_auth` names the prefixes whose protocol checks tokens (Alpaca's
    # auth message), so the HTTP front does not.
    prefix_route: Callable[[str], bool] = lambda path: False
    self_auth: tuple[str, ...] = ()
    # Plain-HTTP paths routed by prefix (the venues' REST APIs): the route of a path, or None.
    # Their Origin rules are the upgrades'; their tokens are the route's own business.
    rest_route: Callable[[str], Route | None] = lambda path: None
    # Plain requests one connection may send (nginx's keepalive_requests): the last answer
    # says `Connection: close`, so a client's memory per connection stays bounded.
    keep_alive_requests: int = KEEP_ALIVE_REQUESTS


class HttpFront:
    """One socket's request, parsed; `receive_data` returns None until it can decide."""

    __slots__ = ("_h11", "_head", "_peer", "_policy", "answered")

    def __init__(self, policy: Policy, peer: str = "") -> None:
        self._policy = policy
        self._peer = peer
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._head: bytearray | None = bytearray()  # the head so far; None once measured
        self.answered = 0  # plain requests answered on this connection

    def receive_data(self, data: bytes) -> Accept | Refuse | None:
        """Feed bytes read from the socket (b"" at EOF); None: read more."""
        if not data:  # nobody is left to answer
            return _refuse(0, "closed before sending a whole request", "", False)
        if self._head is not None:
            too_big = self._measure(data)
            if too_big is not None:
                return _refuse(431, too_big, f"request header fields too large: {too_big}\n", False)
        self._h11.receive_data(data)
        return self._next_event()

    def next_request(self) -> Accept | Refuse | None:
        """After a `keep_alive` answer: the next request if it already arrived with the last
        one (pipelined), measured as if it came now; None: read more (`receive_data`)."""
        self._head = bytearray()
        buffered, _ = self._h11.trailing_data
        if not buffered:
            return None
        too_big = self._measure(bytes(buffered))
        if too_big is not None:
            return _refuse(431, too_big, f"request header fields too large: {too_big}\n", False)
        return self._next_event()

    def _next_event(self) -> Accept | Refuse | None:
        try:
            event = self._h11.next_event()
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            return _refuse(status, f"bad request: {exc}", f"bad HTTP request: {exc}\n", False)
        if event is h11.NEED_DATA:
            return None
        if not isinstance(event, h11.Request):  # pragma: no cover - h11 yields a request first
            return _refuse(400, "no request", "bad HTTP request\n", False)
        return self._decide(event)

    def _measure(self, data: bytes) -> str | None:
        """Keep the head until its blank line; why it is too large, or None. The bytes are
        scanned once (from just before the new ones), never parsed."""
        head = self._head
        assert head is not None
        start = max(0, len(head) - 2)
        head += data[: MAX_HEADER_BYTES + 4 - len(head)]
        end = _BLANK_LINE.search(head, start)
        size = len(head) if end is None else end.end()
        if size > MAX_HEADER_BYTES:
            return f"more than {MAX_HEADER_BYTES} bytes of request line and headers"
        if head.count(b"\n", 0, size) - 2 > MAX_HEADER_LINES:  # the request line, the blank
            return f"more than {MAX_HEADER_LINES} header lines"
        if end is not None:
            self._head = None
        return None

    def _decide(self, req: h11.Request) -> Accept | Refuse:
        decision = self._decide_request(req)
        if req.method == b"HEAD" and isinstance(decision, Refuse):
            head = decision.response  # the same headers, no body (RFC 9110 9.3.2)
            cut = head.find(b"\r\n\r\n")
            if cut >= 0:
                decision = replace(decision, response=head[: cut + 4])
        return decision

    def _decide_request(self, req: h11.Request) -> Accept | Refuse:
        url = urlsplit(req.target.decode("latin-1"))
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in req.headers}
        if headers.get("upgrade", "").lower() != "websocket":
            return self._plain(req, url.path, url.query, headers)
        path, policy = url.path, self._policy
        key = path if path == "/" else path.rstrip("/")
        protocols = policy.ws_routes.get(key)
        if protocols is None and policy.prefix_route(path):
            key, protocols = path, ()
        if protocols is None:
            return _refuse(404, f"path {path} is not a WebSocket route", policy.not_found.decode())
        refused = self._check_upgrade(req, key, url.query, headers)
        if refused is not None:
            return refused
        key_b64 = headers["sec-websocket-key"]
        offered = [s.strip() for s in headers.get("sec-websocket-protocol", "").split(",")]
        chosen = next((s for s in offered if s in protocols), None)
        resp_headers = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", generate_accept_token(key_b64.encode())),
        ]
        if chosen is not None:
            resp_headers.append((b"Sec-WebSocket-Protocol", chosen.encode()))
        out = self._h11.send(h11.InformationalResponse(status_code=101, headers=resp_headers))
        trailing, _ = self._h11.trailing_data
        return Accept(out or b"", key, chosen, bytes(trailing), url.query, path, headers)

    def _plain(self, req: h11.Request, path: str, query: str, headers: dict[str, str]) -> Refuse:
        """A request without an upgrade: a page from the route table (or a REST path), answered
        and closed, or a refusal."""
        policy = self._policy
        route = policy.routes.get(path)
        if route is None and (route := policy.rest_route(path)) is not None:
            origin = headers.get("origin")
            if origin is not None and not self._origin_allowed(origin, headers.get("host", "")):
                body = f"origin {origin[:100]} may not read (see the server's --allow-origin)\n"
                return _refuse(403, f"origin {origin[:100]!r} not allowed", body, False)
        posted = req.method == b"POST" and path.startswith("/admin/")  # the route checks more
        if req.method != b"GET" and req.method != b"HEAD" and not posted:
            text = _response(405, [("Allow", "GET, HEAD")], b"method not allowed\n")
            return Refuse(text, 405, f"method {req.method.decode()}", False)
        if route is None and self._ws_route(path):  # a browser or curl on the WebSocket URL
            return self._answer(req, _wrong_door(path), f"no upgrade to {path}")
        if route is None:
            return self._answer(req, HttpResponse(404, (), policy.not_found), f"no page at {path}")
        return self._answer(
            req,
            route(HttpRequest(req.method.decode(), path, query, headers, self._peer)),
            f"{req.method.decode()} {path}",
        )

    def _ws_route(self, path: str) -> bool:
        """Whether `path` is one of the WebSocket routes (`/v1`; not the dialects' prefixes,
        whose sessions still judge the rest of the path)."""
        return (path if path == "/" else path.rstrip("/")) in self._policy.ws_routes

    def _answer(self, req: h11.Request, resp: HttpResponse, reason: str) -> Refuse:
        """`resp` to a GET or HEAD, written by h11 so that the connection may serve the next
        request: kept alive unless the client asked to close, spoke HTTP/1.0 without
        keep-alive, sent a body, or reached `keep_alive_requests`."""
        conn, head = self._h11, req.method == b"HEAD"  # HEAD: the same headers as GET, no body
        try:
            ended = isinstance(conn.next_event(), h11.EndOfMessage)  # no body to read first
        except h11.RemoteProtocolError:
            ended = False
        if not ended:  # a body we will not read: answer and close, as before
            text = _response(resp.status, list(resp.headers), resp.body, head=head)
            return Refuse(text, resp.status, reason, False)
        self.answered += 1
        last = self.answered >= self._policy.keep_alive_requests
        out = keep_alive_response(conn, resp.status, list(resp.headers), resp.body, head, last)
        keep = conn.our_state is h11.DONE and conn.their_state is h11.DONE
        if keep:
            conn.start_next_cycle()
        return Refuse(out, resp.status, reason, False, keep_alive=keep)

    def _check_upgrade(
        self, req: h11.Request, key: str, query: str, headers: dict[str, str]
    ) -> Refuse | None:
        """Why an upgrade to a known route is refused (RFC 6455 4.1/4.2.1, Origin, token), in
        the order a client most needs to hear it; None when it may go ahead."""
        policy = self._policy
        if req.http_version != b"1.1":  # RFC 6455 4.1: "HTTP/1.1 or higher"
            version = req.http_version.decode()
            return _refuse(400, f"upgrade over HTTP/{version}", "a WebSocket upgrade is HTTP/1.1\n")
        repeated = [n for n in _UNIQUE if _count(req.headers, n) > 1]
        if repeated:
            return _refuse(
                400, f"repeated {repeated[0]} header", f"more than one {repeated[0]} header\n"
            )
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, headers.get("host", "")):
            return _refuse(
                403,
                f"origin {origin[:100]!r} not allowed",
                f"origin {origin[:100]} may not connect (see the server's --allow-origin)\n",
            )
        if (
            policy.tokens
            and not key.startswith(policy.self_auth)
            and not token_ok(policy.tokens, headers, query)
        ):
            return Refuse(
                _response(
                    401,
                    [("WWW-Authenticate", 'Bearer realm="tickwire"')],
                    b"missing or invalid token: send 'Authorization: Bearer TOKEN' or ?token=\n",
                ),
                401,
                "missing or invalid token",
                True,
            )
        if req.method != b"GET" or "upgrade" not in headers.get("connection", "").lower():
            return _refuse(400, "not a WebSocket upgrade", "a WebSocket upgrade is a GET\n")
        if headers.get("sec-websocket-version") != "13":
            return Refuse(
                _response(426, [("Sec-WebSocket-Version", "13")], b"WebSocket version 13 only\n"),
                426,
                "WebSocket version not 13",
                True,
            )
        if not _valid_key(headers.get("sec-websocket-key", "")):
            return _refuse(400, "bad Sec-WebSocket-Key", "missing or bad Sec-WebSocket-Key\n")
        return None

    def _origin_allowed(self, origin: str, host_header: str) -> bool:
        policy = self._policy
        if "*" in policy.allow_origins:
            return True
        try:
            norm = normalise_origin(origin)
        except ValueError:
            return False
        if norm in policy.allow_origins:
            return True
        hostname = (urlsplit(norm).hostname or "").lower()
        if hostname in policy.own_hosts:
            return True
        if policy.wildcard_bind:  # reached by whatever name the browser used: same host only
            return hostname == (urlsplit("//" + host_header).hostname or "").lower()
        return False


def _wrong_door(path: str) -> HttpResponse:
    """426 for a plain request to a WebSocket route: what it is and where to go instead."""
    body = (
        f"{path} is tickwire's WebSocket endpoint: connect with a WebSocket client "
        f"(e.g. websocat ws://HOST:PORT{path}); the web page is at /, the protocol in the "
        "README's Protocol reference\n"
    )
    return HttpResponse(426, (("Upgrade", "websocket"), ("Connection", "Upgrade")), body.encode())


def refusal(status: int, reason: str, body: str) -> Refuse:
    """A refused upgrade decided by the caller (per-IP limit...)."""
    return _refuse(status, reason, body)


def _refuse(status: int, reason: str, body: str, upgrade: bool = True) -> Refuse:
    response = _response(status, [], body.encode()) if status else b""
    return Refuse(response, status, reason, upgrade)


def _count(headers: Iterable[tuple[bytes, bytes]], name: str) -> int:
    want = name.encode()
    return sum(1 for k, _ in headers if k == want)


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except ValueError:
        return False
