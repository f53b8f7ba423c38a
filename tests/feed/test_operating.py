"""Operating the real `tickwire serve`: /metrics, /livez, /readyz and the SIGTERM drain.

Each test runs the real command (`serve_process`) on 127.0.0.1, any free port.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trio
from _rawws import upgrade_request
from _support import metric_samples, serve_process, tickwire_cmd
from trio.testing import MockClock

from tickwire.feed import ConnectionLost, connect
from tickwire.feed.client.events import Status
from tickwire.feed.server.server import Server, ServerConfig


def http_base(url: str) -> str:
    return url.replace("ws", "http", 1).removesuffix("/v1")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_metrics_parse_and_move_as_a_client_receives() -> None:
    with serve_process("--activity", "5") as (_, url):
        base = http_base(url)
        before = metric_samples((await trio.to_thread.run_sync(get, base + "/metrics"))[1])
        with trio.fail_after(30):
            async with connect(url, reconnect=False) as feed:
                await feed.subscribe(["AAPL", "MSFT", "SPY"])
                got = 0
                async for _event in feed:
                    got += 1
                    if got >= 20:
                        break
                status, text = await trio.to_thread.run_sync(get, base + "/metrics")
        after = metric_samples(text)
    assert status == 200
    for name in (
        "tickwire_messages_sent_total",
        "tickwire_ticks_sent_total",
        "tickwire_bytes_sent_total",
        "tickwire_connections_total",
    ):
        assert after[name] > before[name], name
    assert after["tickwire_clients"] == 1
    assert after["tickwire_generator_step_seconds_count"] > 0
    assert after["tickwire_tick_to_send_seconds_count"] > 0


def test_livez_readyz_and_404() -> None:
    with serve_process() as (_, url):
        base = http_base(url)
        assert get(base + "/livez") == (200, "ok: alive\n")
        assert get(base + "/readyz") == (200, "ok: ready\n")
        assert get(base + "/nope")[0] == 404
        status, body = get(base + "/")
        assert status == 200 and "<html" in body.lower()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def _log_until(proc: subprocess.Popen[str], text: str) -> str:
    """Read the server's log up to the first line holding `text`; its end first fails."""
    assert proc.stderr is not None
    while True:
        line = proc.stderr.readline()
        assert line, f"the server ended before logging {text!r}"
        if text in line:
            return line


