"""The row of injected faults' cost: the `/v1` send path with the feature present and no fault
asked, against a connection carrying an injector that never fires.

A connection that asks for no fault (or `?faults=drop:0`: rates of 0 ask for nothing) gets the
plain `FeedCore`: the very code a build without the feature runs, so its cost is zero by
construction and cannot be measured apart. What can be measured is the price a connection pays
once it asks: `FaultyFeedCore` with `disconnect:1h` (an injector that sees every data message
and fires nothing in the run), beside the plain core, on the same hub and the same takes.
In-process, sans-IO: CPU of `take_data` + `wrote` per data message, 100 connections of each
kind, interleaved. Imports no trio.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tickwire.feed.faults import Injector, parse_spec
from tickwire.feed.hub.hub import Hub
from tickwire.feed.v1 import state as st
from tickwire.feed.v1.core import FeedContext, FeedCore
from tickwire.feed.v1.faulty import FaultyFeedCore
from tickwire.simulators import Market, Universe

from ._table import Row, row

_MS = 1_000_000


def fault_rows(quick: bool) -> list[Row]:
    n, seconds = (20, 0.5) if quick else (100, 2.0)
    plain, faulty, messages = _send_path(n, seconds)
    return [
        row(
            f"fault injection, N={n} '*' on /v1 JSON: send path CPU per data message with an "
            "injector that fires nothing",
            faulty,
            "ns",
            "no fault asked (the plain path)",
            plain,
            higher=False,
            target="<= 1.1x",
            note=f"{messages} messages each; rate 0 (?faults=drop:0) is the plain path itself",
        )
    ]


def _context(hub: Hub, uni: Universe) -> FeedContext:
    return FeedContext(
        hub=hub,
        index={s: i for i, s in enumerate(uni.symbols)},
        symbols_body=b"[]",
        limits=st.Limits(),
        server_name="bench",
        heartbeat_ms=0,
        stall_s=10.0,
        close_timeout_s=2.0,
        t0_s=0.0,
        wall0_ns=0,
        stats=dict,
    )


def _send_path(n: int, seconds: float) -> tuple[float, float, int]:
    """(plain ns, faulty ns) of CPU per data message, and the messages each kind sent."""
    uni = Universe.default()
    market = Market(uni, seed=1, start_ns=0)
    market.step(60_000 * _MS)  # past the open's burst: a midday-like rate, as served
    hub = Hub(uni, market.snapshot())
    ctx = _context(hub, uni)
    spec = parse_spec("disconnect:1h")
    plain = [FeedCore(ctx, _nothing, binary=False, now=0.0) for _ in range(n)]
    faulty = [
        FaultyFeedCore(ctx, _nothing, binary=False, now=0.0, faults=Injector(spec, i, 0.0))
        for i in range(n)
    ]
    for core in (*plain, *faulty):
        hub.set_subscription(core.sub, True, np.empty(0, np.intp))
    cpu = {"plain": 0.0, "faulty": 0.0}
    sent = {"plain": 0, "faulty": 0}
    t0 = market.now_ns
    for k in range(1, int(seconds * 1000) + 1):
        hub.publish(market.step(t0 + k * _MS), on_grid=True)
        now = k / 1000
        first, second = ("plain", "faulty") if k % 2 else ("faulty", "plain")
        for kind in (first, second):
            cores = plain if kind == "plain" else faulty
            c0 = time.process_time()
            sent[kind] += _take_all(cores, now)
            cpu[kind] += time.process_time() - c0
    per = {k: cpu[k] / max(1, sent[k]) * 1e9 for k in cpu}
    return per["plain"], per["faulty"], sent["plain"]


def _take_all(cores: list[Any], now: float) -> int:
    sent = 0
    for core in cores:
        data = core.take_data(now)
        if data is not None:
            core.wrote(data, len(data), now)
            sent += 1
    return sent


_nothing: Callable[[], None] = lambda: None  # noqa: E731 - the hub's wake, unused here


__all__ = ["fault_rows"]
