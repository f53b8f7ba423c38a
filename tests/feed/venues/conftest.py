"""Fixtures for the venue tests: the real feed server, in process, on 127.0.0.1 and any port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import trio

from tickwire.feed.server.server import Server, ServerConfig
from tickwire.simulators import Market

CADENCE_MS = 20.0  # fast enough for the tests, light on a shared machine


@dataclass
class VenueServer:
    """A running `Server` and the venue URLs on its port."""

    server: Server
    caplog: pytest.LogCaptureFixture

    def url(self, path: str) -> str:
        return self.server.url.removesuffix("/v1") + path

    @property
    def handshakes(self) -> list[str]:
        """The paths clients connected to, from the server's log lines."""
        return [
            r.args[1]
            for r in self.caplog.records
            if r.name == "tickwire.server"
            and r.msg.startswith("client %s connected to")
            and isinstance(r.args, tuple)
        ]


async def start(
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
    config: ServerConfig | None = None,
    start_ns: int | None = None,
    market: Market | None = None,
) -> VenueServer:
    caplog.set_level(logging.INFO, logger="tickwire.server")
    config = config or ServerConfig(port=0, cadence_ms=CADENCE_MS)
    server = Server(config, market, start_ns=start_ns)
    await nursery.start(server.run)
    return VenueServer(server, caplog)


@pytest.fixture
async def venue_server(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[VenueServer]:
    """`tickwire serve`'s server on 127.0.0.1, any free port, the default universe."""
    yield await start(nursery, caplog)
