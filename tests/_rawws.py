"""A raw WebSocket client and a logged `tickwire serve`, for the attack and soak tests.

The attacks of issue 9 need bytes no polite client sends (an upgrade then an early close, a reset,
bad frames, a frame in the handshake's packet), so the client here writes RFC 6455 by hand on a
trio socket; and the server runs as the real `tickwire serve` with its stderr in a file (a pipe
nobody reads would block a server that logs a lot) and its descriptors and RSS readable in /proc.
"""

from __future__ import annotations

import base64
import os
import resource
import signal
import socket
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import orjson
import trio
from _support import tickwire_cmd

HOST = "127.0.0.1"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
KEY = base64.b64encode(b"tickwire-test-16").decode()


# --------------------------------------------------------------------------- the server


@dataclass
class Served:
    """A running `tickwire serve`: its process, port and stderr file."""

    proc: subprocess.Popen[str]
    port: int
    url: str
    log_path: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fds(self) -> int:
        """Open descriptors of the server process, from /proc."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, timeout_s: float = 10) -> int:
        """SIGINT, then wait; the exit code (a kill after the timeout is a test failure)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"server ignored SIGINT for {timeout_s} s") from None
        return self.proc.returncode


@contextmanager
def serve(*args: str, nofile: int | None = None) -> Iterator[Served]:
    """Run `tickwire serve --port 0 ARGS`, stderr to a file, optionally under a descriptor limit
    of `nofile` (soft and hard), and yield it once it listens; always stopped and reaped."""

    def limit() -> None:  # runs in the child before exec
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    fd, log_path = tempfile.mkstemp(prefix="tickwire-serve-", suffix=".log")
    with os.fdopen(fd, "w") as err:
        proc = subprocess.Popen(
            tickwire_cmd("serve", "--port", "0", *args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            preexec_fn=limit if nofile is not None else None,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if " on ws" not in line:
            proc.kill()
            proc.wait()
            with open(log_path) as f:
                raise AssertionError(f"server did not start: {line!r} {f.read()[-2000:]}")
        url = line.split(" on ", 1)[1].split()[0]
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        served = Served(proc, port, url, log_path)
        yield served
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        os.unlink(log_path)


# --------------------------------------------------------------------------- raw client


def upgrade_request(
    path: str = "/v1", headers: dict[str, str] | None = None, port: int = 0
) -> bytes:
    """A browser-like WebSocket upgrade request."""
    hdrs = {
        "Host": f"{HOST}:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
        **(headers or {}),
    }
    lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in hdrs.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def client_frame(
    payload: bytes, opcode: int = OP_TEXT, *, fin: bool = True, mask: bool = True
) -> bytes:
    """One client frame; masked as RFC 6455 requires unless `mask=False` (an attack)."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes((first, mbit | n))
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", first, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def text_frame(obj: object) -> bytes:
    return client_frame(orjson.dumps(obj), OP_TEXT)


async def open_socket(port: int, *, rcvbuf: int | None = None) -> trio.SocketStream:
    """A TCP connection to the server; `rcvbuf` is set before connecting, so it sticks."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    await sock.connect((HOST, port))
    return trio.SocketStream(sock)


def reset(stream: trio.SocketStream) -> None:
    """Close with an RST instead of a FIN (SO_LINGER 0)."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


class Reader:
    """Buffered reads of an HTTP response head, then of server frames."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.eof = False

    async def _more(self) -> bool:
        data = await self.stream.receive_some(65536)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    async def response(self) -> tuple[int, str, dict[str, str], bytes]:
        """(status, status line, headers, body) of an HTTP response; the body by Content-Length
        when the response is not a 101."""
        while b"\r\n\r\n" not in self.buf:
            if not await self._more():
                raise EOFError(f"connection closed before a response: {bytes(self.buf)!r}")
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        self.buf = bytearray(rest)
        body = b""
        if status != 101:
            n = int(headers.get("content-length", "0"))
            while len(self.buf) < n and await self._more():
                pass
            body, self.buf = bytes(self.buf[:n]), self.buf[n:]
        return status, lines[0], headers, body

    async def _need(self, n: int) -> None:
        while len(self.buf) < n:
            if not await self._more():
                raise EOFError("connection closed inside a frame")

    async def frame(self) -> tuple[int, bytes]:
        """The next server frame as (opcode, payload); EOFError if TCP closed first."""
        await self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise AssertionError("the server masked a frame")
        n, off = b1 & 0x7F, 2
        if n == 126:
            await self._need(4)
            n, off = struct.unpack_from("!H", self.buf, 2)[0], 4
        elif n == 127:
            await self._need(10)
            n, off = struct.unpack_from("!Q", self.buf, 2)[0], 10
        await self._need(off + n)
        payload = bytes(self.buf[off : off + n])
        del self.buf[: off + n]
        return b0 & 0x0F, payload

    async def message(self) -> dict[str, object]:
        """The next JSON text message, answering nothing and skipping pings."""
        while True:
            op, payload = await self.frame()
            if op == OP_TEXT:
                return orjson.loads(payload)  # type: ignore[no-any-return]
            if op == OP_CLOSE:
                raise AssertionError(f"closed: {close_code(payload)} {payload[2:]!r}")

    async def until_close(self) -> int | None:
        """Read frames until a close frame: its code (None if TCP ended without one)."""
        while True:
            try:
                op, payload = await self.frame()
            except EOFError:
                return None
            if op == OP_CLOSE:
                return close_code(payload)

    async def until_eof(self) -> None:
        """Read (and drop) everything until the server closes TCP."""
        self.buf.clear()
        while await self._more():
            self.buf.clear()


def close_code(payload: bytes) -> int:
    return struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005


async def handshake(
    port: int,
    path: str = "/v1",
    headers: dict[str, str] | None = None,
    *,
    rcvbuf: int | None = None,
) -> tuple[Reader, int, bytes]:
    """Send an upgrade; (reader, status, body). On 101 the reader is ready for frames."""
    stream = await open_socket(port, rcvbuf=rcvbuf)
    await stream.send_all(upgrade_request(path, headers, port))
    reader = Reader(stream)
    status, _, _, body = await reader.response()
    return reader, status, body


async def welcome(port: int, path: str = "/v1", headers: dict[str, str] | None = None) -> Reader:
    """A client that completed the handshake and read its welcome: the server is serving."""
    reader, status, body = await handshake(port, path, headers)
    assert status == 101, f"handshake got HTTP {status}: {body!r}"
    msg = await reader.message()
    assert msg["type"] == "welcome", msg
    return reader


async def serving(port: int, path: str = "/v1", headers: dict[str, str] | None = None) -> None:
    """Assert the server serves a new client (handshake and welcome), then close it."""
    reader = await welcome(port, path, headers)
    await reader.stream.aclose()
