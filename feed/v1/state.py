"""A `/v1` connection's protocol phase and request state, sans-IO.

`TRANSITIONS` is the one table of a `/v1` connection (`core.FeedCore`), as h11 keeps its table in
`_state.py`: the WebSocket phase's transitions (`ws.websocket.WIRE_TRANSITIONS`: idle, backlog,
closing, closed) and the feed protocol's (`FeedPhase`: connected, welcomed, subscribed,
resuming, done), in one dict. `FeedCore.process_event` applies them and refuses anything else.

`ConnectionState` is the request part of that connection: the budget (rate limit, strikes) a
frame must pass before it is parsed (`admit`), and what the client holds (subscription, mode,
throttle), changed by the ops' helpers, which return the actions the core executes in order:
that order guarantees an `ack` before the `snapshot` and data of a newly added symbol. The ops
are dispatched once, in `FeedCore` (see its module docstring on adding one). Never imports trio;
time comes in as `now_s` (monotonic seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeAlias

import numpy as np
import orjson
from numpy.typing import NDArray

from tickwire.feed import protocol as p
from tickwire.feed.closest import closest_to
from tickwire.feed.ws.websocket import WIRE_TRANSITIONS, Transitions


class FeedPhase(Enum):
    """Where a `/v1` connection is in the feed protocol."""

    CONNECTED = "connected"  # the 101 went out; nothing of ours yet
    WELCOMED = "welcomed"  # the welcome is queued; it holds no symbol
    SUBSCRIBED = "subscribed"  # it holds symbols: the hub wakes it for their updates
    RESUMING = "resuming"  # rewound to a past stream position: catching up, take by take
    DONE = "done"  # it left the hub


class FeedEvent(Enum):
    """What moves the feed protocol's phase."""

    WELCOME = "welcome"
    HOLDS = "holds"  # a subscription change left it holding some symbol
    HOLDS_NONE = "holds_none"  # ...or none
    RESUMED = "resumed"  # the hub rewound it to a position it still covers
    CAUGHT_UP = "caught_up"  # a take reached the head of the stream
    LEFT = "left"  # it left the hub: the connection is over


_P, _F = FeedPhase, FeedEvent
TRANSITIONS: Transitions = {
    **WIRE_TRANSITIONS,
    (_P.CONNECTED, _F.WELCOME): _P.WELCOMED,
    (_P.CONNECTED, _F.LEFT): _P.DONE,  # refused at the connection cap: never welcomed
    (_P.WELCOMED, _F.HOLDS): _P.SUBSCRIBED,
    (_P.WELCOMED, _F.HOLDS_NONE): _P.WELCOMED,
    (_P.WELCOMED, _F.LEFT): _P.DONE,
    (_P.SUBSCRIBED, _F.HOLDS): _P.SUBSCRIBED,
    (_P.SUBSCRIBED, _F.HOLDS_NONE): _P.WELCOMED,
    (_P.SUBSCRIBED, _F.RESUMED): _P.RESUMING,
    (_P.SUBSCRIBED, _F.LEFT): _P.DONE,
    (_P.RESUMING, _F.HOLDS): _P.RESUMING,
    (_P.RESUMING, _F.HOLDS_NONE): _P.WELCOMED,
    (_P.RESUMING, _F.RESUMED): _P.RESUMING,
    (_P.RESUMING, _F.CAUGHT_UP): _P.SUBSCRIBED,
    (_P.RESUMING, _F.LEFT): _P.DONE,
}
HOLDING = frozenset((_P.SUBSCRIBED, _P.RESUMING))  # the phases that count as a subscriber


@dataclass(frozen=True, slots=True)
class Reply:
    """Send this JSON control message (no connection seq: only data and heartbeats carry one)."""

    text: str


@dataclass(frozen=True, slots=True)
class SetSubscription:
    """The subscription is now `ids` (sorted symbol ids), or every symbol if `wildcard`."""

    wildcard: bool
    ids: NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class SendSnapshot:
    """Send a `snapshot` of the latest tick of each of these symbol ids."""

    ids: NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class SetMode:
    """Every update (False), or the latest state per symbol (True: mode latest, or a throttle)."""

    latest: bool


@dataclass(frozen=True, slots=True)
class Resume:
    """Rewind to the client's stream position; send `ack` with `recovered` (protocol.resumed_ack),
    then, if not recovered, a snapshot of `snapshot_ids` (None: the client asked for none)."""

    epoch: str
    offset: int
    ack: dict[str, Any]
    snapshot_ids: NDArray[np.intp] | None


@dataclass(frozen=True, slots=True)
class SetBooks:
    """Book these symbol ids at `depth` ticks a side (0: drop their books); see `v1/books.py`."""

    ids: NDArray[np.intp]
    depth: int


