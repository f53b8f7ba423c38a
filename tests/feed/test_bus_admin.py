"""Live scenarios on a bus deployment: `tickwire scenario run` against `serve --workers` reaches
the producer through a gateway, and its halt reaches the gateways' clients."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from _redis import RedisServer, require_redis
from _support import tickwire_cmd

require_redis()

from tickwire.feed import ScenarioChange, TradingStatus, connect  # noqa: E402
from tickwire.feed.bus.admin import (  # noqa: E402
    MAX_AGE_S,
    AdminForwarder,
    AdminRequest,
    admin_key,
    take_requests,
)
from tickwire.feed.bus.api import client_for  # noqa: E402

TIMEOUT_S = 60  # three Python processes start on a shared 2-core machine
NS = "adminbus"


def _scenario(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tickwire_cmd("scenario", "run", *args), capture_output=True, text=True, timeout=60
    )


HALT = """
name = "msft-halt"
[[event]]
kind = "halt"
at = "0.5s"
duration = "1s"
symbol = "MSFT"
"""


async def test_scenario_run_on_workers_plays_on_the_producer(
    redis_tcp: RedisServer, procs: Any, tmp_path: Path
) -> None:
    path = tmp_path / "msft-halt.toml"
    path.write_text(HALT, encoding="utf-8")
    sup = procs(
        "sup", "--bus", redis_tcp.url, "--workers", "1", "--port", "0", "--admin-token", "tok"
    )
    with trio.fail_after(TIMEOUT_S):
        await sup.ready()
        http = sup.url.replace("ws://", "http://").removesuffix("/v1")
        wrong = await trio.to_thread.run_sync(_scenario, "halt", "--url", http, "--token", "no")
        assert wrong.stderr.strip().endswith("HTTP 401: admin token missing or wrong")
        async with connect(sup.url, reconnect=False) as feed:
            await feed.subscribe(["AAPL"], snapshot=False)
            ran = await trio.to_thread.run_sync(
                _scenario, str(path), "--symbol", "AAPL", "--url", http, "--token", "tok"
            )
            assert ran.returncode == 0, ran.stderr
            assert ran.stdout.startswith("scenario msft-halt sent to the bus producer "), ran.stdout
            assert "on AAPL: 1 event," in ran.stdout
            seen: list[tuple[str, str]] = []
            async for ev in feed:
                if isinstance(ev, ScenarioChange):
                    seen.append(("scenario", ev.state))
                elif isinstance(ev, TradingStatus):
                    seen.append((ev.symbol, ev.status))
                if ("AAPL", "trading") in seen:
                    break
    # --symbol won over the file; the halt ended as it says
    assert seen == [("scenario", "started"), ("AAPL", "halted"), ("AAPL", "trading")], seen
    logs = sup.logs()
    assert "admin: scenario msft-halt started by 127.0.0.1" in logs and "via gateway" in logs, logs
    assert "Traceback" not in logs


async def test_only_the_active_producer_takes_requests_and_stale_ones_are_dropped(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    played: list[AdminRequest] = []
    active = False
    forwarder = AdminForwarder(redis.url, NS, "gw-1")
    caplog.set_level(logging.WARNING, "tickwire.bus")
    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(forwarder.run)
            nursery.start_soon(take_requests, redis.url, NS, lambda: active, played.append)
            assert forwarder.forward("name=halt", "10.0.0.1:5")
            while forwarder.forwarded < 1:
                await trio.sleep(0.01)
            await trio.sleep(0.6)  # two looks of a standby: it must leave the request alone
            assert played == []
            async with client_for(redis.url) as client:
                sent = time.time_ns() - int(2 * MAX_AGE_S * 1e9)
                old = AdminRequest("name=crash", sent, "g", "p")
                await client.rpush(admin_key(NS), [b"not json", old.pack()])
                active = True
                while not played:
                    await trio.sleep(0.01)
                await trio.sleep(0.3)  # the rest of that look
                left = await client.llen(admin_key(NS))
            nursery.cancel_scope.cancel()
    assert [(r.query, r.gateway, r.peer) for r in played] == [("name=halt", "gw-1", "10.0.0.1:5")]
    assert left == 0
    text = caplog.text
    assert "ignored a malformed entry on the admin list" in text
    assert "dropped a scenario request from p via gateway g" in text
