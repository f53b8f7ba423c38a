"""`Pipelined`: a producer's writes sent from the market's own step, replies read later.

A base of `BusProducer` (like `holder.LeaseHolder`), run in its loop: `publish` calls
`_send_pending`, which packs everything pending (`write.FlushPacker`), sends it without waiting
(`FastWriter.send_nowait`) and accounts for the replies that have come back meanwhile, oldest
first; the writer task (`_serve_pipeline`) sends what the socket did not take and reads replies
that nobody read within `REPLY_GRACE_S`. It owns no state of its own (the attributes below
are the producer's).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import trio

from tickwire.feed.bus import write as bw
from tickwire.feed.bus.fastwrite import FastWriter
from tickwire.feed.bus.outbox import Outbox, Taken
from tickwire.feed.bus.redis import COMMAND_TIMEOUT_S

# A pipelined write's reply not read by the next flush within this long (the market idles, or
# Redis is slow) is waited for by the writer task: written flushes are counted, a fenced write
# stops the producer, and `wait_written` returns, without a task switch per flush otherwise.
REPLY_GRACE_S = 0.02
# `publish` reads the replies that have come back once this many writes are in flight: a
# receive per write cost more than the replies' news is worth sooner (written counts, a gateway
# watching, a fenced write, which Redis refused anyway).
READ_EVERY = 8
# Writes in flight at most: beyond, flushes wait in the outbox for replies (Redis is slow).
MAX_IN_FLIGHT = 64


@dataclass(frozen=True, slots=True)
class InFlight:
    """A pipelined write: what it carries, and when it went out (trio time)."""

    taken: Taken
    entries: int
    sent_s: float


class Pipelined:
    """The pipelined-write methods of `BusProducer` (which defines everything declared here)."""

    _fast: FastWriter | None
    _outbox: Outbox
    _inflight: deque[InFlight]
    _failure: ConnectionError | None
    _packer: bw.FlushPacker
    _sleep: trio.CancelScope | None
    _renew_at: float

    def _written_reply(self, reply: Any, taken: Taken, entries: int) -> None:
        raise NotImplementedError

    def _report_done(self) -> None:
        raise NotImplementedError

    def _down(self, exc: BaseException) -> None:
        raise NotImplementedError

    async def _renew(self) -> None:
        raise NotImplementedError

    async def _serve_pipeline(self, fast: FastWriter) -> None:
        if fast.unsent:
            with trio.fail_after(COMMAND_TIMEOUT_S):
                await fast.drain()
        elif len(self._inflight) >= MAX_IN_FLIGHT:
            with trio.fail_after(COMMAND_TIMEOUT_S):
                self._take_replies(await fast.wait_replies())
        elif len(self._outbox):
            self._send_pending()
        elif self._inflight:
            await self._wait_for_work(self._inflight[0].sent_s + REPLY_GRACE_S)
            if self._inflight and self._failure is None:
                self._take_replies(fast.replies_nowait())
            if self._inflight and trio.current_time() >= self._inflight[0].sent_s + REPLY_GRACE_S:
                with trio.fail_after(COMMAND_TIMEOUT_S):
                    self._take_replies(await fast.wait_replies())
        else:
            await self._wait_for_work(self._renew_at)
            if not len(self._outbox) and trio.current_time() >= self._renew_at:
                await self._renew()

    async def _wait_for_work(self, until_s: float) -> None:
        """Until `publish` wakes this task (`_wake_writer`) or trio time `until_s`, whichever
        first; `publish` moves `until_s` to when the writer has work (`_send_pending`)."""
        if len(self._outbox) or self._failure is not None:
            return
        with trio.CancelScope(deadline=until_s) as self._sleep:
            try:
                await trio.sleep_forever()
            finally:
                self._sleep = None

    def _wake_writer(self) -> None:
        """The writer has work now (if it is waiting for some; else it looks when it is done)."""
        if self._sleep is not None:
            self._sleep.cancel()

    def _writer_due(self) -> float:
        """When the pipelined writer has work if nothing changes: the oldest write in flight's
        reply unread for `REPLY_GRACE_S`, or else the lease to renew."""
        return self._inflight[0].sent_s + REPLY_GRACE_S if self._inflight else self._renew_at

    def _send_pending(self) -> None:
        """Send everything pending as one pipelined write (no wait), and take the replies that
        have come back meanwhile. A failure is kept for the writer task to handle."""
        fast = self._fast
        if fast is None or fast.unsent or len(self._inflight) >= MAX_IN_FLIGHT:
            # Redis is not keeping up: the flushes wait in the outbox (bounded, coalesced,
            # dropped and counted beyond its limit) until the writer has sent the rest.
            self._wake_writer()
            return
        taken = self._outbox.take()
        if taken is None:
            return
        packed, entries = self._packer.pack(taken, time.time_ns())
        first = not self._inflight
        read = len(self._inflight) + 1 >= READ_EVERY
        try:
            fast.send_nowait(packed)
            self._inflight.append(InFlight(taken, entries, trio.current_time()))
            if read:
                self._take_replies(fast.replies_nowait())
        except ConnectionError as exc:
            self._outbox.dropped += taken.flushes
            self._failure = exc
        if fast.unsent or self._failure is not None:
            self._wake_writer()  # it sends the rest, or handles the failure
        elif (first or read) and self._sleep is not None:
            # What the writer waits for changed: the first reply to read, or replies read
            # here. Its wait now ends when it has work, with no task switch before: woken for
            # nothing (at once, or when replies it was to read were read here) it cost the
            # market's loop more than the write. A later deadline is set only when the one
            # it has is near (each setting costs trio a heap entry).
            due, now = self._writer_due(), trio.current_time()
            if due < self._sleep.deadline or self._sleep.deadline - now < REPLY_GRACE_S / 2:
                self._sleep.deadline = due

    def _take_replies(self, replies: list[Any]) -> None:
        """Account for each reply, in the order the writes went out."""
        for reply in replies:
            sent = self._inflight.popleft()
            if type(reply) is int:  # the usual reply: written (1 or 2)
                self._written_reply(reply, sent.taken, sent.entries)
                continue
            if self._fast is not None and self._fast.script_missing(reply):
                # Redis lost its scripts (SCRIPT FLUSH): this flush is lost (a gap), not the
                # connection; the writer loads the script again before its next write.
                self._outbox.dropped += sent.taken.flushes
                self._failure = ConnectionError("Redis lost the write script; loading it again")
                continue
            if isinstance(reply, Exception):
                self._outbox.dropped += sent.taken.flushes
                self._failure = ConnectionError(f"Redis answered EVALSHA: {reply}")
                continue
            self._written_reply(reply, sent.taken, sent.entries)
        self._report_done()

    def _fail(self) -> None:
        """The writer's side of a failure `publish` or a reply left: Redis down (reconnect)."""
        exc, self._failure = self._failure, None
        assert exc is not None
        for sent in self._inflight:
            self._outbox.dropped += sent.taken.flushes
        self._inflight.clear()
        self._down(exc)

    async def _close_fast(self) -> None:
        fast, self._fast = self._fast, None
        for sent in self._inflight:  # their fate is unknown: lost, as far as readers can tell
            self._outbox.dropped += sent.taken.flushes
        self._inflight.clear()
        self._failure = None
        if fast is not None:
            with trio.CancelScope(shield=True):
                await fast.aclose()
