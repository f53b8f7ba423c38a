"""Attacks on a real `tickwire serve` from outside (issue 9): none may hurt the server.

Each test starts the real command (`_rawws.serve`), attacks it with raw sockets, then proves the
server still serves a new client, released what it should (descriptors from /proc), and logged
what it should. Raw sockets, because the attacks are bytes no polite client sends.
"""

from __future__ import annotations

import re

import pytest
import trio
from _rawws import (
    HOST,
    OP_BINARY,
    OP_CLOSE,
    Reader,
    client_frame,
    handshake,
    open_socket,
    reset,
    serve,
    serving,
    text_frame,
    upgrade_request,
    welcome,
)

TOKEN = "tw-secret-7f3a9c"


async def _wait_fds(served, at_most: int, within_s: float) -> int:
    """Poll the server's descriptor count (a /proc read, not a sync) until <= at_most."""
    with trio.move_on_after(within_s):
        while (n := served.fds()) > at_most:
            await trio.sleep(0.05)
        return n
    return served.fds()


async def _early_close(port: int, path: str, headers: dict[str, str] | None = None) -> None:
    stream = await open_socket(port)
    await stream.send_all(upgrade_request(path, headers, port))
    await stream.aclose()


# --------------------------------------------------------------------------- one request kills it


async def test_wrong_path_then_early_close_leaves_the_server_serving() -> None:
    with serve() as served, trio.fail_after(20):
        for _ in range(5):
            await _early_close(served.port, "/not-v1")
        await serving(served.port)
        await serving(served.port)
        assert served.alive(), served.log()[-2000:]
        assert "Traceback" not in served.log()


async def test_missing_token_then_early_close_leaves_the_server_serving() -> None:
    with serve("--token", TOKEN) as served, trio.fail_after(20):
        for _ in range(5):
            await _early_close(served.port, "/v1")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        await serving(served.port, headers=auth)
        await serving(served.port, headers=auth)
        assert served.alive(), served.log()[-2000:]
        assert "Traceback" not in served.log()


async def test_reset_after_or_during_the_handshake_leaves_the_server_serving() -> None:
    with serve() as served, trio.fail_after(20):
        for _ in range(3):
            reader, status, _ = await handshake(served.port)  # complete, then RST
            assert status == 101
            reset(reader.stream)
            stream = await open_socket(served.port)  # RST before the server answers
            await stream.send_all(upgrade_request("/v1", None, served.port))
            reset(stream)
            stream = await open_socket(served.port)  # RST before sending anything
            reset(stream)
        await serving(served.port)
        await serving(served.port)
        assert served.alive(), served.log()[-2000:]
        assert "Traceback" not in served.log()


async def test_a_close_frame_right_after_the_101_leaves_the_server_serving() -> None:
    # found by the bench's handshake row: the close arrived before the connection was set up
    with serve() as served, trio.fail_after(20):
        for _ in range(5):
            reader, status, _ = await handshake(served.port)
            assert status == 101
            await reader.stream.send_all(client_frame(b"\x03\xe8", OP_CLOSE))
            await reader.stream.aclose()
        await serving(served.port)
        await serving(served.port)
        assert served.alive(), served.log()[-2000:]
        assert "Traceback" not in served.log()


# --------------------------------------------------------------------------- refused sockets


@pytest.mark.parametrize(
    ("args", "path", "status"), [((), "/nope", 404), (("--token", TOKEN), "/v1", 401)]
)
async def test_a_refused_socket_is_closed_promptly(
    args: tuple[str, ...], path: str, status: int
) -> None:
    with serve(*args) as served, trio.fail_after(20):
        reader, got, _ = await handshake(served.port, path)
        assert got == status
        with trio.fail_after(5):  # the server closes its end: we read EOF
            await reader.until_eof()


async def test_refused_sockets_are_released_under_the_connection_cap() -> None:
    with serve("--max-connections", "50") as served, trio.fail_after(30):
        await serving(served.port)  # warm: the first connection allocates for good
        baseline = served.fds()
        held = []
        for _ in range(60):
            reader, got, _ = await handshake(served.port, "/nope")
            assert got == 404
            held.append(reader)  # we never close them
        n = await _wait_fds(served, baseline + 5, within_s=10)
        assert n <= baseline + 5, f"server holds {n - baseline} descriptors for 60 refused sockets"
        await serving(served.port)
        for reader in held:
            await reader.stream.aclose()