def _silent_client(port: int) -> socket.socket:
    """A WebSocket client that upgrades, then reads nothing and answers no close."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(upgrade_request(port=port))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def test_readyz_turns_503_on_sigterm_before_the_listener_closes() -> None:
    # Two clients over --drain-s 600: the first is closed at once, the second is due 300 s in,
    # so the drain outlasts this test however slow the machine; a second SIGTERM ends it.
    with serve_process("--drain-s", "600", "--drain-min-s", "0") as (proc, url):
        port = _port(url)
        clients = [_silent_client(port) for _ in range(2)]
        for _ in clients:
            _log_until(proc, "connected to /v1")
        early = socket.create_connection(("127.0.0.1", port), timeout=30)
        early.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")  # not finished: held, accepted
        # Accepted in order: once a later request is answered, `early` was accepted too.
        assert get(f"http://127.0.0.1:{port}/livez")[0] == 200
        proc.send_signal(signal.SIGTERM)
        _log_until(proc, "draining")
        early.sendall(b"\r\n")
        answer = b""
        while b"not ready" not in answer and (chunk := early.recv(4096)):
            answer += chunk
        early.close()
        # The listener closes right after the "draining" line is written (--drain-min-s 0):
        # a connect may still slip in between the two, so try until one is refused. No clock
        # bounds this: the listener's close ends it, and pytest's timeout if it never came.
        with pytest.raises(OSError):
            while True:
                socket.create_connection(("127.0.0.1", port), timeout=30).close()
        assert proc.poll() is None  # still draining: the second client is not due yet
        proc.send_signal(signal.SIGTERM)
        _log_until(proc, "second signal")
        assert proc.wait(timeout=60) == 0
        for sock in clients:
            sock.close()
    assert answer.startswith(b"HTTP/1.1 503")
    assert b"not ready: draining" in answer


async def _watch_until_closed(url: str, *, task_status: trio.TaskStatus[None]) -> None:
    """A client on SPY, started once subscribed, that reads until the server closes it."""
    async with connect(url, reconnect=False) as feed:
        await feed.subscribe(["SPY"])
        task_status.started()
        with pytest.raises(ConnectionLost):
            async for _ in feed:
                pass


async def test_drain_closes_with_1012_and_exits_0() -> None:
    # The real command's wiring: SIGTERM drains over --drain-s, every client gets 1012, exit 0.
    # When each close goes out is checked on virtual time below, where load cannot move it.
    with serve_process("--drain-s", "2") as (proc, url):
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    await nursery.start(_watch_until_closed, url)
                proc.send_signal(signal.SIGTERM)
            code = await trio.to_thread.run_sync(proc.wait)
        err = proc.stderr.read() if proc.stderr else ""
    assert code == 0
    assert "draining: closing 4 clients with 1012 over 2 s" in err, err
    assert err.count("code 1012") == 4, err


async def test_drain_spreads_the_closes_over_drain_s(
    nursery: trio.Nursery, mock_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # Virtual time (autojump 5 ms; it stands still while bytes move on loopback): the closes
    # arrive exactly when the drain schedules them, one every drain_s / 4, not all at once.
    caplog.set_level(logging.INFO, logger="tickwire.server")
    mock_clock.autojump_threshold = 0.005
    server = Server(ServerConfig(port=0, heartbeat_ms=0, cadence_ms=20))
    await nursery.start(server.run)
    closed_at: list[float] = []

    async def watch(*, task_status: trio.TaskStatus[None]) -> None:
        await _watch_until_closed(server.url, task_status=task_status)
        closed_at.append(trio.current_time())

    with trio.fail_after(60):
        async with trio.open_nursery() as clients:
            for _ in range(4):
                await clients.start(watch)
            t0 = trio.current_time()
            await server.drain(2.0)
            drained_s = trio.current_time() - t0
    assert [t - t0 for t in closed_at] == pytest.approx([0.0, 0.5, 1.0, 1.5], abs=0.03)
    assert drained_s == pytest.approx(1.5, abs=0.03)  # done once the last client has gone
    assert caplog.text.count("code 1012") == 4, caplog.text


async def test_a_1012_close_makes_the_client_reconnect(nursery: trio.Nursery) -> None:
    server = Server(ServerConfig(port=0))
    await nursery.start(server.run)
    with trio.fail_after(30):
        async with connect(server.url, backoff_initial_s=0.05) as feed:
            await feed.subscribe(["AAPL"])
            for conn in list(server.connections):
                conn.close(1012, "server restarting; reconnect")
            states = []
            async for event in feed:
                if isinstance(event, Status):
                    states.append(event.state)
                    if event.state == "live" and "reconnecting" in states:
                        break
    assert states[-2:] == ["reconnecting", "live"]


def test_config_precedence_and_errors_on_the_real_command(tmp_path: Path) -> None:
    cfg = tmp_path / "tw.toml"
    cfg.write_text('port = 9001\ndrain-s = 3\nlog-format = "json"\ntoken = ["abc"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKWIRE_")}
    env["TICKWIRE_PORT"] = "9002"
    out = subprocess.run(
        tickwire_cmd("serve", "--config", str(cfg), "--port", "9003", "--print-config"),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "port = 9003  # flag" in out.stdout
    assert "drain-s = 3.0" in out.stdout and 'log-format = "json"' in out.stdout
    assert "abc" not in out.stdout
    out = subprocess.run(
        tickwire_cmd("serve", "--config", str(cfg), "--print-config"),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert "port = 9002  # env TICKWIRE_PORT" in out.stdout
    cfg.write_text("drain_s = -1\n")
    out = subprocess.run(
        tickwire_cmd("serve", "--config", str(cfg)), capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert f"config file {cfg}: key 'drain_s'" in out.stderr
    assert "Traceback" not in out.stderr


async def _ask(server: Server, request: bytes) -> bytes:
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(request)
    answer = b""
    while chunk := await stream.receive_some():
        answer += chunk
    await stream.aclose()
    return answer


async def test_page_head_and_304_on_the_feed_port(server: Server) -> None:
    with trio.fail_after(20):
        get_ = await _ask(server, b"GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, body = get_.split(b"\r\n\r\n", 1)
        fields = dict(h.partition(b": ")[::2] for h in head.split(b"\r\n")[1:])
        etag = fields[b"ETag"]
        length = next(h for h in head.split(b"\r\n") if h.startswith(b"Content-Length"))
        head_only = await _ask(
            server, b"HEAD /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        cached = await _ask(
            server,
            b"GET /app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\nIf-None-Match: "
            + etag
            + b"\r\n\r\n",
        )
    assert get_.startswith(b"HTTP/1.1 200") and b"text/javascript" in head
    assert int(length.split(b": ")[1]) == len(body) > 1000
    assert head_only.startswith(b"HTTP/1.1 200") and head_only.endswith(b"\r\n\r\n")
    assert length in head_only and head_only.count(b"Content-Length") == 1
    assert cached.startswith(b"HTTP/1.1 304") and cached.endswith(b"\r\n\r\n")


async def test_a_second_sigterm_stops_the_drain_at_once() -> None:
    with serve_process("--drain-s", "60") as (proc, url):
        closes: list[str] = []

        async def watch() -> None:
            async with connect(url, reconnect=False) as feed:
                await feed.subscribe(["SPY"])
                ready.set()
                try:
                    async for _ in feed:
                        pass
                except Exception as exc:
                    closes.append(str(exc))

        ready = trio.Event()
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    ready = trio.Event()
                    nursery.start_soon(watch)
                    await ready.wait()
                assert proc.stderr is not None
                proc.send_signal(signal.SIGTERM)
                while "draining" not in await trio.to_thread.run_sync(proc.stderr.readline):
                    pass
                proc.send_signal(signal.SIGTERM)
            code = await trio.to_thread.run_sync(proc.wait)
        err = proc.stderr.read()
    assert code == 0
    # The oldest got its 1012 at once; the other two were not due for 20 s: 1001 now.
    assert err.count("code 1012") == 1 and err.count("code 1001") == 2, err
