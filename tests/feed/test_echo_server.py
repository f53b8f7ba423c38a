"""The Autobahn echo server (tests/feed/echo_server.py) really echoes, via `websockets`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

SCRIPT = os.path.join(os.path.dirname(__file__), "echo_server.py")


@pytest.fixture(scope="module")
def url():
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("ws://127.0.0.1:"), line
        yield line.strip()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_echoes_text_binary_fragments_and_big_messages(url):
    with connect(url, open_timeout=10, max_size=2**25) as ws:
        ws.send("héllo")
        assert ws.recv(timeout=10) == "héllo"
        ws.send(b"\x00\x01\x02")
        assert ws.recv(timeout=10) == b"\x00\x01\x02"
        ws.send(["frag", "ment", "ed"])  # one message in three frames
        assert ws.recv(timeout=10) == "fragmented"
        big = os.urandom(8 * 1024 * 1024)
        ws.send(big)
        assert ws.recv(timeout=30) == big
        assert ws.ping(b"p").wait(10)


def test_invalid_utf8_is_closed_with_1007(url):
    with connect(url, open_timeout=10) as ws:
        ws.send(b"\xff\xfe", text=True)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
