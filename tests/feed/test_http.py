"""The HTTP front, sans-IO: request bytes in, an accept or a refusal out (no sockets, no trio)."""

from __future__ import annotations

import base64

import pytest
from wsproto.utilities import generate_accept_token

from tickwire.feed.ws import http as _http

KEY = base64.b64encode(b"0123456789abcdef").decode()


def policy(**kw) -> _http.Policy:
    hosts, wildcard = _http.own_hosts(kw.pop("bind", "127.0.0.1"))
    kw.setdefault("ws_routes", {"/v1": ("tickwire.v1", "tickwire.v1.binary")})
    return _http.Policy(own_hosts=hosts, wildcard_bind=wildcard, **kw)


def upgrade(path: str = "/v1", *extra: str, host: str = "127.0.0.1:8765") -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def decide(data: bytes, pol: _http.Policy | None = None) -> _http.Accept | _http.Refuse:
    front = _http.HttpFront(pol or policy())
    out = None
    for i in range(len(data)):  # byte by byte: the decision waits for the whole request
        out = front.receive_data(data[i : i + 1])
        if out is not None:
            assert i == len(data) - 1 or isinstance(out, _http.Refuse)
            return out
    raise AssertionError("no decision")


def refused(data: bytes, status: int, pol: _http.Policy | None = None) -> _http.Refuse:
    out = decide(data, pol)
    assert isinstance(out, _http.Refuse), out
    assert out.status == status, out
    assert out.response.startswith(b"HTTP/1.1 %d " % status)
    assert (b"Connection: close" in out.response) is not out.keep_alive  # plain GETs stay open
    head, body = out.response.split(b"\r\n\r\n", 1)
    assert b"Content-Length: %d" % len(body) in head
    return out


def test_accept_writes_the_101_with_the_accept_token_and_the_subprotocol():
    out = decide(upgrade("/v1", "Sec-WebSocket-Protocol: other, tickwire.v1.binary"))
    assert isinstance(out, _http.Accept)
    assert out.response.startswith(b"HTTP/1.1 101 ")
    assert b"Sec-WebSocket-Accept: " + generate_accept_token(KEY.encode()) in out.response
    assert out.subprotocol == "tickwire.v1.binary" and out.route == "/v1"
    assert out.trailing == b""


@pytest.mark.parametrize("path", ["/v1/", "/v1?x=1", "/v1/?token=t"])
def test_trailing_slash_and_query_are_the_same_route(path):
    out = decide(upgrade(path))
    assert isinstance(out, _http.Accept) and out.route == "/v1" and out.subprotocol is None


def test_a_frame_in_the_same_packet_as_the_handshake_is_kept():
    frame = b"\x81\x85abcd" + bytes(b ^ k for b, k in zip(b"hello", b"abcda", strict=True))
    out = _http.HttpFront(policy()).receive_data(upgrade() + frame)
    assert isinstance(out, _http.Accept) and out.trailing == frame


def test_plain_get_is_404_with_a_hint():
    out = refused(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404)
    assert out.response.endswith(b"tickwire serves WebSocket at /v1\n") and not out.upgrade


def test_routes_answer_plain_requests():
    page = _http.HttpResponse(200, (("Content-Type", "text/html"),), b"<p>hi</p>")
    out = refused(
        b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n", 200, policy(routes={"/page": lambda r: page})
    )
    assert out.response.endswith(b"<p>hi</p>") and b"text/html" in out.response


def test_upgrade_to_another_path_is_404():
    assert refused(upgrade("/v2"), 404).upgrade


def test_token_is_checked_in_header_or_query():
    pol = policy(tokens=("s3cret", "other"))
    out = refused(upgrade(), 401, pol)
    assert b'WWW-Authenticate: Bearer realm="tickwire"' in out.response
    assert b"s3cret" not in out.response and "s3cret" not in out.reason
    refused(upgrade("/v1", "Authorization: Bearer wrong"), 401, pol)
    refused(upgrade("/v1?token=s3cre"), 401, pol)
    assert isinstance(decide(upgrade("/v1", "Authorization: Bearer other"), pol), _http.Accept)
    assert isinstance(decide(upgrade("/v1?token=s3cret"), pol), _http.Accept)


