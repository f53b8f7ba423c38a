"""The bus's hot paths: one plain Redis connection, commands packed and replies parsed by hiredis
(the C library Redis's own clients use): the producer's per-flush EVALSHA, a gateway's XREADs.

coredis costs ~180 us of CPU per call here even for a PING (its anyio task machinery), ~0.26 ms
per flush at a 1,000-flush-a-second cadence: most of what a producer spent on writing. This
connection is a non-blocking socket of the standard library: the producer sends each flush's
pre-packed EVALSHA from the market's own step (`send_nowait`, pipelined) and reads the replies
that have come back at the next one (`replies_nowait`), so a flush costs one send, one receive
and a few microseconds of Python, and no task switch (awaiting each reply in a writer task woke
it twice per flush: ~1.7 us per published tick at 500 symbols, measured). A gateway's reads are
one command, one reply (`call`). Everything else (the lease, the first write, a gateway's
resync) stays on coredis.

Used only for `redis://` and `unix://` URLs with hiredis installed; `rediss://` (TLS) and a
missing hiredis fall back to coredis (`FastWriter.open` returns None). Failures surface as
`ConnectionError`, which the producer treats as Redis being down.
"""

from __future__ import annotations

import hashlib
import os
import socket
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import trio

try:
    import hiredis

    HAVE_HIREDIS = True
except ImportError:  # pragma: no cover - exercised only without it
    HAVE_HIREDIS = False


