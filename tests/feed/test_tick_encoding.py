"""The JSON tick encoder against an independent reference, over seeded batches.

The reference builds each tick object field by field from the record's columns, as PROTOCOL.md
lists them, and encodes it with orjson (the encoder the server has always used): the server's
`tick_objects` must give the same bytes (floats in their shortest form), whatever the batch's size.
"""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import numpy as np
import orjson
import pytest

from tickwire.feed import protocol as p
from tickwire.simulators import Market, Universe
from tickwire.simulators.ticks import TICK_DTYPE

_SIDE = {0: None, 2: "buy", 4: "sell", 6: None}


def reference(records: np.ndarray, names: np.ndarray) -> list[dict[str, Any]]:
    out = []
    for k in range(len(records)):
        r = records[k]
        out.append(
            {
                "symbol": str(names[int(r["sym"])]),
                "seq": int(r["seq"]),
                "ts": int(r["ts"]),
                "bid": float(r["bid"]),
                "ask": float(r["ask"]),
                "bid_size": int(r["bid_size"]),
                "ask_size": int(r["ask_size"]),
                "last": float(r["last"]),
                "last_size": int(r["last_size"]),
                "volume": int(r["volume"]),
                "side": _SIDE[int(r["flags"]) & 6],
                "flags": int(r["flags"]),
            }
        )
    return out


def _batches() -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for universe, seed in ((Universe.default(), 3), (Universe.synthetic(1500), 0)):
        names = np.array(universe.symbols, dtype=object)
        market = Market(universe, seed=seed, start_ns=1_700_000_000_000_000_000)
        step = 1_700_000_000_000_000_000
        many = np.concatenate([market.step(step + i * 50_000_000) for i in range(1, 40)])
        for n in (0, 1, 2, 5, 16, 17, 40, 333, len(many)):
            out.append((many[:n].copy(), names))
    return out


@pytest.mark.parametrize(("records", "names"), _batches())
def test_tick_objects_match_the_reference_byte_for_byte(records, names) -> None:
    ref = reference(records, names)
    text = p.tick_objects(records, names)
    assert text == orjson.dumps(ref)[1:-1]
    assert json.loads(b"[" + text + b"]") == ref
    assert p.ticks_body(records, names) == orjson.dumps(ref)
    assert p.tick_dicts(records, names) == ref
    at = p.object_starts(text, records, names).tolist()
    assert [json.loads(text[a : b - 1]) for a, b in pairwise(at)] == ref
    assert p.tick_fragments(records, names) == [orjson.dumps(d) for d in ref]


def test_edge_values_and_names_encode_as_the_reference() -> None:
    # Every flags value (both side bits, OPEN, TRADE), floats far from a price's usual range
    # (exponent forms), the largest integers, and names JSON must escape or with `{` in them.
    names = np.array(["A{B", 'q"uote\\', "ünï", "x\n\ty", "Z"], dtype=object)
    n = 64
    rec = np.zeros(n, TICK_DTYPE)
    rec["sym"] = np.arange(n) % len(names)
    rec["flags"] = np.arange(n) % 16
    floats = [1e-7, 0.1, 123456789.123, 1e16, 1e17, 2.5e-5, 5e-324, 1.7976931348623157e308]
    rec["bid"] = np.resize(floats, n)
    rec["ask"] = np.resize(floats[::-1], n)
    rec["last"] = np.resize([0.0, 100.0, 0.30000000000000004], n)
    rec["seq"] = np.resize([0, 1, 2**64 - 1], n)
    rec["ts"] = np.resize([-(2**63), 0, 2**63 - 1], n)
    rec["volume"] = np.resize([2**64 - 1, 7], n)
    rec["bid_size"] = rec["ask_size"] = rec["last_size"] = np.resize([0, 2**32 - 1], n)
    ref = reference(rec, names)
    text = p.tick_objects(rec, names)
    assert text == orjson.dumps(ref)[1:-1]
    at = p.object_starts(text, rec, names).tolist()
    assert [orjson.loads(text[a : b - 1]) for a, b in pairwise(at)] == ref