@pytest.mark.parametrize(
    ("bind", "origin", "host", "ok"),
    [
        ("127.0.0.1", "http://localhost:3000", "127.0.0.1:8765", True),
        ("127.0.0.1", "http://127.0.0.1:8765", "127.0.0.1:8765", True),
        ("127.0.0.1", "https://evil.example", "127.0.0.1:8765", False),
        ("127.0.0.1", "null", "127.0.0.1:8765", False),
        ("0.0.0.0", "http://feed.example:8765", "feed.example:8765", True),
        ("0.0.0.0", "http://evil.example", "feed.example:8765", False),
        ("192.0.2.7", "http://192.0.2.7", "192.0.2.7:8765", True),
        ("192.0.2.7", "http://localhost", "192.0.2.7:8765", False),
    ],
)
def test_origin_same_host_by_default(bind, origin, host, ok):
    data = upgrade("/v1", f"Origin: {origin}", host=host)
    if ok:
        assert isinstance(decide(data, policy(bind=bind)), _http.Accept)
    else:
        out = refused(data, 403, policy(bind=bind))
        assert b"--allow-origin" in out.response


def test_allow_origin_widens_the_policy():
    pol = policy(allow_origins=(_http.normalise_origin("https://App.Example/"),))
    assert isinstance(decide(upgrade("/v1", "Origin: https://app.example"), pol), _http.Accept)
    refused(upgrade("/v1", "Origin: http://app.example"), 403, pol)  # scheme matters
    anyone = policy(allow_origins=("*",))
    assert isinstance(decide(upgrade("/v1", "Origin: https://x.example"), anyone), _http.Accept)


def test_checks_run_path_then_origin_then_token():
    pol = policy(tokens=("t",))
    refused(upgrade("/nope", "Origin: https://evil.example"), 404, pol)
    refused(upgrade("/v1", "Origin: https://evil.example"), 403, pol)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"garbage\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 needs a Host
        (b"GET /v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 426),
        (upgrade().replace(KEY.encode(), b"short"), 400),
        (upgrade().replace(b"GET", b"POST"), 400),
    ],
)
def test_bad_requests(data, status):
    refused(data, status)


def test_oversized_headers_are_431():
    data = b"GET /v1 HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (_http.MAX_HEADER_BYTES + 1)
    out = _http.HttpFront(policy()).receive_data(data)
    assert isinstance(out, _http.Refuse) and out.status == 431


def test_eof_before_a_request_is_a_silent_close():
    front = _http.HttpFront(policy())
    assert front.receive_data(b"GET / HT") is None
    out = front.receive_data(b"")
    assert isinstance(out, _http.Refuse) and out.response == b""


def test_bad_origins_are_rejected_as_flags():
    with pytest.raises(ValueError, match="scheme://host"):
        _http.normalise_origin("example.com")
    assert _http.normalise_origin("*") == "*"
    assert _http.normalise_origin("HTTPS://A.example:8443/x") == "https://a.example:8443"


def test_prefix_routes_carry_path_query_and_headers_and_their_own_token_rules():
    pol = policy(
        tokens=("t0k",),
        prefix_route=lambda path: path.startswith(("/alpaca/", "/binance/")),
        self_auth=("/alpaca/",),
    )
    out = decide(upgrade("/alpaca/v2/iex", "Content-Type: application/msgpack"), pol)
    assert isinstance(out, _http.Accept)  # Alpaca's auth message carries the token instead
    assert (out.route, out.path, out.subprotocol) == ("/alpaca/v2/iex", "/alpaca/v2/iex", None)
    assert out.headers["content-type"] == "application/msgpack"
    assert b"Sec-WebSocket-Protocol" not in out.response
    refused(upgrade("/binance/ws/aapl@trade"), 401, pol)
    ok = decide(upgrade("/binance/stream?streams=a@trade/b@trade&token=t0k"), pol)
    assert isinstance(ok, _http.Accept)
    assert ok.path == "/binance/stream" and ok.query == "streams=a@trade/b@trade&token=t0k"
    refused(upgrade("/coinbase"), 404, pol)  # not a prefix route of this policy
    refused(upgrade("/alpaca/v2/iex", "Origin: http://evil.example"), 403, pol)


