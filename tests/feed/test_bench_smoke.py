"""`tickwire bench --quick` runs every row and prints a number (speed is never asserted here)."""

from __future__ import annotations

import json
import math
import subprocess

from _support import tickwire_cmd


def test_bench_quick_prints_every_row():
    out = subprocess.run(
        tickwire_cmd("bench", "--quick", "--json"), capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    for prefix in ("generator", "encode 50", "decode 50", "fan-out", "RSS per idle", "raw send()"):
        assert any(name.startswith(prefix) for name in rows), prefix
    for row in rows.values():
        assert math.isfinite(row["value"]), row
        if row["baseline"]:
            assert math.isfinite(row["baseline_value"]) and math.isfinite(row["ratio"]), row
