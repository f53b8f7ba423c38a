"""The HTTP front's bench rows compare like with like: the same 101 from both handshakes."""

from __future__ import annotations

from tickwire.feed.bench.handshake import (
    _request,
    cpu_us,
    front_answer,
    handshake_ms,
    handshake_server,
    wsproto_answer,
)


def _headers(response: bytes) -> dict[str, str]:
    status, *lines = response.decode().split("\r\n\r\n")[0].split("\r\n")
    assert status.startswith("HTTP/1.1 101")
    return {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}


def test_both_answer_the_same_upgrade() -> None:
    request = _request()
    ours, theirs = front_answer()(request), wsproto_answer()(request)
    assert ours is not None and theirs is not None
    a, b = _headers(ours), _headers(theirs)
    for name in ("sec-websocket-accept", "sec-websocket-protocol", "upgrade"):
        assert a[name].lower() == b[name].lower(), name
    assert a["sec-websocket-protocol"] == "tickwire.v1.binary"


def test_a_request_in_two_pieces_is_answered_once_whole() -> None:
    request = _request()
    for make in (front_answer, wsproto_answer):
        answer = make()
        assert answer(request[:20]) is None
        assert answer(request[20:]) is not None


def test_servers_answer_real_handshakes_on_loopback() -> None:
    for make in (front_answer, wsproto_answer):
        with handshake_server(make) as url:
            assert url.startswith("ws://127.0.0.1:")
            assert all(handshake_ms(url, welcome=False) > 0 for _ in range(3))
    assert cpu_us(front_answer, 10) > 0