def test_an_empty_token_never_authenticates():
    # Even a policy holding an empty token (ServerConfig refuses to build one) lets no one in
    # with an empty Bearer token or ?token=.
    pol = policy(tokens=("", "s3cret"))
    refused(upgrade("/v1", "Authorization: Bearer "), 401, pol)
    refused(upgrade("/v1", "Authorization: Bearer    "), 401, pol)
    refused(upgrade("/v1?token="), 401, pol)
    assert isinstance(decide(upgrade("/v1", "Authorization: Bearer s3cret"), pol), _http.Accept)


# ----------------------------------------------------------------------------- head limits


def _one_read(data: bytes) -> _http.Accept | _http.Refuse | None:
    return _http.HttpFront(policy()).receive_data(data)


def test_a_whole_oversized_head_in_one_read_is_431():
    """h11's own limit applies only across reads: a complete 20 KiB request in one read
    passed it. The head is measured before h11 parses it."""
    data = upgrade("/v1", "X-Pad: " + "a" * (_http.MAX_HEADER_BYTES + 4096))
    out = _one_read(data)
    assert isinstance(out, _http.Refuse) and out.status == 431, out
    assert out.response.startswith(b"HTTP/1.1 431 ")


def test_too_many_header_lines_are_431_in_one_read_or_many():
    many = [f"X-{i}: a" for i in range(_http.MAX_HEADER_LINES + 1)]
    data = upgrade("/v1", *many)
    assert len(data) < _http.MAX_HEADER_BYTES  # small, but 15,000 of them cost 70 ms to parse
    out = _one_read(data)
    assert isinstance(out, _http.Refuse) and out.status == 431, out
    assert "header lines" in out.reason
    refused(data, 431)  # byte by byte as well


def test_a_head_at_the_limits_passes():
    extra = [f"X-{i}: a" for i in range(_http.MAX_HEADER_LINES - 5)]  # 5 upgrade headers
    assert isinstance(_one_read(upgrade("/v1", *extra)), _http.Accept)
    pad = _http.MAX_HEADER_BYTES - len(upgrade("/v1", "X-Pad: "))
    data = upgrade("/v1", "X-Pad: " + "a" * pad)
    assert len(data) == _http.MAX_HEADER_BYTES
    assert isinstance(_one_read(data), _http.Accept)
    assert _one_read(upgrade("/v1", "X-Pad: " + "a" * (pad + 1))).status == 431  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- ambiguous requests


@pytest.mark.parametrize(
    "extra",
    [
        ("Origin: https://evil.example", "Origin: http://127.0.0.1:8765"),
        (f"Sec-WebSocket-Key: {base64.b64encode(b'fedcba9876543210').decode()}",),
        ("Host: 127.0.0.1:8765",),
    ],
)
def test_repeated_origin_host_or_key_is_400(extra):
    """The last value used to win: an evil Origin followed by a good one passed."""
    out = refused(upgrade("/v1", *extra), 400)
    assert "header" in out.reason


def test_an_http_1_0_upgrade_is_400():
    data = upgrade("/v1").replace(b"HTTP/1.1", b"HTTP/1.0")
    out = refused(data, 400)
    assert "HTTP/1.0" in out.reason


@pytest.mark.parametrize(
    "data",
    [
        b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n",  # 404
        upgrade("/nope").replace(b"GET", b"HEAD"),  # 404 of an upgrade
        upgrade("/v1").replace(b"GET", b"HEAD"),  # 400: an upgrade is a GET
    ],
)
def test_head_gets_no_body_whatever_the_status(data):
    out = decide(data)
    assert isinstance(out, _http.Refuse) and out.status >= 400
    head, body = out.response.split(b"\r\n\r\n", 1)
    assert body == b"" and b"Content-Length: " in head
