"""The graceful drain's schedule: closes spread over drain_s, a second signal stops at once;
the port stays open (readyz 503) for --drain-min-s, checked on the real `tickwire serve`."""

from __future__ import annotations

import signal
import socket
import time
import urllib.error
import urllib.request

import pytest
from _support import serve_process

from tickwire.feed.ws.drain import (
    GRACE_S,
    Drain,
    Phase,
    close_offsets,
)


def test_offsets_are_evenly_spread_inside_the_drain() -> None:
    assert close_offsets(4, 10.0) == [0.0, 2.5, 5.0, 7.5]
    assert close_offsets(0, 10.0) == []
    assert close_offsets(3, 0.0) == [0.0, 0.0, 0.0]
    offsets = close_offsets(1000, 10.0)
    assert max(offsets) < 10.0 and offsets == sorted(offsets)
    with pytest.raises(ValueError, match="drain_s must be >= 0"):
        close_offsets(1, -1)


def test_ready_until_the_first_signal() -> None:
    drain: Drain[str] = Drain(10.0)
    assert drain.ready and drain.next_deadline() is None and drain.due(100.0) == []
    assert drain.signal(100.0, ["a", "b"]) is Phase.DRAINING
    assert not drain.ready and not drain.done


def test_clients_close_one_at_a_time_oldest_first() -> None:
    drain: Drain[str] = Drain(10.0)
    drain.signal(100.0, ["old", "mid", "new", "newest"])
    assert drain.due(100.0) == ["old"]
    assert drain.due(100.0) == []  # each client is handed out once
    assert drain.next_deadline() == 102.5
    assert drain.due(104.9) == ["mid"]
    assert drain.due(110.0) == ["new", "newest"]  # a late wake-up catches up
    assert drain.next_deadline() == 110.0 + GRACE_S
    for c in ("old", "mid", "new"):
        drain.gone(c)
    assert not drain.done
    drain.gone("newest")
    assert drain.done and drain.next_deadline() is None


def test_a_client_that_left_by_itself_is_skipped() -> None:
    drain: Drain[int] = Drain(3.0)
    drain.signal(0.0, [1, 2, 3])
    drain.gone(2)
    assert drain.due(0.0) == [1]
    assert drain.due(5.0) == [3]


def test_second_signal_closes_all_remaining_at_once() -> None:
    drain: Drain[str] = Drain(10.0)
    drain.signal(0.0, ["a", "b", "c"])
    assert drain.due(0.0) == ["a"]
    assert drain.signal(1.0, []) is Phase.STOPPED
    assert drain.done and drain.due(1.0) == ["b", "c"]


def test_no_clients_means_done_at_once() -> None:
    drain: Drain[str] = Drain(10.0)
    drain.signal(0.0, [])
    assert drain.done


def test_a_client_ignoring_its_close_does_not_hold_the_exit() -> None:
    drain: Drain[str] = Drain(1.0)
    drain.signal(0.0, ["stuck"])
    assert drain.due(0.0) == ["stuck"]
    assert drain.next_deadline() == 1.0 + GRACE_S
    assert drain.due(1.0 + GRACE_S) == []
    assert drain.done


def test_zero_drain_closes_everyone_at_once() -> None:
    drain: Drain[str] = Drain(0.0)
    drain.signal(5.0, ["a", "b"])
    assert drain.due(5.0) == ["a", "b"]


def test_the_listener_stays_open_for_min_s_even_with_no_client() -> None:
    drain: Drain[str] = Drain(10.0, min_s=5.0)
    assert drain.listening(0.0)
    drain.signal(100.0, [])
    assert not drain.ready and not drain.done  # no client, but a balancer must see the 503
    assert drain.listening(104.9) and not drain.listening(105.0)
    assert drain.next_deadline() == 105.0
    assert drain.due(104.0) == [] and not drain.done
    assert drain.due(105.0) == [] and drain.done and not drain.listening(105.0)


def test_min_s_holds_the_exit_after_the_last_client_left() -> None:
    drain: Drain[str] = Drain(1.0, min_s=4.0)
    drain.signal(0.0, ["a", "b"])
    assert drain.due(0.0) == ["a"]
    assert drain.next_deadline() == 0.5  # the next close comes before the listener's end
    assert drain.due(0.5) == ["b"]
    drain.gone("a")
    drain.gone("b")
    assert not drain.done and drain.next_deadline() == 4.0
    drain.due(4.0)
    assert drain.done


def test_a_long_drain_outlasts_min_s() -> None:
    drain: Drain[str] = Drain(10.0, min_s=1.0)
    drain.signal(0.0, ["a", "b"])
    drain.due(0.0)
    assert drain.next_deadline() == 1.0  # the listener closes first
    assert drain.due(1.0) == [] and not drain.listening(1.0)
    assert drain.next_deadline() == 5.0
    assert drain.due(5.0) == ["b"]
    drain.gone("a")
    drain.gone("b")
    assert drain.done


def test_second_signal_stops_listening_at_once() -> None:
    drain: Drain[str] = Drain(10.0, min_s=30.0)
    drain.signal(0.0, [])
    assert drain.listening(1.0)
    drain.signal(1.0, [])
    assert drain.done and not drain.listening(1.0) and drain.next_deadline() is None


def test_negative_min_s_is_refused() -> None:
    with pytest.raises(ValueError, match="min_s must be >= 0"):
        Drain(1.0, min_s=-1.0)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _upgrade_status(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"GET /v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        return sock.recv(4096).split(b"\r\n", 1)[0]


def test_real_server_keeps_readyz_503_for_drain_min_s_with_no_client() -> None:
    """SIGTERM with no client: the port stays open for --drain-min-s, answering /readyz with
    503 and refusing upgrades with 503, then the process exits 0 (not before)."""
    min_s = 2.0
    with serve_process("--drain-min-s", str(min_s)) as (proc, url):
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        base = f"http://127.0.0.1:{port}"
        assert _get(base + "/readyz")[0] == 200
        assert _upgrade_status(port).startswith(b"HTTP/1.1 101")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.stderr is not None
        line = ""
        while "draining" not in line:
            line = proc.stderr.readline()
            assert line, "server ended without draining"
        readyz = _get(base + "/readyz")
        upgrade = _upgrade_status(port)
        assert proc.poll() is None  # all of that while it drains
        code = proc.wait(timeout=30)
        took = time.monotonic() - t0
    assert readyz == (503, "not ready: draining, the server is shutting down\n")
    assert upgrade.startswith(b"HTTP/1.1 503")
    assert code == 0
    assert took >= min_s
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