@dataclass(frozen=True, slots=True)
class Close:
    code: p.CloseCode
    reason: str


Action: TypeAlias = Reply | SetSubscription | SendSnapshot | SetMode | Resume | SetBooks | Close


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection policy. Defaults suit a dashboard or a strategy; all are server flags."""

    max_symbols: int = 10_000  # explicit symbols per connection ("*" is always allowed)
    rate_per_s: float = 50.0  # token bucket: sustained requests per second...
    burst: int = 100  # ...and how many may come at once
    strike_limit: int = 20  # bad requests (decaying one per second) before closing with 1008
    # A subscribe or unsubscribe also costs a token per this many symbols it names ("*": the
    # universe), capped at `burst`: 5000 symbols cost 51 requests' worth, so subscribe storms
    # within the request rate cannot saturate the CPU, and the largest request still passes.
    symbols_per_token: int = 100


class ConnectionState:
    """What one client asked for, and whether it is behaving."""

    __slots__ = (
        "_index",
        "_last_s",
        "_strikes",
        "_symbols_body",
        "_tokens",
        "error_codes",
        "errors",
        "limits",
        "mode",
        "requests",
        "resumable",
        "subscribed",
        "throttle_ms",
        "wildcard",
    )

    def __init__(
        self, index: Mapping[str, int], symbols_body: bytes, limits: Limits, now_s: float
    ) -> None:
        self._index = index  # symbol -> id
        self._symbols_body = symbols_body  # the universe's reference data, encoded once
        self.limits = limits
        self.wildcard = False
        self.subscribed: dict[str, int] = {}  # explicit subscription, in the order it was made
        self.throttle_ms = 0
        self.mode = "all"  # every update; "latest": the latest state per symbol
        self.resumable = False  # it asked for stream positions (binary: the 24-byte header)
        self.requests = 0
        self.errors = 0
        self.error_codes: dict[str, int] = {}  # wire code -> count, for /metrics
        self._tokens = float(limits.burst)
        self._strikes = 0.0
        self._last_s = now_s

    # ------------------------------------------------------------------ reading

    @property
    def latest(self) -> bool:
        """Whether the hub sends the latest state per symbol rather than every update."""
        return self.mode == "latest" or self.throttle_ms > 0

    def symbols(self) -> list[str]:
        """The whole subscription as the `ack` lists it."""
        return [p.WILDCARD] if self.wildcard else list(self.subscribed)

    def admit(self, frame: str | bytes, now_s: float) -> p.Request:
        """One client frame, parsed, if the request budget lets it in; a RequestError if not
        (the core answers it with `refused`)."""
        self._refill(now_s)
        self.requests += 1
        if self._tokens < 1.0 - 1e-9:  # float sums of refills land a hair short
            raise p.RateLimited(
                f"more than {self.limits.rate_per_s:g} requests/s"
                f" (bursts of {self.limits.burst}); slow down",
                id=_peek_id(frame),
            )
        self._tokens -= 1.0
        req = p.parse_request(frame)
        extra = self._cost(req) - 1.0
        if extra > 0:
            if self._tokens < extra - 1e-9:
                raise p.RateLimited(
                    f"this request names many symbols and costs {extra + 1:g} requests"
                    f" ({self.limits.symbols_per_token} symbols each); retry in"
                    f" {(extra - self._tokens) / self.limits.rate_per_s:.1f} s",
                    id=req.id,
                )
            self._tokens -= extra
        return req

    def refused(self, err: p.RequestError) -> list[Action]:
        """A request that failed: its error reply, and a close past the strike limit."""
        self.errors += 1
        self.error_codes[err.code] = self.error_codes.get(err.code, 0) + 1
        actions: list[Action] = [Reply(p.dumps(p.error_message(err)))]
        if err.counts_as_strike:
            self._strikes += 1.0
            if self._strikes > self.limits.strike_limit:
                actions.append(Close(p.CloseCode.POLICY, "too many bad requests"))
        return actions

    def _cost(self, req: p.Request) -> float:
        """What a request costs in requests: 1, plus its symbols' share (capped at a burst)."""
        if isinstance(req, p.Subscribe):
            n = len(self._index) if p.WILDCARD in req.symbols else len(req.symbols)
        elif isinstance(req, p.Unsubscribe):
            n = len(req.symbols)
        else:
            return 1.0
        return min(float(self.limits.burst), 1.0 + n // self.limits.symbols_per_token)

    def _refill(self, now_s: float) -> None:
        elapsed = max(0.0, now_s - self._last_s)
        self._last_s = now_s
        self._tokens = min(
            float(self.limits.burst), self._tokens + elapsed * self.limits.rate_per_s
        )
        self._strikes = max(0.0, self._strikes - elapsed)

    # ------------------------------------------------------------------ ops (FeedCore dispatches)

    def throttle(self, req: p.Throttle) -> list[Action]:
        self.throttle_ms = req.interval_ms  # the connection core reads it before each send
        ack = self._ack("throttle", req.id, interval_ms=req.interval_ms)
        return [SetMode(self.latest), ack]  # a throttle conflates: the hub must know

    def symbols_reply(self, req: p.Symbols) -> list[Action]:
        rid = b"" if req.id is None else b'"id":%d,' % req.id
        text = b'{"type":"symbols",%s"symbols":%s}' % (rid, self._symbols_body)
        return [Reply(text.decode())]

    def _ids(self, symbols: tuple[str, ...], rid: int | None) -> dict[str, int]:
        unknown = [s for s in symbols if s not in self._index]
        if unknown:
            close = closest_to(unknown[0], self._index)  # the first only: the loop waits
            first = f"{unknown[0]} (did you mean {', '.join(close)}?)" if close else unknown[0]
            shown = ", ".join([first, *unknown[1:5]]) + (" ..." if len(unknown) > 5 else "")
            raise p.UnknownSymbol(
                f"unknown symbol(s): {shown}; the symbols op lists the universe",
                id=rid,
                symbols=unknown,
            )
        return {s: self._index[s] for s in symbols}

    def subscribe(self, req: p.Subscribe) -> list[Action]:
        if p.WILDCARD in req.symbols:
            held = np.fromiter(self.subscribed.values(), np.intp, len(self.subscribed))
            added = (
                np.empty(0, np.intp)
                if self.wildcard
                else np.setdiff1d(np.arange(len(self._index)), held).astype(np.intp)
            )
            self.wildcard, self.subscribed = True, {}
            asked = np.arange(len(self._index), dtype=np.intp)
        else:
            wanted = self._ids(req.symbols, req.id)
            new = {s: i for s, i in wanted.items() if s not in self.subscribed}
            if not self.wildcard and len(self.subscribed) + len(new) > self.limits.max_symbols:
                raise p.TooManySymbols(
                    f'a connection may hold {self.limits.max_symbols} symbols (or "*");'
                    f" it holds {len(self.subscribed)} and asked for {len(new)} more",
                    id=req.id,
                    symbols=list(new),
                )
            if self.wildcard:
                new = {}
            else:
                self.subscribed.update(new)
            added = np.fromiter(new.values(), np.intp, len(new))
            asked = np.fromiter(wanted.values(), np.intp, len(wanted))
        actions: list[Action] = [self._set()]
        if req.mode is not None and req.mode != self.mode:
            self.mode = req.mode
            actions.append(SetMode(self.latest))
        self.resumable = self.resumable or req.resume is not False
        fields: dict[str, Any] = {"snapshot": req.snapshot, "mode": self.mode}
        if isinstance(req.resume, p.ResumeFrom):
            ack = p.with_id({"type": "ack"}, req.id, op="subscribe", symbols=self.symbols())
            ack.update(fields)
            # A resume that fails sends the snapshot of every symbol asked for, held or new:
            # a client resynchronising a live connection (a seq gap) gets its state back.
            ids = np.sort(asked) if req.snapshot else None
            actions.append(Resume(req.resume.epoch, req.resume.offset, ack, ids))
            return actions
        actions.append(self._ack("subscribe", req.id, **fields))
        if req.snapshot and added.size:
            actions.append(SendSnapshot(np.sort(added)))
        return actions

    def unsubscribe(self, req: p.Unsubscribe) -> list[Action]:
        if p.WILDCARD in req.symbols:
            self.wildcard, self.subscribed = False, {}
        else:
            gone = self._ids(req.symbols, req.id)
            if self.wildcard:
                names = list(self._index)
                self.wildcard = False
                self.subscribed = {s: self._index[s] for s in names if s not in gone}
            else:
                for s in gone:
                    self.subscribed.pop(s, None)
        return [self._set(), self._ack("unsubscribe", req.id)]

    def _set(self) -> SetSubscription:
        ids = np.sort(np.fromiter(self.subscribed.values(), np.intp, len(self.subscribed)))
        return SetSubscription(self.wildcard, ids)

    def _ack(self, op: str, rid: int | None, **fields: object) -> Reply:
        msg = p.with_id({"type": "ack"}, rid, op=op, symbols=self.symbols(), **fields)
        return Reply(p.dumps(msg))


def _peek_id(frame: str | bytes) -> int | None:
    """The request's id for a rate_limited error, without the cost of full validation."""
    try:
        return p.id_of(orjson.loads(frame))
    except (p.RequestError, ValueError, TypeError, AttributeError):
        return None
