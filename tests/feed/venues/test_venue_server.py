"""The dialects on the real server's connection layer: the `tickwire serve` command, per-venue
token rules, slow readers (the venue's overflow on tickwire's bounded buffers), `/v1` beside them.
"""

from __future__ import annotations

import ast
import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Request,
    TextMessage,
)

from tickwire.feed import Batch
from tickwire.feed.client.feed import connect as feed_connect
from tickwire.feed.server.server import ServerConfig

from ..._support import serve_process
from .conftest import CADENCE_MS, VenueServer, start


async def _in_thread(fn: Any) -> Any:
    with trio.fail_after(30):
        return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)


def test_tickwire_serve_speaks_every_dialect_beside_v1() -> None:
    """The real command: Binance combined streams, Alpaca JSON and Coinbase on one port."""
    with serve_process("--cadence", "20") as (_, url):
        base = url.removesuffix("/v1")
        combined = f"{base}/binance/stream?streams=aapl@bookTicker/aapl@trade"
        with connect(combined, open_timeout=10) as ws:
            seen: set[str] = set()
            while seen != {"aapl@bookTicker", "aapl@trade"}:
                msg = json.loads(ws.recv(timeout=10))
                seen.add(msg["stream"])
                assert msg["data"]["s"] == "AAPL"
        with connect(f"{base}/alpaca/v2/iex", open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10)) == [{"T": "success", "msg": "connected"}]
            ws.send(json.dumps({"action": "auth", "key": "k", "secret": "s"}))
            assert json.loads(ws.recv(timeout=10))[0]["msg"] == "authenticated"
            ws.send(json.dumps({"action": "subscribe", "quotes": ["MSFT"]}))
            assert json.loads(ws.recv(timeout=10))[0]["T"] == "subscription"
            quote = json.loads(ws.recv(timeout=10))[0]
            assert quote["T"] == "q" and quote["S"] == "MSFT" and quote["bp"] < quote["ap"]
        with connect(f"{base}/coinbase", open_timeout=10) as ws:
            sub = {"type": "subscribe", "product_ids": ["AAPL"], "channels": ["ticker"]}
            ws.send(json.dumps(sub))
            assert json.loads(ws.recv(timeout=10))["type"] == "subscriptions"
            msg = json.loads(ws.recv(timeout=10))
            assert msg["type"] == "ticker" and msg["product_id"] == "AAPL"
        with connect(url, open_timeout=10) as ws:  # /v1 still speaks tickwire's protocol
            assert json.loads(ws.recv(timeout=10))["type"] == "welcome"


async def test_tokens_per_venue(nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> None:
    """With --token, Binance and Coinbase need it as /v1 does (header or ?token=); Alpaca's
    own auth message carries it instead, so its SDK connects and is told 402 if it is wrong."""
    config = ServerConfig(port=0, cadence_ms=CADENCE_MS, tokens=("s3cret",))
    srv = await start(nursery, caplog, config)

    def status(path: str, headers: dict[str, str] | None = None) -> int:
        try:
            with connect(srv.url(path), additional_headers=headers, open_timeout=10):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert await _in_thread(lambda: status("/binance/ws/aapl@trade")) == 401
    assert await _in_thread(lambda: status("/binance/ws/aapl@trade?token=s3cret")) == 101
    assert await _in_thread(lambda: status("/coinbase")) == 401
    bearer = {"Authorization": "Bearer s3cret"}
    assert await _in_thread(lambda: status("/coinbase", bearer)) == 101
    assert await _in_thread(lambda: status("/alpaca/v2/iex")) == 101
    assert await _in_thread(lambda: status("/alpaca/v2/nope")) == 404
    await _released(srv)


async def _released(srv: VenueServer) -> bool:
    with trio.fail_after(10):
        while srv.server.registry.held:
            await trio.sleep(0.01)  # polling the server's state, not a fixed delay
    return True


async def test_v1_and_venues_share_the_market(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """A `/v1` subscriber and a Binance one see the same AAPL trades (same prices)."""
    srv = await start(nursery, caplog)

    def binance() -> list[str]:
        with connect(srv.url("/binance/ws/aapl@trade"), open_timeout=10) as ws:
            return [json.loads(ws.recv(timeout=10))["p"] for _ in range(3)]

    with trio.fail_after(30):
        async with feed_connect(srv.server.url) as feed:
            await feed.subscribe(["AAPL"])
            prices = await _in_thread(binance)
            assert all(float(p) > 0 for p in prices)
            lasts = {round(float(p), 6) for p in prices}
            seen: set[float] = set()
            async for event in feed:
                if isinstance(event, Batch):
                    seen.update(round(float(x), 6) for x in event.ticks["last"])
                if lasts & seen:
                    break
    assert len(srv.server.connections) <= 1


async def test_slow_alpaca_reader_gets_407_then_close(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that stops reading: its buffer fills, Alpaca's 407 follows the data, close 1008;
    a Binance reader on the same server keeps getting data."""
    srv = await start(nursery, caplog, ServerConfig(port=0, cadence_ms=5.0, activity=10.0))
    srv.server.venue_ctx.buffer_bytes = 64 * 1024
    ws = WSConnection(ConnectionType.CLIENT)
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with trio.fail_after(30):
        await sock.connect(("127.0.0.1", urlsplit(srv.server.url).port))
        stream = trio.SocketStream(sock)
        await stream.send_all(ws.send(Request(host="127.0.0.1", target="/alpaca/v2/iex")))
        events: list[Any] = []
        while not any(isinstance(e, AcceptConnection) for e in events):
            ws.receive_data(await stream.receive_some(65536))
            events += list(ws.events())
        for msg in (
            {"action": "auth", "key": "k", "secret": "s"},
            {"action": "subscribe", "trades": ["*"], "quotes": ["*"]},
        ):
            await stream.send_all(ws.send(TextMessage(json.dumps(msg))))
        core = next(c.core for c in srv.server.connections if c.route == "/alpaca/v2/iex")
        while core.close_code is None:  # not reading: wait for the server to give up on us
            await trio.sleep(0.01)  # polling the server's state, not a fixed delay
        texts: list[str] = []
        close: CloseConnection | None = None
        while close is None:
            data = await stream.receive_some(1 << 20)
            if not data:
                break
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, TextMessage):
                    texts.append(event.data)
                elif isinstance(event, CloseConnection):
                    close = event
        await stream.aclose()
    assert close is not None and close.code == 1008
    assert json.loads(texts[-1]) == [{"T": "error", "code": 407, "msg": "slow client"}]
    await _released(srv)


def test_readme_python_binance_example_runs() -> None:
    """The README's python-binance example, unchanged but for the port, against the command."""
    pytest.importorskip("binance", reason="python-binance is not installed")
    readme = Path(__file__).resolve().parents[3] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.S)
    example = next(b for b in blocks if "BinanceSocketManager" in b)
    with serve_process("--cadence", "20") as (_, url):
        code = example.replace("ws://127.0.0.1:8765/", url.removesuffix("v1"))
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
    assert out.returncode == 0, out.stderr[-2000:]
    trade = ast.literal_eval(out.stdout.strip())
    assert trade["e"] == "trade" and trade["s"] == "AAPL" and float(trade["p"]) > 0
