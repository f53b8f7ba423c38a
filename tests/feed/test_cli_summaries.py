"""`--log-every`: one summary task for the in-process server and a bus gateway alike."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing

from tickwire.feed.cli.bus import log_summaries


class Counters:
    """A server's `statistics()`: the counters grow by the same amount every call."""

    def __init__(self, **extra: Any) -> None:
        self.calls, self.extra = 0, extra

    def statistics(self) -> dict[str, Any]:
        n = self.calls
        self.calls += 1
        sent = {"messages_sent": 1000 * n, "ticks_sent": 5000 * n, "ticks_published": 2000 * n}
        return {"clients": 3, "cadence_overruns": 0, **sent, **self.extra}


async def run_for(server: Counters, seconds: float) -> None:
    with trio.move_on_after(seconds):
        await log_summaries(server, 10.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("extra", "tail"),
    [
        ({}, " in the last 10 s"),
        ({"gateway": "g1", "bus": "up", "bus_lag_ms": 2}, "; gateway g1, bus up, lag 2 ms"),
    ],
    ids=["server", "gateway"],
)
async def test_a_summary_every_period(
    extra: dict[str, Any],
    tail: str,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tickwire")
    await run_for(Counters(**extra), 35.0)
    lines = [r.getMessage() for r in caplog.records if r.name == "tickwire"]
    assert len(lines) == 3  # at 10, 20 and 30 s
    assert all(ln.startswith("3 clients, 100 msgs/s, 500 ticks/s sent") for ln in lines), lines
    assert all(ln.endswith(tail) for ln in lines), lines