async def test_1100_refused_sockets_under_a_1024_descriptor_limit() -> None:
    with serve(nofile=1024) as served, trio.fail_after(60):
        held = []
        for _ in range(1100):  # as fast as we can connect, never closing
            stream = await open_socket(served.port)
            await stream.send_all(upgrade_request("/nope", None, served.port))
            held.append(stream)
        with trio.fail_after(20):  # still accepting: a new client is served
            await serving(served.port)
        log = served.log()
        assert served.alive(), log[-2000:]
        assert "Traceback" not in log, log[-3000:]
        assert "EMFILE" not in log, log[-3000:]
        for stream in held:
            await stream.aclose()


# --------------------------------------------------------------------------- stalled readers


async def _stalled_reader(port: int) -> trio.SocketStream:
    """Subscribe to everything and never read again, with a tiny receive window."""
    reader, status, _ = await handshake(port, rcvbuf=4096)
    assert status == 101
    await reader.message()  # welcome
    await reader.stream.send_all(text_frame({"op": "subscribe", "symbols": ["*"]}))
    return reader.stream


async def test_stalled_readers_are_dropped_and_release_their_descriptors() -> None:
    # 2000 symbols: the '*' snapshot alone (~400 KB) fills the kernel buffers at once; a quiet
    # market (activity 0.05) keeps the server's CPU for the connections, not the model.
    args = (
        "--symbols",
        "2000",
        "--activity",
        "0.05",
        "--max-connections",
        "50",
        "--book-depth",
        "0",
    )
    args += ("--stall-ms", "300")
    with serve(*args) as served, trio.fail_after(60):
        await serving(served.port)
        baseline = served.fds()
        for _ in range(2):  # two rounds of 45: the cap must free up between them
            held = [await _stalled_reader(served.port) for _ in range(45)]
            n = await _wait_fds(served, baseline + 2, within_s=15)
            assert n <= baseline + 2, f"{n - baseline} descriptors still held by stalled readers"
            for stream in held:
                await stream.aclose()
        assert "stalled" in served.log()
        await serving(served.port)
        assert served.alive()


# --------------------------------------------------------------------------- origin and limits


@pytest.fixture(scope="module")
def shared():
    """One plain server for the tests that only ask it questions."""
    with serve("--log-level", "warning") as served:
        yield served


async def test_a_foreign_origin_is_forbidden(shared) -> None:
    with trio.fail_after(10):
        _, status, _ = await handshake(shared.port, headers={"Origin": "https://evil.example"})
        assert status == 403


@pytest.mark.parametrize("origin", [None, "http://127.0.0.1:{port}", "http://localhost:{port}"])
async def test_no_origin_or_the_same_host_passes(shared, origin: str | None) -> None:
    with trio.fail_after(10):
        headers = {"Origin": origin.format(port=shared.port)} if origin else None
        await serving(shared.port, headers=headers)


async def test_allow_origin_lets_that_origin_in() -> None:
    with serve("--allow-origin", "https://app.example") as served, trio.fail_after(10):
        await serving(served.port, headers={"Origin": "https://app.example"})
        _, status, _ = await handshake(served.port, headers={"Origin": "https://evil.example"})
        assert status == 403


async def test_max_connections_per_ip() -> None:
    with serve("--max-connections-per-ip", "3") as served, trio.fail_after(20):
        live = [await welcome(served.port) for _ in range(3)]
        reader, status, _ = await handshake(served.port)
        if status == 101:  # refused after the upgrade: a close frame, never a welcome
            op, payload = await reader.frame()
            assert op == OP_CLOSE, f"4th connection from one IP served: {payload[:80]!r}"
        else:
            assert 400 <= status < 600
        await live[0].stream.aclose()
        with trio.fail_after(5):
            while True:  # the slot comes back once the server saw the close
                reader, status, _ = await handshake(served.port)
                if status == 101 and (await reader.frame())[0] != OP_CLOSE:
                    break
                await reader.stream.aclose()
                await trio.sleep(0.05)


