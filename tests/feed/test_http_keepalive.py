"""HTTP keep-alive on the feed's port: one TCP connection serves many plain requests (the venues'
REST, /livez, pages), pipelined ones in order, `Connection: close` and HTTP/1.0 honoured, a cap
of requests per connection, and an idle deadline. First the HTTP front alone (bytes in, bytes
out), then a real server on loopback with a real keep-alive client (requests.Session)."""

from __future__ import annotations

import logging

import pytest
import trio
from _rawws import Reader, open_socket, upgrade_request
from trio.testing import MockClock

from tickwire.feed.server.server import Server, ServerConfig
from tickwire.feed.ws import http as _http
from tickwire.feed.ws.connection import KEEP_ALIVE_S


def _get(path: str, *extra: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: x", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _front(**kw) -> _http.HttpFront:
    pages = {
        "/a": lambda r: _http.HttpResponse(200, (), b"page a"),
        "/b": lambda r: _http.HttpResponse(200, (), b"page b " + r.query.encode()),
    }
    return _http.HttpFront(_http.Policy(ws_routes={"/v1": ()}, routes=pages, **kw))


def _answer(out: object, body: bytes, keep: bool = True) -> None:
    assert isinstance(out, _http.Refuse) and out.keep_alive is keep, out
    assert out.response.startswith(b"HTTP/1.1 200 OK\r\n") and out.response.endswith(body)
    assert (b"Connection: close" in out.response) is not keep


def test_answers_keep_the_connection_and_the_next_request_is_parsed():
    front = _front()
    _answer(front.receive_data(_get("/a")), b"page a")
    assert front.next_request() is None  # nothing buffered: read more
    _answer(front.receive_data(_get("/b?x=1")), b"page b x=1")
    out = front.receive_data(_get("/nope"))
    assert isinstance(out, _http.Refuse) and out.status == 404 and out.keep_alive
    assert front.answered == 3


def test_pipelined_requests_are_answered_in_order_then_an_upgrade_follows():
    front = _front()
    upgrade = upgrade_request("/v1", {"Host": "x"})
    _answer(front.receive_data(_get("/a") + _get("/b?2") + upgrade + b"\x81"), b"page a")
    _answer(front.next_request(), b"page b 2")
    accept = front.next_request()
    assert isinstance(accept, _http.Accept) and accept.route == "/v1"
    assert accept.trailing == b"\x81"  # the WebSocket's first byte, kept for it


def test_connection_close_and_http_1_0_close():
    _answer(_front().receive_data(_get("/a", "Connection: close")), b"page a", keep=False)
    out = _front().receive_data(_get("/a", version="1.0"))
    assert isinstance(out, _http.Refuse) and not out.keep_alive
    assert out.response.endswith(b"page a")
    out = _front().receive_data(_get("/a", "Connection: keep-alive", version="1.0"))
    assert isinstance(out, _http.Refuse) and not out.keep_alive  # h11: HTTP/1.0 always closes


def test_the_last_request_a_connection_may_send_is_answered_with_close():
    front = _front(keep_alive_requests=3)
    _answer(front.receive_data(_get("/a")), b"page a")
    _answer(front.receive_data(_get("/a")), b"page a")
    _answer(front.receive_data(_get("/a") + _get("/a")), b"page a", keep=False)


def test_head_keeps_get_s_length_without_a_body_and_the_connection():
    front = _front()
    out = front.receive_data(_get("/a", method="HEAD") + _get("/a"))
    assert isinstance(out, _http.Refuse) and out.keep_alive
    assert out.response.endswith(b"Content-Length: 6\r\n\r\n")
    _answer(front.next_request(), b"page a")


def test_a_pipelined_request_is_measured_like_the_first():
    front = _front()
    huge = _get("/a", *(f"X-{i}: y" for i in range(_http.MAX_HEADER_LINES + 1)))
    _answer(front.receive_data(_get("/a") + huge), b"page a")
    out = front.next_request()
    assert isinstance(out, _http.Refuse) and out.status == 431 and not out.keep_alive


def test_a_request_with_a_body_is_answered_and_closed():
    out = _front().receive_data(_get("/a", "Content-Length: 5"))  # its body is not read
    assert isinstance(out, _http.Refuse) and out.status == 200 and not out.keep_alive
    assert b"Connection: close" in out.response


# ---------------------------------------------------------------- over real sockets


def _port(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1].split("/")[0])


