"""The bus's hot paths: one plain Redis connection, commands packed and replies parsed by hiredis
(the C library Redis's own clients use): the producer's per-flush EVALSHA, a gateway's XREADs.

coredis costs ~180 us of CPU per call here even for a PING (its anyio task machinery), ~0.26 ms
per flush at a 1,000-flush-a-second cadence: most of what a producer spent on writing. This
connection sends a pre-packed command and reads its reply in the writer's own trio loop: one
round trip and a few microseconds of Python per flush. Everything else (the lease, the first
write, a gateway's resync) stays on coredis.

Used only for `redis://` and `unix://` URLs with hiredis installed; `rediss://` (TLS) and a
missing hiredis fall back to coredis (`FastWriter.open` returns None). Failures surface as
`ConnectionError`, which the producer treats as Redis being down.
"""

from __future__ import annotations

import hashlib
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import trio

try:
    import hiredis

    HAVE_HIREDIS = True
except ImportError:  # pragma: no cover - exercised only without it
    HAVE_HIREDIS = False


class FastWriter:
    """One connection to Redis for EVALSHA of one script (re-loaded if Redis lost it)."""

    def __init__(self, stream: trio.abc.Stream, script: str) -> None:
        self._stream = stream
        self._reader = hiredis.Reader()
        self._script = script.encode()
        self._sha = hashlib.sha1(self._script).hexdigest().encode()  # Redis names scripts by it
        # A call cut off (cancelled, timed out) leaves its reply on the wire: unusable since.
        self.broken = False

    @classmethod
    async def open(cls, url: str, script: str) -> FastWriter | None:
        """Connect, authenticate and select the db of `url`; None when not applicable."""
        parts = urlsplit(url)
        if not HAVE_HIREDIS or parts.scheme not in ("redis", "unix"):
            return None
        try:
            if parts.scheme == "unix":
                stream: trio.abc.Stream = await trio.open_unix_socket(unquote(parts.path))
                db = (parse_qs(parts.query).get("db") or ["0"])[0]
            else:
                host, port = parts.hostname or "127.0.0.1", parts.port or 6379
                stream = await trio.open_tcp_stream(host, port)
                db = parts.path.strip("/") or "0"
        except OSError as exc:
            raise ConnectionError(f"cannot connect: {exc}") from None
        writer = cls(stream, script)
        try:
            if parts.password is not None:
                user = unquote(parts.username) if parts.username else "default"
                await writer.call(b"AUTH", user.encode(), unquote(parts.password).encode())
            if db != "0":
                await writer.call(b"SELECT", db.encode())
        except BaseException:
            await writer.aclose()
            raise
        return writer

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def call(self, *args: bytes) -> Any:
        """One command, one reply; an error reply or a broken connection: ConnectionError."""
        reply = await self._round_trip(_pack(args))
        if isinstance(reply, hiredis.ReplyError):
            raise ConnectionError(f"Redis answered {args[0].decode()}: {reply}")
        return reply

    async def evalsha(self, keys: list[str], args: list[bytes]) -> Any:
        """The script on `keys` and `args`; loaded again first if Redis does not know it (a
        restarted Redis has an empty script cache)."""
        command = (b"EVALSHA", self._sha, str(len(keys)).encode(), *map(str.encode, keys), *args)
        packed = _pack(command)
        reply = await self._round_trip(packed)
        if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
            await self.call(b"SCRIPT", b"LOAD", self._script)
            reply = await self._round_trip(packed)
        if isinstance(reply, hiredis.ReplyError):
            raise ConnectionError(f"Redis answered EVALSHA: {reply}")
        return reply

    async def _round_trip(self, packed: bytes) -> Any:
        if self.broken:
            raise ConnectionError("a call on this connection was cut off")
        self.broken = True
        try:
            await self._stream.send_all(packed)
            while (reply := self._reader.gets()) is False:
                data = await self._stream.receive_some(65536)
                if not data:
                    raise ConnectionError("Redis closed the connection")
                self._reader.feed(bytes(data))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise ConnectionError(f"connection lost: {exc}") from None
        except hiredis.ProtocolError as exc:
            raise ConnectionError(f"not a Redis reply: {exc}") from None
        self.broken = False
        return reply


def _pack(args: tuple[bytes, ...]) -> bytes:
    packed: bytes = hiredis.pack_command(cast(Any, args))  # its stub types a 1-tuple
    return packed
