"""`LeaseHolder`: the producer's side of the lease (`_bus_lease`): take it and make the first
write under it, renew it, lose it, stand by, release it. A base of `BusProducer`, run in its
writer task; it owns no state of its own (the attributes below are the producer's).
"""

from __future__ import annotations

from typing import Any

import trio

from tickwire.feed.bus import bands as bb
from tickwire.feed.bus import codec as bc
from tickwire.feed.bus import keys as bk
from tickwire.feed.bus import lease as bl
from tickwire.feed.bus.redis import (
    COMMAND_TIMEOUT_S,
    Failure,
    client_for,
    describe_failure,
    log,
)
from tickwire.feed.urls import redact
from tickwire.simulators import TickBatch


class LeaseHolder:
    """The lease methods of `BusProducer` (which defines everything declared here)."""

    url: str
    namespace: str
    ident: str
    epoch: int
    token: bytes
    _client: Any
    _meta: bytes
    _up: bool
    _active: bool
    _lease: bl.LeaseState
    _renew_at: float
    _standby_for: bytes
    _bands: dict[int, bytes]  # symbol id -> its LULD band record, while it has one
    _playing: bytes

    def _down(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _stop_accepting(self, *, standby: bool) -> None:
        raise NotImplementedError

    def _set_watched(self, watched: bool) -> None:
        raise NotImplementedError

    def _handover(self) -> tuple[TickBatch, bytes, int, int | None]:
        raise NotImplementedError

    async def _connect(self) -> None:
        """Take the lease if it is free, then write the meta key and the full latest-record
        hash and mark this producer active; else stand by. Either marks the bus up."""
        lease = await self._lease_call(bl.ACQUIRE_SCRIPT)
        if lease is None:
            return
        if not self._up:
            shown = redact(self.url)
            log.info("bus up: %s namespace %r, epoch %016x", shown, self.namespace, self.epoch)
        self._up = True
        if lease.holder != self.token:
            self._stand_by(lease.holder)
            return
        snap, halted, head, next_offset = self._handover()
        bands = b"".join(self._bands[s] for s in sorted(self._bands))  # as of the handover
        latest = bc.latest_records(snap) if len(snap) else b""
        keys = [bk.lease_key(self.namespace), bk.meta_key(self.namespace)]
        keys += [bk.latest_key(self.namespace), bk.head_key(self.namespace)]
        keys += [bk.offset_key(self.namespace), bk.halted_key(self.namespace)]
        keys += [bb.bands_key(self.namespace), bk.scenarios_key(self.namespace)]
        off = b"" if next_offset is None else str(next_offset).encode()
        args = [self.token, self._meta, latest, str(head).encode(), off, halted, bands]
        args.append(self._playing)
        try:
            with trio.fail_after(COMMAND_TIMEOUT_S):
                reply = await self._client.eval(bl.CONNECT_SCRIPT, keys=keys, args=args)
        except Failure as exc:
            self._down(exc)
            return
        holder = bl.fenced_holder(reply)
        if holder is not None:  # lost between the two calls (this producer stalled)
            self._lost(holder)
            return
        self._active = True
        self._set_watched(True)  # at the cadence until the first write says nobody watches
        self._renew_at = trio.current_time() + bl.RENEW_S
        if lease.took_over:
            log.warning(
                "took over namespace %r as producer %s (the previous producer stopped renewing "
                "its lease); gateways resend a snapshot",
                self.namespace,
                self.ident,
            )
        elif self._standby_for:
            log.info("active on namespace %r as producer %s", self.namespace, self.ident)
        self._standby_for = b""

    async def _lease_call(self, script: str, renew_only: bool = False) -> bl.LeaseState | None:
        args = [self.token, str(bl.LEASE_MS).encode(), b"1" if renew_only else b""]
        try:
            with trio.fail_after(COMMAND_TIMEOUT_S):
                reply = await self._client.eval(
                    script, keys=bl.lease_keys(self.namespace), args=args
                )
        except Failure as exc:
            self._down(exc)
            return None
        self._lease = bl.parse_state(reply)
        return self._lease

    async def _renew(self) -> None:
        lease = await self._lease_call(bl.ACQUIRE_SCRIPT, renew_only=True)
        if lease is None:
            return
        if lease.holder != self.token:
            self._lost(lease.holder)
            return
        self._renew_at = trio.current_time() + bl.RENEW_S

    async def _release(self) -> None:
        """A clean stop: free the lease now, so a standby takes over at once."""
        was_active, self._active = self._active, False
        keys = bl.lease_keys(self.namespace)
        # On a client of its own: the writer's went with its cancelled task. Best effort: a
        # lease not released lapses within LEASE_MS, and a standby takes over then.
        with trio.CancelScope(shield=True), trio.move_on_after(1) as timer:
            try:
                async with client_for(self.url) as client:
                    await client.eval(bl.RELEASE_SCRIPT, keys=keys, args=[self.token])
            except Exception as exc:  # any failure: the lease lapses on its own
                log.info(
                    "lease on namespace %r not released (%s)", self.namespace, describe_failure(exc)
                )
                return
        if was_active and not timer.cancelled_caught:
            log.info("released the lease on namespace %r", self.namespace)

    def _lost(self, holder: bytes) -> None:
        """The lease is gone (another producer took it, or it lapsed): write nothing more."""
        self._active = False
        if holder:
            log.warning(
                "lost the lease on namespace %r to producer %s: no more writes from here",
                self.namespace,
                bl.shown(holder),
            )
            self._stand_by(holder)
        else:
            log.warning(
                "the lease on namespace %r lapsed (Redis restarted, or this producer stalled "
                "past it): %s; taking it again and rewriting meta and snapshot",
                self.namespace,
                redact(self.url),
            )
            self._stop_accepting(standby=False)

    def _stand_by(self, holder: bytes) -> None:
        self._active = False
        self._set_watched(False)  # a standby's market steps rarely until it takes over
        self._stop_accepting(standby=True)
        if holder != self._standby_for:
            self._standby_for = holder
            log.info(
                "standby: producer %s is active on namespace %r", bl.shown(holder), self.namespace
            )
