"""Live scenarios on a bus deployment: a gateway forwards an operator's checked
`POST /admin/scenario` to the active producer, whose market plays it.

A gateway has no market of its own. It checks the request as a single server does (token,
scenario, symbol), then pushes the request's query onto the namespace's admin list
(`{ns}:admin`), stamped with the wall clock, the gateway and the operator's address. The active
producer (the lease holder; never a standby) takes the list every `POLL_S` and plays each
request on its market; the scenario's halts and its start then reach every gateway as any
scenario's do. A request older than `MAX_AGE_S` when taken (no producer was active) is dropped
and logged: an operator's "now" does not play minutes later. The list itself expires after
`MAX_AGE_S` of not being written.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import trio

from tickwire.feed.bus.redis import Failure, client_for, describe_failure
from tickwire.feed.urls import redact

log = logging.getLogger("tickwire.bus")

POLL_S = 0.25  # how often the active producer looks (one LPOP: ~0.2 ms of CPU)
MAX_AGE_S = 5.0  # a request not taken by then is dropped
PENDING = 16  # requests a gateway holds while Redis is slow; beyond, it answers busy
TAKE = 16  # requests taken per look


def admin_key(namespace: str) -> str:
    return f"{namespace}:admin"


@dataclass(frozen=True, slots=True)
class AdminRequest:
    """One forwarded `POST /admin/scenario`: its query, when and by whom it was sent."""

    query: str
    sent_ns: int  # wall clock at the gateway
    gateway: str
    peer: str

    def pack(self) -> bytes:
        d = {"query": self.query, "sent_ns": self.sent_ns, "gateway": self.gateway}
        return orjson.dumps({**d, "peer": self.peer})

    @classmethod
    def unpack(cls, raw: bytes) -> AdminRequest:
        """Raises ValueError for anything but a packed request."""
        try:
            d = orjson.loads(raw)
            req = cls(str(d["query"]), int(d["sent_ns"]), str(d["gateway"]), str(d["peer"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an admin request: {exc}") from None
        return req

    def age_s(self, now_ns: int) -> float:
        return (now_ns - self.sent_ns) / 1e9


class AdminForwarder:
    """A gateway's side: `forward` (from the HTTP route, synchronous) queues a request, `run`
    pushes them to Redis on its own connection."""

    def __init__(self, url: str, namespace: str, gateway: str) -> None:
        self.url, self.namespace, self.gateway = url, namespace, gateway
        self._send, self._receive = trio.open_memory_channel[AdminRequest](PENDING)
        self.forwarded = 0

    def forward(self, query: str, peer: str) -> bool:
        """Queue a checked request; False when `PENDING` already wait (Redis is slow)."""
        try:
            self._send.send_nowait(AdminRequest(query, time.time_ns(), self.gateway, peer))
        except trio.WouldBlock:
            return False
        return True

    async def run(self) -> None:
        key = admin_key(self.namespace)
        async with client_for(self.url) as client:
            async for req in self._receive:
                if req.age_s(time.time_ns()) > MAX_AGE_S:
                    log.warning("admin: dropped a request from %s: Redis too slow", req.peer)
                    continue
                try:
                    with trio.fail_after(MAX_AGE_S):
                        await client.rpush(key, [req.pack()])
                        await client.pexpire(key, math.ceil(MAX_AGE_S * 1000))
                except Failure as exc:
                    log.warning(
                        "admin: cannot forward a scenario request to %s: %s",
                        redact(self.url),
                        describe_failure(exc),
                    )
                    continue
                self.forwarded += 1


async def take_requests(
    url: str,
    namespace: str,
    active: Callable[[], bool],
    play: Callable[[AdminRequest], None],
) -> None:
    """The producer's side: while `active()` (it holds the lease), every `POLL_S` take the
    requests waiting and `play` each one that is fresh. Runs until cancelled; Redis failures
    are logged once per reason and retried at the next look."""
    key = admin_key(namespace)
    failed = ""
    async with client_for(url) as client:
        while True:
            await trio.sleep(POLL_S)
            if not active():
                continue
            try:
                with trio.fail_after(MAX_AGE_S):
                    raw = await client.lpop(key, TAKE)
            except Failure as exc:
                if describe_failure(exc) != failed:
                    failed = describe_failure(exc)
                    log.warning("admin: cannot read scenario requests: %s", failed)
                continue
            failed = ""
            for item in raw or ():
                _take(item, play)


def _take(item: bytes, play: Callable[[AdminRequest], None]) -> None:
    try:
        req = AdminRequest.unpack(item)
    except ValueError as exc:
        log.warning("admin: ignored a malformed entry on the admin list: %s", exc)
        return
    age = req.age_s(time.time_ns())
    if age > MAX_AGE_S:
        log.warning(
            "admin: dropped a scenario request from %s via gateway %s: %.1f s old (no producer "
            "was active to take it)",
            req.peer,
            req.gateway,
            age,
        )
        return
    play(req)


__all__ = ["MAX_AGE_S", "AdminForwarder", "AdminRequest", "admin_key", "take_requests"]