class FastWriter:
    """One connection to Redis for EVALSHA of one script (re-loaded if Redis lost it).

    Two ways to use it, never both at once: `call`/`evalsha` (one command, await its reply),
    or pipelined: `send_nowait` in the caller's step (a non-blocking send, no task switch) and
    `replies_nowait`/`wait_replies` for what came back, in order. The socket is a plain
    non-blocking one of the standard library; trio waits on it through `wait_readable` and
    `wait_writable`.
    """

    def __init__(self, sock: socket.socket, script: str) -> None:
        self._sock = sock
        self._reader = hiredis.Reader()
        self._script = script.encode()
        self._sha = hashlib.sha1(self._script).hexdigest().encode()  # Redis names scripts by it
        self._unsent = bytearray()  # what `send_nowait` could not send yet (`drain` sends it)
        # A call cut off (cancelled, timed out) leaves its reply on the wire: unusable since.
        self.broken = False

    @classmethod
    async def open(cls, url: str, script: str) -> FastWriter | None:
        """Connect, authenticate and select the db of `url`, and load the script; None when
        not applicable."""
        parts = urlsplit(url)
        if not HAVE_HIREDIS or parts.scheme not in ("redis", "unix"):
            return None
        try:
            if parts.scheme == "unix":
                family, where = socket.AF_UNIX, unquote(parts.path)
                addrs: list[Any] = [where]
                db = (parse_qs(parts.query).get("db") or ["0"])[0]
            else:
                host, port = parts.hostname or "127.0.0.1", parts.port or 6379
                found = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                family, addrs = found[0][0], [found[0][4]]
                db = parts.path.strip("/") or "0"
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await _connect(sock, addrs[0])
            except BaseException:
                sock.close()
                raise
            if family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            raise ConnectionError(f"cannot connect: {exc}") from None
        writer = cls(sock, script)
        try:
            if parts.password is not None:
                user = unquote(parts.username) if parts.username else "default"
                await writer.call(b"AUTH", user.encode(), unquote(parts.password).encode())
            if db != "0":
                await writer.call(b"SELECT", db.encode())
            if script:
                await writer.call(b"SCRIPT", b"LOAD", writer._script)
        except BaseException:
            await writer.aclose()
            raise
        return writer

    async def aclose(self) -> None:
        trio.lowlevel.notify_closing(self._sock)
        self._sock.close()
        await trio.lowlevel.checkpoint()

    async def call(self, *args: bytes) -> Any:
        """One command, one reply; an error reply or a broken connection: ConnectionError."""
        reply = await self._round_trip(_pack(args))
        if isinstance(reply, hiredis.ReplyError):
            raise ConnectionError(f"Redis answered {args[0].decode()}: {reply}")
        return reply

    def evalsha_command(self, keys: list[str], args: list[bytes]) -> bytes:
        """The packed EVALSHA of the script on `keys` and `args` (for `send_nowait`)."""
        return _pack(
            (b"EVALSHA", self._sha, str(len(keys)).encode(), *map(str.encode, keys), *args)
        )

    def script_missing(self, reply: Any) -> bool:
        """Whether `reply` says Redis does not know the script (its cache was flushed)."""
        return isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT")

    async def evalsha(self, keys: list[str], args: list[bytes]) -> Any:
        """The script on `keys` and `args`; loaded again first if Redis does not know it (a
        restarted Redis has an empty script cache)."""
        packed = self.evalsha_command(keys, args)
        reply = await self._round_trip(packed)
        if self.script_missing(reply):
            await self.load_script()
            reply = await self._round_trip(packed)
        if isinstance(reply, hiredis.ReplyError):
            raise ConnectionError(f"Redis answered EVALSHA: {reply}")
        return reply

    async def load_script(self) -> None:
        await self.call(b"SCRIPT", b"LOAD", self._script)

    # ------------------------------------------------------------------ pipelined

    @property
    def unsent(self) -> int:
        """Bytes `send_nowait` has not sent yet."""
        return len(self._unsent)

    def send_nowait(self, packed: bytes) -> None:
        """Send `packed` as far as the socket takes it now, never waiting; what remains goes
        after it, by `drain` (or the next `send_nowait`). ConnectionError if the connection is
        gone."""
        if self._unsent or not packed:
            self._unsent += packed
        else:  # the usual case: straight from `packed`, keeping no copy
            sent = self._send(packed)
            if sent == len(packed):
                return
            self._unsent += packed[sent:]
        while self._unsent and (sent := self._send(self._unsent)):
            del self._unsent[:sent]

    def _send(self, data: bytes | bytearray) -> int:
        """Bytes the socket took of `data` now (0 when it takes none)."""
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise ConnectionError(f"connection lost: {exc}") from None

    async def drain(self) -> None:
        """Until everything `send_nowait` was given is sent."""
        while self._unsent:
            await _wait(trio.lowlevel.wait_writable, self._sock)
            self.send_nowait(b"")

    def replies_nowait(self) -> list[Any]:
        """The replies that have arrived, oldest first (error replies as `hiredis.ReplyError`),
        never waiting."""
        try:
            while True:
                data = self._sock.recv(65536)
                if not data:
                    raise ConnectionError("Redis closed the connection")
                self._reader.feed(data)
                if len(data) < 65536:
                    break
        except BlockingIOError:
            pass
        except OSError as exc:
            raise ConnectionError(f"connection lost: {exc}") from None
        out = []
        try:
            while (reply := self._reader.gets()) is not False:
                out.append(reply)
        except hiredis.ProtocolError as exc:
            raise ConnectionError(f"not a Redis reply: {exc}") from None
        return out

    async def wait_replies(self) -> list[Any]:
        """At least one reply (see `replies_nowait`)."""
        while not (got := self.replies_nowait()):
            await _wait(trio.lowlevel.wait_readable, self._sock)
        return got

    async def _round_trip(self, packed: bytes) -> Any:
        if self.broken:
            raise ConnectionError("a call on this connection was cut off")
        self.broken = True
        self.send_nowait(packed)
        await self.drain()
        reply = (await self.wait_replies())[0]  # nothing else is in flight in this mode
        self.broken = False
        return reply


async def _wait(until: Any, sock: socket.socket) -> None:
    try:
        await until(sock)
    except trio.ClosedResourceError:
        raise ConnectionError("the connection was closed") from None


async def _connect(sock: socket.socket, address: Any) -> None:
    """A non-blocking connect, waited for in trio."""
    try:
        sock.connect(address)
        return
    except (BlockingIOError, InterruptedError):
        pass
    await trio.lowlevel.wait_writable(sock)
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))


def _pack(args: tuple[bytes, ...]) -> bytes:
    packed: bytes = hiredis.pack_command(cast(Any, args))  # its stub types a 1-tuple
    return packed
