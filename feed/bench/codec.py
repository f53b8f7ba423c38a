"""Encode/decode rows: µs per 50-tick batch with `tickwire.feed.protocol` vs json.dumps/loads.

The encoders and decoders timed are the ones the server and the client call (see `_paths`), so a
change in `protocol/` shows here. The baseline is the stdlib on a list of ready-made tick dicts,
as the issue defines it (building those dicts is not counted against the baseline).
Imports the protocol core only: no trio.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np
import orjson

from tickwire.simulators import Market, Universe

from ._table import Row, row

BATCH = 50


def _us(fn: Callable[[], object], budget_s: float) -> float:
    """Best of 5 rounds of the mean µs per call, each round about budget_s / 5 long."""
    t0, calls = time.perf_counter(), 0
    while time.perf_counter() - t0 < 0.01:
        fn()
        calls += 1
    reps = max(10, int(calls / (time.perf_counter() - t0) * budget_s / 5))
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps * 1e6)
    return best


def _paths() -> dict[str, Callable[[], object]]:
    """The timed calls, on 50 real records of the default universe."""
    from tickwire.feed import protocol as p

    universe = Universe.default()
    recs = Market(universe, seed=2, start_ns=0).step(5_000_000_000)[:BATCH].copy()
    assert len(recs) == BATCH, "the default market made fewer than 50 ticks in 5 s"
    names = np.array(universe.symbols, dtype=object)
    index = {s: i for i, s in enumerate(universe.symbols)}
    dicts = p.tick_dicts(recs, names)
    body = p.join_fragments(p.tick_fragments(recs, names))
    text = json.dumps({"type": "ticks", "seq": 1, "ticks": dicts})
    frame = p.encode_binary(p.BinaryType.TICKS, 1, recs)
    return {
        # the hub encodes each update once (fragments), joins once per flush...
        "json_flush": lambda: p.ticks_text(
            "ticks", 1, p.join_fragments(p.tick_fragments(recs, names))
        ),
        # ...and each further connection only wraps the shared body with its own seq
        "json_client": lambda: p.ticks_text("ticks", 7, body),
        "binary": lambda: p.encode_binary(p.BinaryType.TICKS, 1, recs),
        "json_decode": lambda: p.records_from_json(orjson.loads(text)["ticks"], index),
        "binary_decode": lambda: p.decode_binary(frame),
        "base_encode": lambda: json.dumps({"type": "ticks", "seq": 1, "ticks": dicts}),
        "base_decode": lambda: json.loads(text),
    }


def codec_rows(quick: bool) -> list[Row]:
    budget = 0.05 if quick else 0.4
    us = {name: _us(fn, budget) for name, fn in _paths().items()}
    enc, dec = us["base_encode"], us["base_decode"]
    label = f"{BATCH} ticks"
    return [
        row(
            f"encode {label}, JSON, once per flush",
            us["json_flush"],
            "us",
            "json.dumps",
            enc,
            higher=False,
        ),
        row(
            f"encode {label}, JSON, each further client (shared body: only seq differs)",
            us["json_client"],
            "us",
            "json.dumps",
            enc,
            higher=False,
        ),
        row(
            f"encode {label}, binary",
            us["binary"],
            "us",
            "json.dumps",
            enc,
            higher=False,
            target="<= 0.01x",
        ),
        row(
            f"decode {label}, JSON to records",
            us["json_decode"],
            "us",
            "json.loads",
            dec,
            higher=False,
        ),
        row(
            f"decode {label}, binary to records",
            us["binary_decode"],
            "us",
            "json.loads",
            dec,
            higher=False,
        ),
    ]
