"""Fixtures for the feed tests: an in-process server on loopback, throwaway redis-servers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio
from _redis import RedisServer

from tickwire.feed.server import Server, ServerConfig


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """`main(["serve", ...])` run in-process configures the root logger as the command does
    (its handler on this test's stderr); give later tests, and caplog, the logger they expect."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
async def server(nursery: trio.Nursery) -> AsyncIterator[Server]:
    """A real server on 127.0.0.1, any free port; `server.url` says where."""
    srv = Server(ServerConfig(port=0, heartbeat_ms=200))
    await nursery.start(srv.run)
    yield srv


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server on a unix socket (modules that use it call `_redis.require_redis()`)."""
    server = RedisServer(tmp_path, tcp=False)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis_tcp(tmp_path: Path) -> Iterator[RedisServer]:
    """The same on a free TCP port (and a unix socket)."""
    server = RedisServer(tmp_path, tcp=True)
    server.start()
    yield server
    server.kill()
