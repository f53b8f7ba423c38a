"""A server restart (its `welcome` carries a new `epoch`) is a Gap("restarted", lost=None)."""

from __future__ import annotations

import json
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from tickwire.feed import Batch, Gap, connect
from tickwire.feed.server.server import Server, ServerConfig


async def _peer(epochs: list[str], nursery: trio.Nursery) -> str:
    """A scripted peer: welcome with the next epoch, answer `symbols`; the first run then ends."""

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept(subprotocol=request.proposed_subprotocols[0])
        epoch = epochs.pop(0)
        await ws.send_message(json.dumps({"type": "welcome", "protocol": 1, "epoch": epoch}))
        try:
            while True:
                msg: dict[str, Any] = json.loads(await ws.get_message())
                if msg["op"] == "symbols":
                    ref = {"symbol": "AAPL", "id": 0}
                    await ws.send_message(
                        json.dumps({"type": "symbols", "id": msg["id"], "symbols": [ref]})
                    )
                    if epochs:  # the first run goes away
                        await ws.aclose(1001, "restarting")
                        return
        except ConnectionClosed:
            return

    server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
    return f"ws://127.0.0.1:{server.port}/v1"


async def test_a_new_epoch_is_a_restart_gap(nursery: trio.Nursery) -> None:
    url = await _peer(["run-1", "run-2"], nursery)
    with trio.fail_after(10):
        async with connect(url, backoff_initial_s=0.01, backoff_max_s=0.05) as feed:
            async for event in feed:
                if isinstance(event, Gap):
                    break
            assert event.reason == "restarted" and event.lost is None
            assert feed.welcome["epoch"] == "run-2"


async def test_the_same_epoch_is_a_plain_reconnect(nursery: trio.Nursery) -> None:
    url = await _peer(["run-1", "run-1"], nursery)
    with trio.fail_after(10):
        async with connect(url, backoff_initial_s=0.01, backoff_max_s=0.05) as feed:
            async for event in feed:
                if isinstance(event, Gap):
                    break
            assert event.reason == "reconnected" and event.lost == 0


async def test_restarting_the_real_server_is_a_restart_gap() -> None:
    # The restart is told by the welcome's epoch: a server without one must fail this test,
    # not skip it (a skip would hide exactly the regression the test is for).
    async with trio.open_nursery() as nursery:
        first = Server(ServerConfig(port=0, heartbeat_ms=200))
        scope = trio.CancelScope()
        first_gone = trio.Event()  # its listening socket is closed: the port is free again

        async def run_first(*, task_status: trio.TaskStatus[str]) -> None:
            try:
                with scope:
                    await first.run(task_status=task_status)
            finally:
                first_gone.set()

        url = await nursery.start(run_first)
        with trio.fail_after(30):
            async with connect(url, backoff_initial_s=0.05, backoff_max_s=0.2) as feed:
                assert "epoch" in feed.welcome, feed.welcome
                await feed.subscribe(["AAPL"])
                await first.shutdown()
                scope.cancel()
                await first_gone.wait()
                port = int(url.rsplit(":", 1)[1].split("/")[0])
                second = Server(ServerConfig(port=port))
                await nursery.start(second.run)
                gap = None
                async for event in feed:
                    if isinstance(event, Gap):
                        gap = event
                    elif isinstance(event, Batch) and gap is not None:
                        break
                assert gap is not None and gap.reason == "restarted" and gap.lost is None
                assert feed.subscription == ["AAPL"]
                await second.shutdown()
        nursery.cancel_scope.cancel()
