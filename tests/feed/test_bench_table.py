"""The bench table's arithmetic: ratios only against real baselines, and marks against goals."""

from __future__ import annotations

import io
import math

import pytest

from tickwire.feed.bench._table import meets, print_table, row


@pytest.mark.parametrize("base", [-1.9e-11, 0.0, 300.0, math.nan])
def test_a_ratio_against_noise_or_nothing_is_n_a(base: float) -> None:
    r = row("RSS growth", 21.7, "KiB", "peer", base, higher=False, base_noise=500.0)
    assert math.isnan(r["ratio"])
    out = io.StringIO()
    print_table([r], [], out)
    line = next(x for x in out.getvalue().splitlines() if x.startswith("RSS growth"))
    assert " n/a " in line and "G" not in line.split("KiB", 1)[1]


def test_a_real_baseline_gives_a_ratio() -> None:
    r = row("ticks/s", 300.0, "t/s", "plain", 100.0, higher=True, target=">= 2x")
    assert r["ratio"] == 3.0 and r["met"] is True
    out = io.StringIO()
    print_table([r], [], out)
    assert "3x" in out.getvalue() and "✓ >= 2x" in out.getvalue()
    assert "targets: 1 of 1 met" in out.getvalue()


@pytest.mark.parametrize(
    ("target", "value", "ratio", "met"),
    [
        ("< 8 ms", 7.9, None, True),
        ("< 8 ms", 8.0, None, False),
        (">= 0.95x", 28.0, 0.93, False),
        ("5-20x", 1.0, 7.0, True),
        ("5-20x", 1.0, 25.0, False),
        (">= 1M/core, >= 20x", 2e6, 30.0, True),
        (">= 1M/core, >= 20x", 2e6, 10.0, False),
        (">= 50x real time", 60.0, 0.5, True),
        ("<= 16 KiB", 33.5, 1.4, False),
        ("stretch <= 1.5x", 1.0, 1.2, True),
        ("<= 0.5x, stretch <= 0.1x", 1.0, 0.4, True),
        ("<= 2x", 1.0, math.nan, False),
        ("", 1.0, 1.0, None),
    ],
)
def test_targets_are_checked(target: str, value: float, ratio: float | None, met: bool) -> None:
    assert meets(target, value, ratio) is met


def test_no_target_cites_an_issue() -> None:
    import pathlib

    import tickwire.feed.bench as bench

    for path in pathlib.Path(bench.__file__).parent.glob("*.py"):
        for line in path.read_text().splitlines():
            if "target=" in line or "r(" in line:
                assert "issue" not in line, f"{path.name}: {line.strip()}"
