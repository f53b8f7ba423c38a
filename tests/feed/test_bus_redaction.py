"""The Redis password in `--bus redis://:PASSWORD@host` is never printed: not in the ready
lines, the log lines, the unauthenticated `/readyz` body, `--print-config` or an error.

A real redis-server with `requirepass`, the real supervised `tickwire serve --workers 1`.
Skips locally without redis-server or coredis, fails under CI=true (tests/_redis.py).
"""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _redis import RedisServer, require_redis, supervised
from _support import tickwire_cmd

require_redis()

SECRET = "s3cret-Pa55"
TIMEOUT_S = 30.0


@pytest.fixture
def redis_pw(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, tcp=True, password=SECRET)
    server.start()
    yield server
    server.kill()


def _readyz(http: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{http}/readyz", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _poll(http: str, done: Callable[[int, str], bool]) -> str:
    """/readyz until `done(status, body)`; no event to wait on from out here, so poll, bounded."""
    deadline = time.monotonic() + TIMEOUT_S
    while not done(*(answer := _readyz(http))):
        assert time.monotonic() < deadline, answer
        time.sleep(0.05)
    return answer[1]


def test_the_bus_password_is_in_no_line_log_or_readyz(redis_pw: RedisServer, tmp_path: Path):
    assert f":{SECRET}@" in redis_pw.url
    err_path = tmp_path / "sup.log"
    args = ("--bus", redis_pw.url, "--workers", "1", "--port", "0")
    with supervised(err_path, *args) as (sup, line):
        assert "with a producer and 1 gateway" in line, (line, err_path.read_text())
        assert SECRET not in line and f"over redis://:***@127.0.0.1:{redis_pw.port}/0" in line
        http = line.split(" on ", 1)[1].split()[0].replace("ws://", "http://").removesuffix("/v1")
        _poll(http, lambda status, body: status == 200)  # data flowing through the bus
        redis_pw.kill()  # the bus goes down: the gateway says so in /readyz and in its log
        body = _poll(http, lambda status, body: "bus is down" in body)
        assert body == f"not ready: the bus is down (redis://:***@127.0.0.1:{redis_pw.port}/0)\n"
        sup.send_signal(signal.SIGINT)
        assert sup.wait(timeout=TIMEOUT_S) == 0
        logs = err_path.read_text()
        assert "bus up: redis://:***@" in logs and "waiting for a producer on redis://:***@" in logs
        assert "bus down: redis://:***@" in logs, logs
        assert SECRET not in logs


def test_print_config_and_a_bad_bus_url_hide_the_password() -> None:
    url = f"redis://admin:{SECRET}@10.0.0.5:6379/0"
    out = subprocess.run(
        tickwire_cmd("serve", "--bus", url, "--role", "gateway", "--print-config"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert 'bus = "redis://admin:***@10.0.0.5:6379/0"  # flag' in out.stdout
    assert SECRET not in out.stdout
    bad = subprocess.run(
        tickwire_cmd("serve", "--bus", f"http://:{SECRET}@h/0", "--role", "gateway"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("tickwire: error: --bus must be redis://")
    assert bad.stderr.strip().endswith("got 'http://:***@h/0'") and SECRET not in bad.stderr


def test_a_client_command_hides_the_password_of_its_url() -> None:
    out = subprocess.run(
        tickwire_cmd("stats", "--url", f"ws://me:{SECRET}@127.0.0.1:1/v1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert SECRET not in out.stderr and "ws://me:***@127.0.0.1:1/v1" in out.stderr, out.stderr
