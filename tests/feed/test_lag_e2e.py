"""The lag bound through the real `tickwire serve`: a reader that stops reading, then reads.

The client is a raw socket with a 4 KiB receive buffer, so once it stops reading the server's
writes stop within a few messages and its cursor falls behind in the hub, as a slow client's does.
"""

from __future__ import annotations

import orjson
import pytest
import trio
from _rawws import OP_TEXT, Reader, handshake, serve, text_frame

from tickwire.feed import Feed, connect

MISSED = 30_000  # updates published while the reader stops: ~2 s of 500 symbols (~17k/s)


async def _published(feed: Feed) -> int:
    return int((await feed.stats())["server"]["ticks_published"])


class Seqs:
    """Per-symbol seqs of the ticks read: every jump is updates the server conflated."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.conflated = 0
        self.repeats = 0

    def add(self, ticks: list[dict[str, object]]) -> None:
        for t in ticks:
            sym, seq = str(t["symbol"]), int(t["seq"])  # type: ignore[call-overload]
            if sym in self.last:
                self.conflated += max(0, seq - self.last[sym] - 1)
                self.repeats += seq <= self.last[sym]
            self.last[sym] = seq


async def _read(reader: Reader, seqs: Seqs, until: str | None = None) -> dict[str, object]:
    """Read messages, adding their ticks, until one of type `until` (or the first seq jump)."""
    while True:
        op, payload = await reader.frame()
        assert op == OP_TEXT, f"unexpected frame {op}: {payload[:80]!r}"
        msg = orjson.loads(payload)
        if msg["type"] in ("ticks", "snapshot"):
            seqs.add(msg["ticks"])
            if until is None and seqs.conflated:
                return msg  # type: ignore[no-any-return]
        if msg["type"] == until:
            return msg  # type: ignore[no-any-return]


@pytest.mark.parametrize("max_lag", ["200ms", "0"])
async def test_a_reader_that_stops_reading_then_reads_is_brought_back_within_the_bound(max_lag):
    # 500 symbols, ~17k updates/s: 2 s of them fill the kernel's socket buffers (a few MB) and
    # more, so the rest waits in the hub, where the bound applies.
    args = ("--symbols", "500", "--max-lag", max_lag, "--heartbeat-ms", "0", "--book-depth", "0")
    with serve(*args) as srv, trio.fail_after(30):
        reader, status, _ = await handshake(srv.port, rcvbuf=4096)
        assert status == 101
        seqs = Seqs()
        assert (await _read(reader, seqs, "welcome"))["epoch"]
        await reader.stream.send_all(text_frame({"op": "subscribe", "symbols": ["*"]}))
        await _read(reader, seqs, "ack")
        for _ in range(20):  # a reader that keeps up
            await _read(reader, seqs, "ticks")
        assert seqs.conflated == 0
        # The scenario: it stops reading while the market publishes ~2 s of updates. Counted on
        # the server (not slept for), so a starved server cannot shrink what the reader missed.
        async with connect(srv.url, reconnect=False) as monitor:
            start = await _published(monitor)
            while await _published(monitor) - start < MISSED:
                await trio.sleep(0.05)  # polling the server's count, bounded by fail_after
        if max_lag == "0":
            await reader.stream.send_all(text_frame({"op": "stats"}))
            stats = await _read(reader, seqs, "stats")
            # Only the 60 s history bounds it: it reads the 2 s it missed, every update.
            assert seqs.conflated == 0 and stats["ticks_conflated"] == 0
        else:
            await _read(reader, seqs)  # the first message past the bound: seq jumps
            await reader.stream.send_all(text_frame({"op": "stats"}))
            stats = await _read(reader, seqs, "stats")
            # Far more than its socket held was folded into the latest state.
            assert stats["ticks_conflated"] >= seqs.conflated > 100
        assert seqs.repeats == 0
        await reader.stream.aclose()
        assert srv.stop() == 0
