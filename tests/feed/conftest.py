"""Fixtures for the feed tests: an in-process server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from tickwire.feed.server import Server, ServerConfig


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[Server]:
    """A real server on 127.0.0.1, any free port; `server.url` says where."""
    srv = Server(ServerConfig(port=0, heartbeat_ms=200))
    await nursery.start(srv.run)
    yield srv
