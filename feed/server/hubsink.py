"""The sink every server has: its hub (what `/v1` and the venues' connections take) and the
venues' REST tape."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.hub.hub import Hub
from tickwire.feed.server.roles import Feed
from tickwire.feed.venues.rest import RestTape
from tickwire.feed.venues.session import VenueContext
from tickwire.simulators.ticks import TickBatch


class HubSink:
    """Publishes each batch into the hub, then the REST tape."""

    def __init__(self, hub: Hub, tape: RestTape, venues: VenueContext) -> None:
        self.hub = hub
        self.tape = tape
        self.venues = venues

    def attach(self, feed: Feed) -> None:
        """Nothing to keep: the server publishes into its hub through this sink."""

    def publish(self, batch: TickBatch, offset: int) -> None:
        # The batch's records are on the tick grid and never written again (a source's promise).
        self.hub.publish(batch, on_grid=True, offset=offset)
        self.tape.publish(batch)  # the venues' connections read the hub, as /v1 does

    def publish_statuses(self, records: NDArray[np.void], offset: int) -> None:
        """Nothing to do: `/v1` and the venues read the server's status log."""

    def publish_scenario(self, name: str, active: bool, ts: int, playing: list[str]) -> None:
        """Nothing to do: `/v1` reads the server's status log."""

    def publish_bands(self, records: NDArray[np.void], offset: int) -> None:
        """Nothing to do: the venues read the server's status log."""

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
