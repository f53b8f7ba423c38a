"""The dashboard under a real `tickwire serve --universe crypto` process: sizes and volumes are
the asset's quantities (0.00210 BTC), never counts of lots; shares read as they always did."""

from __future__ import annotations

import asyncio
import functools
import re
from decimal import Decimal
from typing import Any

from _support import serve_process
from dash_helpers import SIZE, NotedApp, until
from textual.pilot import Pilot

from tickwire.dashboard import fmt
from tickwire.dashboard.clock import SystemClock
from tickwire.dashboard.detail import quote_content
from tickwire.feed import connect
from tickwire.feed.quantity import Quantities


def test_watchlist_and_detail_show_fractional_sizes() -> None:
    with serve_process("--universe", "crypto", "--drain-min-s", "0") as (_, url):
        feed = functools.partial(connect, url, backoff_initial_s=0.05, backoff_max_s=0.2)
        app = NotedApp(feed, url=url, watchlist=["BTC-USD", "ETH-USD"])
        seen: dict[str, Any] = {}

        async def script(pilot: Pilot[Any]) -> None:
            def traded() -> bool:
                s = app.state
                return s is not None and all(
                    s.have[s.index[k]] and s.tick[s.index[k]]["last_size"] > 0
                    for k in ("BTC-USD", "ETH-USD")
                )

            await until(pilot, traded, "BTC-USD and ETH-USD trades")
            state = app.state
            assert state is not None
            await pilot.pause()
            spans = {c.key: (x, w) for c, x, w in app.table.column_spans(app.table.size.width)}
            seen["spans"] = spans
            seen["lines"] = [app.table.render_line(y).text for y in range(1, 3)]
            seen["rows"] = [str(state.symbols[i]) for i in app.table.rows]
            btc = state.index["BTC-USD"]
            seen["quote"] = quote_content(state, btc, SystemClock()).plain
            await pilot.press("q")

        async def main() -> None:
            async with app.run_test(size=SIZE) as pilot:
                await script(pilot)

        asyncio.run(asyncio.wait_for(main(), 60))
    spans = seen["spans"]
    assert spans["size"][1] == 7  # wide enough for a BTC lot's five decimals
    for sym, line in zip(seen["rows"], seen["lines"], strict=True):
        assert line.split()[0] == sym  # the symbol in full, not BTC-US
        x, w = spans["size"]
        size = line[x : x + w].strip()
        x, w = spans["volume"]
        volume = line[x : x + w].strip()
        places = {"BTC-USD": 5, "ETH-USD": 4}[sym]  # lots of 0.00001 BTC, 0.0001 ETH
        assert re.fullmatch(rf"\d\.\d{{{places}}}", size), (sym, line)
        assert Decimal(size) > 0
        assert re.fullmatch(r"\d+\.\d+|\d+(\.\d)?[kMB]", volume), (sym, line)
    quote = seen["quote"]
    sizes = re.findall(r"× (\S+)", quote)  # noqa: RUF001
    assert len(sizes) == 3 and all(re.fullmatch(r"\d+\.\d{5}", s) for s in sizes), quote
    assert re.search(r"Volume \d+\.\d{5} ", quote), quote


def test_size_formats_exactly_within_a_width() -> None:
    qty = Quantities(
        [
            {"id": 0, "symbol": "AAPL", "size_unit": 1.0},
            {"id": 1, "symbol": "BTC-USD", "size_unit": 0.00001},
        ]
    )
    assert fmt.size(qty, 0, 1234) == "1.2k" and fmt.size(qty, 0, 300) == "300"  # shares
    assert fmt.size(qty, 1, 210, 7) == "0.00210"
    assert fmt.size(qty, 1, 123_456_789, 7) == "1.2k"  # 1234.56789 BTC: compact, as shares
    assert fmt.size(qty, 1, 12_345_678, 7) == "123.457"
    assert fmt.size(qty, 1, 210, 12) == "0.00210"
