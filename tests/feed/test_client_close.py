"""Closing a feed while data flows takes one round trip, not the close timeout.

The server's answer to our close frame used to be lost: our reader saw the connection end, the
connection's tasks were torn down before trio-websocket marked the handshake done, and `aclose`
waited out its 2 s timeout. `tickwire tail --count`, `record --duration` and every typo paid it.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tickwire.feed.client.events import Batch
from tickwire.feed.client.feed import connect
from tickwire.feed.server.server import Server, ServerConfig


@pytest.mark.parametrize(
    ("symbols", "backlog"),
    [(["AAPL"], False), (["*"], False), (["*"], True)],
    ids=["one-symbol", "all", "all-unread-backlog"],
)
async def test_close_while_data_flows_takes_one_round_trip(
    mock_clock: trio.testing.MockClock, symbols: list[str], backlog: bool
) -> None:
    # Virtual time: a false jump (I/O slower than the threshold on a loaded machine) only moves
    # the clock to the server's next cadence step, never to the old 2 s timeout at once.
    mock_clock.autojump_threshold = 0.02
    server = Server(ServerConfig(port=0, cadence_ms=20, heartbeat_ms=0))
    async with trio.open_nursery() as nursery:
        url = await nursery.start(server.run)
        with trio.fail_after(60):
            async with connect(url, max_queue=8) as feed:
                await feed.subscribe(symbols, snapshot=False)
                batches = 0
                async for event in feed:
                    batches += isinstance(event, Batch)
                    if batches == 3:
                        break
                if backlog:  # the consumer stops reading; the feed's queue fills up
                    before = feed.messages_received
                    await trio.sleep(0.5)
                    assert feed.messages_received > before
                rtt_s = max([await feed.ping() for _ in range(3)])
                received = feed.messages_received
                t0 = trio.current_time()
                await feed.aclose()
                close_s = trio.current_time() - t0
            assert feed.messages_received >= received  # data was still arriving
        nursery.cancel_scope.cancel()
    # One round trip (virtual time stands still while bytes move); the old code took 2.0 s.
    assert close_s <= max(10 * rtt_s, 0.2), (close_s, rtt_s)
