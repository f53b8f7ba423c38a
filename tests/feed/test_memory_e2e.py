"""A CPU-bound server's memory stays within its history cap plus a fixed margin, for the reader
that costs the most: JSON, every update, `*`, reading as fast as it can.

The real `tickwire serve` (1500 symbols, `--history-mb 16`) shares one core with a process that
spins, so its generator falls behind and every step publishes a whole chunk of the market (100 ms,
~3.5k ticks), the largest batch there is; its RSS from /proc. Before the caches were bounded in
bytes, the JSON of the newest 256 batches (one 4 KiB encoder buffer a tick) took this server from
~90 to ~760 MiB within 5 s, whatever `--history-mb`.

What the server holds, and the bound of each (the margin below covers the fixed ones):

- the history: `--history-mb` of records (+ at most one market chunk it still references);
- what recent batches carry besides their records (their JSON, where each tick object starts,
  each symbol's last seq): `_history.DERIVED_BYTES` (32 MiB) and `DERIVED_KEEP` (1024) batches,
  dropped when the last subscriber leaves;
- which symbols each recent generation changed (`_latest.Changes`): `RING_BYTES` (8 MiB), the
  oldest first (a take from before them scans the per-symbol generations instead);
- the latest state's JSON per symbol (`JsonCache`): ~170 B a symbol; the bodies shared by the
  readers of one generation: cleared at the next batch;
- the market's pending chunk and its snapshot: one chunk (~220 KiB at 1500 symbols);
- per `/v1` connection: one data message at a time (`MAX_TAKE` = 1024 ticks, ~230 KiB of JSON; a
  snapshot: one tick per symbol), its replies up to `_wscore.HIGH_WATER` (256 KiB) before the
  server stops reading it, and with TLS one encrypted message more;
- per venue connection: `VENUE_BUFFER_BYTES` (4 MiB) of frames, then it is closed as slow; a
  batch's encodings per venue are dropped once the batch is delivered;
- per connection in its handshake: the HTTP front's 16 KiB request cap.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import trio
from _rawws import serve, text_frame, welcome

HISTORY_MB = 16
MARGIN_MB = 80  # DERIVED_BYTES (32), a message, the allocator's slack; measured growth: ~46
RUN_S = 8.0  # before the fix the bound was passed within 2 s


async def test_a_json_reader_of_everything_on_a_cpu_bound_server_keeps_rss_bounded() -> None:
    args = ("--symbols", "1500", "--history-mb", str(HISTORY_MB), "--log-level", "warning")
    args += ("--book-depth", "0")  # the tick path alone: books would need a core here
    with serve(*args) as served, cpu_hog(served.pid):
        reader = await welcome(served.port)
        start_kib = served.rss_kib()
        await reader.stream.send_all(text_frame({"op": "subscribe", "symbols": ["*"]}))
        received = 0
        samples: list[int] = []

        async def read() -> None:
            nonlocal received
            while data := await reader.stream.receive_some(1 << 20):
                received += len(data)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            deadline = trio.current_time() + RUN_S
            while trio.current_time() < deadline:
                await trio.sleep(0.25)  # a sampling period, not a synchronisation
                samples.append(served.rss_kib())
            nursery.cancel_scope.cancel()
        stats = await _stats(served.port)
        await reader.stream.aclose()
        assert served.alive()
    assert stats["cadence_overruns"] > 0, "the server kept up: the test proves nothing"
    assert received > 20 << 20, f"the reader got only {received} bytes"
    growth_mib = (max(samples) - start_kib) / 1024
    bound = HISTORY_MB + MARGIN_MB
    curve = [s // 1024 for s in samples[::4]]
    assert growth_mib <= bound, f"RSS grew {growth_mib:.0f} MiB, over {bound}: {curve} MiB"


async def _stats(port: int) -> dict[str, int]:
    client = await welcome(port)
    await client.stream.send_all(text_frame({"op": "stats", "id": 1}))
    while (msg := await client.message())["type"] != "stats":
        pass
    await client.stream.aclose()
    server = msg["server"]
    assert isinstance(server, dict)
    return server


@contextmanager
def cpu_hog(pid: int) -> Iterator[None]:
    """A process that spins on the server's core: the server gets half of one core."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(pid, {core})
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
    try:
        os.sched_setaffinity(hog.pid, {core})
        yield
    finally:
        hog.kill()
        hog.wait()