async def test_a_requests_session_sends_many_requests_over_one_connection(
    server: Server, caplog: pytest.LogCaptureFixture
):
    """Before: every answer said `Connection: close`, so each request came on a new TCP
    connection (50 client ports in the server's log here); now the session reuses one."""
    requests = pytest.importorskip("requests")
    caplog.set_level(logging.DEBUG, logger="tickwire.server")
    base = f"http://127.0.0.1:{_port(server)}"

    def calls() -> list[int]:
        with requests.Session() as session:
            statuses = []
            for i in range(25):
                statuses.append(session.get(f"{base}/livez").status_code)
                statuses.append(session.get(f"{base}/binance/api/v3/time?i={i}").status_code)
            return statuses

    with trio.fail_after(30):
        assert await trio.to_thread.run_sync(calls) == [200] * 50
    answered = [r.args for r in caplog.records if r.msg == "client %s: HTTP %d, %s" and r.args]
    assert len(answered) == 50
    peers = {args[0] for args in answered if isinstance(args, tuple)}
    assert len(peers) == 1, peers  # one client address and port: one TCP connection


async def test_pipelined_requests_on_one_socket_then_a_websocket(server: Server):
    port = _port(server)
    with trio.fail_after(10):
        stream = await open_socket(port)
        reader = Reader(stream)
        await stream.send_all(_get("/livez") + _get("/binance/api/v3/ping") + _get("/nope"))
        answers = [await reader.response() for _ in range(3)]
        assert [a[0] for a in answers] == [200, 200, 404]
        assert answers[1][3] == b"{}"  # Binance's ping, in the order asked
        await stream.send_all(upgrade_request("/v1", {"Host": f"127.0.0.1:{port}"}))
        status, *_ = await reader.response()
        assert status == 101  # the same socket, now a WebSocket
        assert server.registry.held == 1
        await stream.aclose()


async def test_an_idle_connection_is_closed_after_the_keep_alive_deadline(
    nursery: trio.Nursery, mock_clock: MockClock
):
    mock_clock.autojump_threshold = 0.005
    srv = Server(ServerConfig(port=0, heartbeat_ms=0, cadence_ms=50))
    await nursery.start(srv.run)
    with trio.fail_after(KEEP_ALIVE_S + 5):
        stream = await open_socket(_port(srv))
        reader = Reader(stream)
        await stream.send_all(_get("/livez"))
        assert (await reader.response())[0] == 200
        t = trio.current_time()
        await reader.until_eof()
        waited = trio.current_time() - t
        assert waited == pytest.approx(KEEP_ALIVE_S, abs=0.2), waited
        closer = await open_socket(_port(srv))
        await closer.send_all(_get("/livez", "Connection: close"))
        reader = Reader(closer)
        assert (await reader.response())[0] == 200
        t = trio.current_time()
        await reader.until_eof()
        assert trio.current_time() - t < 0.2  # asked to close: closed at once
    while srv.registry.held:
        await trio.sleep(0.01)  # polling the server's count, not a fixed delay


class _Steps(trio.abc.Instrument):
    """Counts the scheduler steps of the server's connection tasks (`Connection.run`)."""

    def __init__(self) -> None:
        self.steps = 0

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("Connection.run"):
            self.steps += 1


async def test_pipelined_requests_let_other_tasks_run_between_answers(server: Server):
    """A client that pipelines many requests must not hold the scheduler while they are
    answered (a REST answer can take a while): the connection's task yields after each one."""
    n = 200
    steps = _Steps()
    with trio.fail_after(20):
        stream = await open_socket(_port(server))
        reader = Reader(stream)
        trio.lowlevel.add_instrument(steps)
        try:
            await stream.send_all(_get("/livez") * n)
            answers = [(await reader.response())[0] for _ in range(n)]
        finally:
            trio.lowlevel.remove_instrument(steps)
        await stream.aclose()
    assert answers == [200] * n
    assert steps.steps >= n, steps.steps  # at least one step per answer
