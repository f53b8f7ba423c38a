"""An echo server on tickwire's own listener, HTTP front and WebSocket core (test-only).

For conformance suites (Autobahn|Testsuite's fuzzing client): every text and binary message is
sent back as it came, up to 16 MiB. Usage::

    python tests/feed/echo_server.py [--port 0]

The first line on stdout is the URL (`ws://127.0.0.1:PORT/`); it serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable

import trio

from tickwire.feed.ws import http
from tickwire.feed.ws.connection import Connection, Registry, Shell
from tickwire.feed.ws.frames import OP_BINARY, OP_TEXT, frame
from tickwire.feed.ws.transport import configure, open_listeners
from tickwire.feed.ws.websocket import WebSocketCore

MAX_MESSAGE = 16 * 1024 * 1024


class EchoCore(WebSocketCore):
    """Each complete message back to the client, whole, as text or binary as it came."""

    __slots__ = ()

    def _on_message(self, message: str | bytes, now: float) -> None:
        if isinstance(message, str):
            self._queue(frame(message.encode(), OP_TEXT), now)
        else:
            self._queue(frame(message, OP_BINARY), now)


def _make_core(accept: http.Accept, wake: Callable[[], None], now: float) -> EchoCore:
    # No frame budget: Autobahn's cases send messages of 65,536 frames at once.
    return EchoCore(
        max_message=MAX_MESSAGE, stall_s=30.0, close_timeout_s=2.0, now=now, frame_budget=False
    )


async def serve(port: int) -> None:
    listeners = open_listeners("127.0.0.1", port)
    registry = Registry(max_connections=1000)
    policy = http.Policy(ws_routes={"/": ()}, allow_origins=("*",))
    async with trio.open_nursery() as nursery:
        shell = Shell(
            policy=policy, make_core=_make_core, registry=registry, nursery=nursery, woken=[]
        )

        async def accept(lsock: object) -> None:
            import socket

            assert isinstance(lsock, socket.socket)
            while True:
                try:
                    sock, addr = lsock.accept()
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(lsock)
                    continue
                configure(sock)
                registry.hold(addr[0])
                nursery.start_soon(Connection(sock, addr, shell).run)

        for lsock in listeners:
            nursery.start_soon(accept, lsock)
        print(f"ws://127.0.0.1:{listeners[0].getsockname()[1]}/", flush=True)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        nursery.cancel_scope.cancel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log-level", default="warning")
    args = ap.parse_args()
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    trio.run(serve, args.port)


if __name__ == "__main__":
    main()
