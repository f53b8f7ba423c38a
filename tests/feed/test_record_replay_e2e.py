"""Record a live server with the real command, then replay the file: the same records come back."""

from __future__ import annotations

import numpy as np
import pytest
import trio

from tests._support import serve_process, tickwire_cmd
from tickwire.feed import Batch, connect
from tickwire.simulators.ticks import TICK_DTYPE

pq = pytest.importorskip("pyarrow.parquet")


async def test_record_5_s_then_replay_at_speed_0_delivers_exactly_the_recorded_records(tmp_path):
    out = tmp_path / "live.parquet"
    with trio.fail_after(90):
        with serve_process() as (_, url):
            done = await trio.run_process(
                tickwire_cmd("record", url, "--out", str(out), "--duration", "5s"),
                capture_stderr=True,
            )
        assert b"recorded" in done.stderr
        table = pq.read_table(out)
        recorded = np.zeros(table.num_rows, TICK_DTYPE)
        for f in TICK_DTYPE.names:
            recorded[f] = table.column(f).to_numpy()
        assert len(recorded) > 2000  # ~2.3k updates/s on the default market
        got: list[np.ndarray] = []
        with serve_process("--replay", str(out), "--speed", "0") as (_, url):
            async with connect(url, encoding="binary") as feed:
                await feed.subscribe("*", snapshot=False)
                n = 0
                async for event in feed:
                    if isinstance(event, Batch):
                        assert event.conflated == 0
                        got.append(np.array(event.ticks))
                        n += len(event)
                        if n >= len(recorded):
                            break
    replayed = np.concatenate(got)
    assert replayed.tobytes() == recorded.tobytes()  # every record, in order, byte for byte