# --------------------------------------------------------------------------- HTTP and framing


async def test_a_frame_in_the_handshake_packet_is_answered(shared) -> None:
    with trio.fail_after(10):
        stream = await open_socket(shared.port)
        ping = text_frame({"op": "ping", "id": 7})
        await stream.send_all(upgrade_request("/v1", None, shared.port) + ping)
        reader = Reader(stream)
        status, *_ = await reader.response()
        assert status == 101
        assert (await reader.message())["type"] == "welcome"
        pong = await reader.message()
        assert pong["type"] == "pong" and pong["id"] == 7


@pytest.mark.parametrize("path", ["/", "/no-such-page"])
async def test_plain_get_is_http_1_1_not_found(shared, path: str) -> None:
    with trio.fail_after(10):
        stream = await open_socket(shared.port)
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        status, line, _, _ = await Reader(stream).response()
        assert line.startswith("HTTP/1.1 ")
        # issue 12 may serve a page at "/"; anything but a page is 404, never 400
        assert status == 404 or (path == "/" and status == 200), line


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (client_frame(b'{"op":"ping","x":"\xff\xfe"}'), 1007),  # text that is not UTF-8
        (client_frame(b"{}", opcode=0x3), 1002),  # a reserved opcode
        (client_frame(b'{"op":"ping"}', mask=False), 1002),  # an unmasked client frame
        (client_frame(b"x", OP_BINARY, fin=False) + client_frame(b"y"), 1002),  # bad continuation
    ],
    ids=["bad-utf8", "reserved-opcode", "unmasked", "interleaved-fragments"],
)
async def test_protocol_errors_get_a_close_frame_before_tcp_closes(
    shared, frame: bytes, code: int
) -> None:
    with trio.fail_after(10):
        reader = await welcome(shared.port)
        await reader.stream.send_all(frame)
        assert await reader.until_close() == code
        with trio.fail_after(5):
            await reader.until_eof()


# --------------------------------------------------------------------------- logs


async def test_the_token_never_reaches_the_log_even_at_debug() -> None:
    with serve("--token", TOKEN, "--log-level", "debug") as served, trio.fail_after(20):
        await serving(served.port, headers={"Authorization": f"Bearer {TOKEN}"})
        await serving(served.port, path=f"/v1?token={TOKEN}")
        for path, headers in [
            (f"/v1?token={TOKEN}x", None),
            ("/v1", {"Authorization": f"Bearer x{TOKEN}"}),
            (f"/elsewhere?token={TOKEN}", None),
        ]:
            _, status, _ = await handshake(served.port, path, headers)
            assert status in (401, 404)
        assert served.stop() == 0
        log = served.log()
        assert log.strip(), "--log-level debug printed nothing"
        assert TOKEN not in log


async def test_debug_logs_and_refusals_are_not_info_lines() -> None:
    with serve("--token", TOKEN, "--log-level", "debug") as served, trio.fail_after(20):
        await serving(served.port, headers={"Authorization": f"Bearer {TOKEN}"})
        for i in range(3):  # the first refusal may be an INFO line, the rest are not
            _, status, _ = await handshake(served.port, f"/nope{i}")
            assert status == 404
        assert served.stop() == 0
        debug = [ln for ln in served.log().splitlines() if re.search(r"\bDEBUG\b", ln)]
        assert debug, "--log-level debug printed no debug line"
        assert any("/nope" in ln for ln in debug), "refused upgrades are not debug lines"
    with serve("--token", TOKEN) as served, trio.fail_after(20):
        for i in range(40):
            _, status, _ = await handshake(served.port, "/v1" if i % 2 else "/nope")
            assert status in (401, 404)
        await serving(served.port, headers={"Authorization": f"Bearer {TOKEN}"})
        assert served.stop() == 0
        info = [ln for ln in served.log().splitlines() if " INFO " in ln and "refus" in ln]
        assert len(info) <= 3, f"{len(info)} INFO lines for 40 refused upgrades:\n" + "\n".join(
            info[:5]
        )
