"""Venue connections with injected faults (`?faults=...` on a venue path, or the operator's
`serve --faults /binance=...`): `v1.faulty.Faulty` on `VenueCore`, each message of a take
faulted on its own, and maintenance as each venue says it: Binance closes the connection
(1001), Coinbase sends its `error` message first and Alpaca its error object (500, "internal
error"; Alpaca crypto too), Kraken its `status` update with `"system": "maintenance"`, then
all close with 1001. `corrupt` alters the `checksum` of a share of Kraken's book updates (the
one venue whose book carries one), in the message's own text, so every other number keeps the
digits a client checksums; a symbol corrupted once is left alone until its next snapshot, so
each corruption is one the client can see. Sans-IO.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import orjson

from tickwire.feed.faults import Injector
from tickwire.feed.v1.faulty import Faulty
from tickwire.feed.venues import Close, Frame, Reply, VenueSession
from tickwire.feed.venues.kraken import API_VERSION, VERSION
from tickwire.feed.venues.session import VenueContext, VenueCore
from tickwire.feed.ws.frames import OP_TEXT, frame
from tickwire.feed.ws.websocket import State

GOING_AWAY = 1001
_MAINTENANCE: dict[str, list[bytes]] = {
    "binance": [],
    "coinbase": [
        orjson.dumps({"type": "error", "message": "service unavailable", "reason": "maintenance"})
    ],
    "alpaca": [orjson.dumps([{"T": "error", "code": 500, "msg": "internal error"}])],
    "alpaca_crypto": [orjson.dumps([{"T": "error", "code": 500, "msg": "internal error"}])],
    "kraken": [
        orjson.dumps(
            {
                "channel": "status",
                "type": "update",
                "data": [{"api_version": API_VERSION, "system": "maintenance", "version": VERSION}],
            }
        )
    ],
}


class FaultyVenueCore(Faulty, VenueCore):
    """A venue connection with injected faults (the server's `stats` count them)."""

    __slots__ = ("faults",)
    core_take_data = VenueCore.take_data

    def take_data(self, now: float) -> bytes | None:
        """The frames of a take, each faulted on its own: a venue's send holds every message
        published since the last one, and a client counts messages (Binance's trade ids)."""
        if self.state is not State.IDLE:
            return None
        faults = self.faults
        frames = self.take_frames(now)
        if frames is None:
            return faults.release(now) if faults.holding() else None
        if faults.spec.corrupt and self.session.venue == "kraken":
            frames = [_corrupt_kraken(faults, f) for f in frames]
        out = [sent for f in frames if (sent := faults.outgoing(f, now)) is not None]
        if not out:
            return faults.release(now)
        return out[0] if len(out) == 1 else b"".join(out)

    def __init__(
        self,
        ctx: VenueContext,
        session: VenueSession,
        wake: Callable[[], None],
        now: float,
        faults: Injector,
    ) -> None:
        super().__init__(ctx, session, wake, now)
        self.faults = faults

    def _queue_books(self, frames: list[Frame], now: float) -> None:
        if self.faults.spec.corrupt and self.session.venue == "kraken":
            for f in frames:
                _snapshots_sent(self.faults, f.data)
        super()._queue_books(frames, now)

    def maintenance(self, now: float) -> None:
        frames = [Frame(data) for data in _MAINTENANCE.get(self.session.venue, [])]
        self._send_reply(Reply(frames, close=Close(GOING_AWAY, "maintenance")), now)


_BOOK = b'"channel":"book"'
_SYMBOL = re.compile(rb'"symbol":"([^"]*)"')
_CHECKSUM = re.compile(rb'"checksum":(\d+)')


def _snapshots_sent(faults: Injector, payload: bytes) -> bool:
    """Whether `payload` is a Kraken book snapshot (its symbols may be corrupted again)."""
    if _BOOK not in payload or b'"type":"snapshot"' not in payload:
        return False
    for m in _SYMBOL.finditer(payload):
        faults.book_sent(m.group(1))
    return True


def _corrupt_kraken(faults: Injector, data: bytes) -> bytes:
    """One framed Kraken message, its book entries' checksums altered at the fault's rate."""
    length = data[1] & 0x7F
    start = 2 if length < 126 else 4 if length == 126 else 10
    payload = data[start:]
    if _BOOK not in payload:
        return data
    if _snapshots_sent(faults, payload):
        return data
    symbols = [(m.start(), m.group(1)) for m in _SYMBOL.finditer(payload)]

    def alter(m: re.Match[bytes]) -> bytes:
        symbol = next((s for at, s in reversed(symbols) if at < m.start()), b"")
        if not faults.corrupts(symbol):
            return m.group(0)
        return b'"checksum":%d' % (int(m.group(1)) ^ 0x5A5A5A5A)  # never the right one

    altered = _CHECKSUM.sub(alter, payload)
    return data if altered == payload else frame(altered, OP_TEXT)


__all__ = ["FaultyVenueCore"]
