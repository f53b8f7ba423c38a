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
from typing import Any

import trio
from _rawws import serve, text_frame, welcome

HISTORY_MB = 16
# The server is warm once its history is at the cap and the reader has been sent more JSON than
# `DERIVED_BYTES` (32 MiB): every bounded structure is full. Then WINDOW_MB more is measured.
# Both points are data the feed sent, not wall time: the allocator's slack creeps with the work
# done (measured: RSS ~1.8 MiB/s higher at 45 s, while tracemalloc's live total stays flat), so a
# fixed 8 s bound measured how far a machine got in 8 s, and failed on a fast, idle one.
WARM_MB, WINDOW_MB = 48, 32
MARGIN_MB = 112  # DERIVED_BYTES (32), the ring (8), a message, allocator slack; measured: ~86
CREEP_MB = 32  # growth over the window once warm; measured: ~11
DEADLINE_S = 90.0  # a loaded machine gets there slower; the figures are the same


async def test_a_json_reader_of_everything_on_a_cpu_bound_server_keeps_rss_bounded() -> None:
    """The unbounded caches (module docstring) passed the bound before the server was warm; a
    structure that grows with the data sent, however slowly, fails the creep."""
    args = ("--symbols", "1500", "--history-mb", str(HISTORY_MB), "--log-level", "warning")
    args += ("--book-depth", "0")  # the tick path alone: books would need a core here
    with serve(*args) as served, cpu_hog(served.pid):
        reader = await welcome(served.port)
        stats = await welcome(served.port)
        start_kib = served.rss_kib()
        await reader.stream.send_all(text_frame({"op": "subscribe", "symbols": ["*"]}))
        received = 0
        samples: list[tuple[int, int]] = []  # (MiB received, RSS KiB)
        warm: tuple[int, int] | None = None

        async def read() -> None:
            nonlocal received
            while data := await reader.stream.receive_some(1 << 20):
                received += len(data)

        with trio.move_on_after(DEADLINE_S):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                while warm is None or received < warm[0] + (WINDOW_MB << 20):
                    await trio.sleep(0.25)  # a sampling period, not a synchronisation
                    samples.append((received >> 20, served.rss_kib()))
                    full = (await _stats(stats))["history_bytes"] >= (HISTORY_MB - 1) << 20
                    if warm is None and full and received >= WARM_MB << 20:
                        warm = (received, samples[-1][1])
                nursery.cancel_scope.cancel()
        server = await _stats(stats)
        await reader.stream.aclose()
        assert served.alive()
    assert server["cadence_overruns"] > 0, "the server kept up: the test proves nothing"
    curve = [(mib, kib // 1024) for mib, kib in samples[::4]]  # (MiB sent, RSS MiB)
    assert warm is not None and received >= warm[0] + (WINDOW_MB << 20), (
        f"the reader got only {received >> 20} MiB in {DEADLINE_S:.0f} s: {curve}"
    )
    growth_mib = (max(kib for _, kib in samples) - start_kib) / 1024
    bound = HISTORY_MB + MARGIN_MB
    assert growth_mib <= bound, f"RSS grew {growth_mib:.0f} MiB, over {bound}: {curve}"
    creep_mib = (max(kib for mib, kib in samples if mib << 20 >= warm[0]) - warm[1]) / 1024
    assert creep_mib <= CREEP_MB, f"RSS grew {creep_mib:.0f} MiB once warm: {curve}"


async def _stats(client: Any) -> dict[str, int]:
    await client.stream.send_all(text_frame({"op": "stats", "id": 1}))
    while (msg := await client.message())["type"] != "stats":
        pass
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
