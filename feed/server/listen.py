"""The accept side of a server: its listening sockets and one accept loop per socket.

Accepting never stops while listening, even when full (a new socket sheds the oldest silent
handshake, `ws.connection.admit`); running out of descriptors is logged, waited out, never fatal.
A drain or a shutdown closes the sockets, which ends the loops and frees the port.
"""

from __future__ import annotations

import errno
import logging
import socket

import trio

from tickwire.feed.ws.connection import Shell, admit
from tickwire.feed.ws.transport import configure, open_listeners

log = logging.getLogger("tickwire.server")

EMFILE_LOG_S = 10.0  # out of descriptors: say so at most this often


class Listeners:
    """A server's listening sockets and their accept loops."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.accepting = trio.CancelScope()  # cancelled: the listeners are closed for good
        self._emfile_logged_s = -EMFILE_LOG_S

    def open(self, host: str, port: int, *, reuse_port: bool) -> int:
        """Bind and listen; the port bound (the first socket's)."""
        self.sockets = open_listeners(host, port, reuse_port=reuse_port)
        port_bound: int = self.sockets[0].getsockname()[1]
        return port_bound

    @property
    def closed(self) -> bool:
        """Whether they were closed for good (a drain past its listening time)."""
        return self.accepting.cancel_called

    def stop(self) -> None:
        """Close for good: from here on a new client is refused by the kernel."""
        self.accepting.cancel()
        self.close()

    def close(self) -> None:
        """Close every listening socket (the port can be bound again)."""
        for lsock in self.sockets:
            if lsock.fileno() != -1:
                trio.lowlevel.notify_closing(lsock)  # its accept loop returns
                lsock.close()

    async def accept_all(self, shell: Shell) -> None:
        """One accept loop per listening socket, until a drain closes the listeners."""
        try:
            with self.accepting:
                async with trio.open_nursery() as nursery:
                    for lsock in self.sockets:
                        nursery.start_soon(self._accept, lsock, shell)
        finally:
            self.close()

    async def _accept(self, lsock: socket.socket, shell: Shell) -> None:
        """Accept for ever, even when full: a new socket sheds the oldest handshake that has
        not sent its request (`admit`), so silent sockets cannot stop /livez or new clients.
        Running out of descriptors is logged, waited out, never fatal."""
        while lsock.fileno() != -1:  # until a drain closes it
            try:
                sock, addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                try:
                    await trio.lowlevel.wait_readable(lsock)
                except trio.ClosedResourceError:
                    return
                continue
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._out_of_descriptors(exc, shell.registry.held)
                    await trio.sleep(0.1)
                    continue
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue  # the client gave up in the kernel's queue
                raise
            configure(sock)
            shell.nursery.start_soon(admit(sock, addr, shell).run)
            await trio.lowlevel.checkpoint()  # let its handshake start before the next accept

    def _out_of_descriptors(self, exc: OSError, held: int) -> None:
        now = trio.current_time()
        if now - self._emfile_logged_s >= EMFILE_LOG_S:
            self._emfile_logged_s = now
            log.warning(
                "cannot accept: %s (%d sockets held); raise the descriptor limit "
                "(ulimit -n) or lower --max-connections",
                exc.strerror,
                held,
            )
