"""Fixtures for the feed tests: an in-process server on loopback, throwaway redis-servers."""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from _browser import require_chromium
from _redis import Bus, Proc, RedisServer

from tickwire.feed.server.server import Server, ServerConfig


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


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Any]:
    """`procs(name, *argv)` starts a real process logging to tmp_path/NAME.log; every one still
    running at the end is killed (after SIGCONT: a stopped one would not be reaped)."""
    started: list[Proc] = []

    def start(name: str, *args: str) -> Proc:
        proc = Proc(tmp_path / f"{name}.log", *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.p.poll() is None:
            proc.p.send_signal(signal.SIGCONT)
        proc.stop(signal.SIGKILL if proc.p.poll() is None else signal.SIGINT, timeout=5)


@pytest.fixture
def bus(redis: RedisServer, procs: Any) -> Bus:
    """`bus.producer(NAME, *ARGS)` and `bus.gateway(NAME, *ARGS)`: real processes on `redis`."""
    return Bus(redis.url, procs)


@pytest.fixture
def chromium() -> None:
    """Browser tests (`pytestmark = pytest.mark.usefixtures("chromium")`): skip without chromium
    and playwright locally, fail under CI=true (`_browser.require_chromium`)."""
    require_chromium()
