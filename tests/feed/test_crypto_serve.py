"""`tickwire serve --universe crypto` end to end: the real server process, read by a /v1 client,
by `tickwire tail` and by ccxt, every one showing sizes as the asset's quantity (units x
size_unit, exact), the same quantity the venue REST API writes."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
import trio
from _support import serve_process, tickwire_cmd

from tickwire.feed import Batch, connect
from tickwire.feed.quantity import Quantities, quantity

DEADLINE_S = 60  # generous for a shared 2-core machine


@pytest.fixture(scope="module")
def crypto_url() -> Iterator[str]:
    with serve_process("--universe", "crypto", "--book-depth", "20", "--drain-min-s", "0") as (
        _,
        url,
    ):
        yield url


def _http(url: str, path: str) -> str:
    return url.replace("ws://", "http://", 1).removesuffix("/v1") + path


def _get(url: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=DEADLINE_S) as reply:
        return orjson.loads(reply.read())


def test_serve_accepts_a_crypto_universe_file(tmp_path) -> None:
    """A universe file with crypto rows is served (it used to be refused)."""
    (tmp_path / "c.csv").write_text(
        "symbol,price,tick_size,lot_size,kind\nBTC-USD,9e4,0.01,1e-5,crypto\n"
    )
    with serve_process("--universe", str(tmp_path / "c.csv")) as (_, url):
        out = subprocess.run(
            tickwire_cmd("tail", "BTC-USD", "--url", url, "--count", "3"),
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
        )
    assert out.returncode == 0, out.stderr
    assert all(" BTC-USD " in line for line in out.stdout.splitlines())


async def test_a_v1_client_reads_exact_quantities(crypto_url: str) -> None:
    """The `symbols` reply gives each pair's size unit (its lot); a tick's last_size x size_unit
    is the very quantity the Coinbase REST API prints for that trade ("0.00210" BTC)."""
    with trio.fail_after(DEADLINE_S):
        async with connect(crypto_url) as feed:
            refs = await feed.symbols()
            units = {r["symbol"]: r["size_unit"] for r in refs}
            assert units["BTC-USD"] == 0.00001 and units["ETH-USD"] == 0.0001
            assert all(r["size_unit"] == r["lot_size"] for r in refs)
            qty = Quantities(refs)
            btc = qty.ids["BTC-USD"]
            await feed.subscribe(["BTC-USD"], snapshot=True)
            async for event in feed:
                if isinstance(event, Batch) and len(event.ticks):
                    tick = event.ticks[-1]
                    if tick["last_size"] > 0:
                        break
    last, units_traded = float(tick["last"]), int(tick["last_size"])
    shown = qty.text(btc, units_traded)
    assert re.fullmatch(r"\d+\.\d{5}", shown)  # the lot's five decimals, never a count of lots
    assert Decimal(shown) == units_traded * Decimal("0.00001")
    trades = await trio.to_thread.run_sync(
        _get, _http(crypto_url, "/coinbase/products/BTC-USD/trades?limit=1000")
    )
    sizes = {Decimal(t["size"]) for t in trades if float(t["price"]) == last}
    assert Decimal(shown) in sizes, (shown, sizes)


def test_tail_prints_fractional_sizes(crypto_url: str) -> None:
    out = subprocess.run(
        tickwire_cmd("tail", "BTC-USD", "XRP-USD", "--url", crypto_url, "--count", "20"),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 20
    for line in lines:
        # time sym bid x ask bid_size x ask_size last LAST last_size [side] vol VOLUME
        f = line.split()
        sym, bid, bs, asz, last_size, vol = f[1], f[2], f[5], f[7], f[10], f[-1]
        places = {"BTC-USD": 5, "XRP-USD": 1}[sym]  # lots of 0.00001 BTC and 0.1 XRP
        for size in (bs, asz, last_size, vol):
            assert re.fullmatch(rf"\d+\.\d{{{places}}}", size), line
        assert len(bid.split(".")[1]) == {"BTC-USD": 2, "XRP-USD": 4}[sym], line  # the tick


def test_ccxt_coinbase_reads_the_served_crypto_market(crypto_url: str) -> None:
    """ccxt's coinbaseexchange, only its REST URL pointed at the real server process."""
    ccxt = pytest.importorskip("ccxt", reason="ccxt is not installed")
    exchange = ccxt.coinbaseexchange({"timeout": 20_000})
    exchange.urls["api"]["public"] = _http(crypto_url, "/coinbase")
    markets = exchange.load_markets()
    btc = markets["BTC/USD"]
    assert btc["id"] == "BTC-USD" and btc["precision"]["amount"] == 0.00001
    ticker = exchange.fetch_ticker("BTC/USD")
    assert 0 < ticker["bid"] < ticker["ask"] and ticker["last"] > 0
    size = Decimal(str(ticker["info"]["size"]))
    assert size > 0 and size % Decimal("0.00001") == 0  # a whole number of lots


def test_quantity_is_exact() -> None:
    assert quantity(210, 0.00001) == "0.00210"
    assert quantity(3, 0.1) == "0.3" and quantity(300) == "300"
    assert quantity(123456789012, 1e-8) == "1234.56789012"  # a float product would drift
    assert Quantities([{"id": 0, "symbol": "X", "size_unit": 0.0001}]).text(0, 21) == "0.0021"
