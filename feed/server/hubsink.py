"""The sink every server has: its hub (what `/v1` readers take), the venues' REST tape and the
venues' WebSocket fan-out.

The one place the server hands a batch to the venue connections.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import trio
from numpy.typing import NDArray

from tickwire.feed.hub.hub import Hub
from tickwire.feed.venues.rest import RestTape
from tickwire.feed.venues.session import VenueContext
from tickwire.simulators.ticks import TickBatch


class HubSink:
    """Publishes each batch into the hub, the REST tape, then to the venue connections."""

    def __init__(self, hub: Hub, tape: RestTape, venues: VenueContext) -> None:
        self.hub = hub
        self.tape = tape
        self.venues = venues

    def publish(self, batch: TickBatch, offset: int) -> None:
        # The batch's records are on the tick grid and never written again (a source's promise).
        self.hub.publish(batch, on_grid=True, offset=offset)
        self.tape.publish(batch)
        fanout = self.venues.fanout
        if len(fanout):
            now = trio.current_time()
            fanout.publish(batch, self.venues.now_ns(now), now)

    def publish_statuses(self, records: NDArray[np.void]) -> None:
        """Trading status changes, after the batches published so far, to the venues."""
        fanout = self.venues.fanout
        if len(fanout):
            now = trio.current_time()
            fanout.publish_statuses(records, self.venues.now_ns(now), now)

    @property
    def watched(self) -> bool:
        """The server's own clients count there (`Server.watched`), not here."""
        return False

    @property
    def venue_subscribers(self) -> bool:
        """Whether some venue connection wants some symbol."""
        return bool(self.venues.fanout.subscribed)

    def statistics(self) -> dict[str, Any]:
        return dict(self.hub.statistics())
