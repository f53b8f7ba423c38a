"""A live connection's resynchronisation after a connection-seq jump, sans-IO.

A jump in the connection `seq` means data messages never arrived (a dropped message): what the
client holds may be stale. `SeqResync` remembers the stream offset of the last data message
applied before the jump and asks the server to resume from there on the same connection (a
`subscribe` of the whole subscription with `resume`, no `id`). Until the server's `ack` comes,
`ticks` messages are set aside (the replay that follows the ack carries them again, in order);
snapshots still apply (they are latest states). The ack makes the `Gap`: `recovered` counts
the updates the server replays, or is None when the offset left its history (a snapshot of
the subscription follows instead). No trio, no sockets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tickwire.feed.client.events import Gap


class SeqResync:
    """Whether a resume is wanted or awaited, and what the `Gap` it ends will say."""

    __slots__ = ("missed", "waiting", "wanted")

    def __init__(self) -> None:
        self.wanted = False  # a jump was seen: the feed should send the resume request
        self.waiting = False  # asked (or about to): `ticks` wait for the ack's replay
        self.missed = 0  # connection seqs skipped since the last gap was reported

    def jumped(self, missed: int) -> None:
        """Messages were missed: ask for a resume unless one is awaited already."""
        self.missed += missed
        if not self.waiting:
            self.wanted = self.waiting = True

    def request(self, subscription: list[str], epoch: object, offset: int | None) -> dict[str, Any]:
        """The resume request to send (from `offset`, the last data applied; 0 when none was:
        a server whose history no longer has it sends a snapshot instead)."""
        self.wanted = False
        resume = {"epoch": epoch, "offset": 0 if offset is None else offset}
        return {"op": "subscribe", "symbols": subscription, "snapshot": True, "resume": resume}

    def cancel(self) -> Gap:
        """No resume can be asked (nothing subscribed): the gap, reported as it is."""
        gap = Gap("seq", 0, (), missed_messages=self.missed)
        self.reset()
        return gap

    def acked(self, reply: Mapping[str, Any]) -> Gap | None:
        """The `Gap` that the resume's `ack` (a subscribe ack without `id`) ends, or None if
        `reply` is not that ack."""
        if not self.waiting or self.wanted or "id" in reply or "recovered" not in reply:
            return None
        recovered = int(reply["missed"]) if reply["recovered"] else None
        gap = Gap("seq", 0 if recovered is not None else None, (), self.missed, 0.0, recovered)
        self.reset()
        return gap

    def reset(self) -> None:
        self.wanted = self.waiting = False
        self.missed = 0
