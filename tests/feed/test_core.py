"""The connection core, sans-IO: a wsproto client's bytes in, the core's outbox out.

No trio, no sockets: time is a number we pass, the "socket" is `core.sent(n)`.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as hs
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from tickwire.feed import protocol as p
from tickwire.feed.hub.hub import Hub
from tickwire.feed.v1 import state as st
from tickwire.feed.v1.core import FeedContext, FeedCore
from tickwire.feed.ws.websocket import State
from tickwire.simulators.ticks import TICK_DTYPE
from tickwire.simulators.universe import Universe

N = 5
NAMES = [f"S{i}" for i in range(N)]


def make_hub(**kw: Any) -> Hub:
    rows = [(s, f"Name {s}", "Tech", 100.0, 0.01, 100, 1.0, "stock") for s in NAMES]
    init = np.zeros(N, TICK_DTYPE)
    init["sym"] = np.arange(N)
    init["bid"], init["ask"] = 99.99, 100.01
    return Hub(Universe.from_rows(rows), init, **kw)


class Market:
    """Publishes updates with per-symbol seq counters into a hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.seq = [0] * N

    def publish(self, syms: list[int]) -> None:
        out = np.zeros(len(syms), TICK_DTYPE)
        for i, s in enumerate(syms):
            self.seq[s] += 1
            out[i]["sym"], out[i]["seq"] = s, self.seq[s]
            out[i]["bid"], out[i]["ask"] = 99.99, 100.01
        self.hub.publish(out)


def make_core(
    *,
    heartbeat_ms: int = 1000,
    stall_s: float = 10.0,
    limits: st.Limits | None = None,
    binary: bool = False,
    symbols_body: bytes = b"[]",
    start: bool = True,
    **hub_kw: Any,
) -> tuple[FeedCore, Market]:
    hub = make_hub(**hub_kw)
    ctx = FeedContext(
        hub=hub,
        index={s: i for i, s in enumerate(NAMES)},
        symbols_body=symbols_body,
        limits=limits or st.Limits(),
        server_name="tickwire/test",
        heartbeat_ms=heartbeat_ms,
        stall_s=stall_s,
        close_timeout_s=2.0,
        t0_s=0.0,
        wall0_ns=10**18,
        stats=lambda: {"clients": 1},
    )
    core = FeedCore(ctx, lambda: None, binary=binary, now=0.0)
    if start:
        core.start(0.0)
    return core, Market(hub)


class Peer:
    """The client side: a wsproto connection (masks its frames), and what it received."""

    def __init__(self, core: FeedCore) -> None:
        self.core = core
        self.ws = Connection(ConnectionType.CLIENT)
        self.got: list[Any] = []
        self.closed: CloseConnection | None = None
        self._parts: list[Any] = []  # a message that arrived in pieces

    def send(self, event: Any, now: float = 0.0) -> None:
        self.core.receive_data(self.ws.send(event), now)

    def request(self, now: float = 0.0, **obj: Any) -> None:
        self.send(TextMessage(json.dumps(obj)), now)

    def flush(self, now: float = 0.0, limit: int | None = None) -> list[Any]:
        """The socket takes the outbox (up to `limit` bytes), and then any data offered."""
        core = self.core
        data = bytes(core.outbox[:limit] if limit is not None else core.outbox)
        core.sent(len(data), now)
        while limit is None and core.state is State.IDLE:
            frame = core.take_data(now)
            if frame is None:
                break
            core.wrote(frame, len(frame), now)
            data += frame
        return self.receive(data)

    def receive(self, data: bytes) -> list[Any]:
        if self.ws.state.name == "CLOSED":
            assert not data, "bytes after the close frame"
            return []
        self.ws.receive_data(data)
        new = []
        for ev in self.ws.events():
            if isinstance(ev, TextMessage | BytesMessage):
                self._parts.append(ev.data)
                if not ev.message_finished:
                    continue
                parts, self._parts = self._parts, []
                if isinstance(ev, TextMessage):
                    new.append(json.loads("".join(parts)))
                else:
                    new.append(b"".join(parts))
            elif isinstance(ev, CloseConnection):
                self.closed = ev
            elif isinstance(ev, Pong):
                new.append(("pong", bytes(ev.payload)))
        self.got += new
        return new


def opened() -> tuple[FeedCore, Market, Peer]:
    return opened_with()


def opened_with(**hub_kw: Any) -> tuple[FeedCore, Market, Peer]:
    core, market = make_core(**hub_kw)
    peer = Peer(core)
    assert [m["type"] for m in peer.flush()] == ["welcome"]
    return core, market, peer


# The table itself is walked in test_machine.py.


# --------------------------------------------------------------------------- hand-off


def test_welcome_then_idle():
    core, _ = make_core()
    assert core.state is State.BACKLOG and core.outbox
    peer = Peer(core)
    welcome = peer.flush()[0]
    assert welcome["type"] == "welcome" and welcome["server"] == "tickwire/test"
    assert welcome["epoch"] == core.ctx.hub.epoch  # a client can tell a restart from a blip
    assert core.state is State.IDLE and not core.outbox


def test_subscribe_acks_then_snapshots_then_streams_with_gap_free_seq():
    core, market, peer = opened()
    peer.request(op="subscribe", symbols=["S1", "S3"], id=1)
    assert core.state is State.BACKLOG
    ack, snap = peer.flush()
    assert ack == {
        "type": "ack",
        "id": 1,
        "op": "subscribe",
        "symbols": ["S1", "S3"],
        "snapshot": True,
        "mode": "all",
    }
    assert snap["type"] == "snapshot" and snap["seq"] == 1
    market.publish([1, 2, 3, 1])
    (ticks,) = peer.flush()
    # Every update of its symbols, in event order, each once; the offset to resume from.
    assert ticks["seq"] == 2 and ticks["offset"] == 4
    assert [(t["symbol"], t["seq"]) for t in ticks["ticks"]] == [("S1", 1), ("S3", 1), ("S1", 2)]
    assert core.take_data(0.0) is None  # nothing new


def test_data_is_taken_only_when_idle_and_a_partial_send_keeps_order():
    core, market, peer = opened()
    peer.request(op="subscribe", symbols=["*"], snapshot=False)
    peer.flush()
    market.publish([0])
    frame = core.take_data(0.0)
    assert frame is not None
    core.wrote(frame, 3, 0.0)  # the socket took 3 bytes
    assert core.state is State.BACKLOG and bytes(core.outbox) == frame[3:]
    market.publish([1])
    assert core.take_data(0.0) is None  # BACKLOG: the flusher's turn
    peer.receive(frame[:3])
    first, second = peer.flush()
    assert (first["seq"], second["seq"]) == (1, 2)
    assert core.state is State.IDLE


def test_stall_closes_1008_and_aborts():
    core, _market, peer = opened()
    peer.request(op="ping")
    assert core.state is State.BACKLOG
    assert core.next_deadline(0.0) == 10.0
    peer.flush(1.0, limit=1)  # progress moves the deadline
    assert core.next_deadline(1.0) == 11.0
    core.timer(10.9)
    assert core.state is State.BACKLOG
    core.timer(11.0)
    assert core.state is State.CLOSED and core.aborted and core.close_code == 1008
    assert "stalled" in core.close_reason


def test_heartbeat_after_silence_with_the_next_seq():
    core, _, peer = opened()
    assert core.next_deadline(0.0) == 1.0
    core.timer(0.5)
    assert not core.outbox
    core.timer(1.0)
    (beat,) = peer.flush(1.0)
    assert beat["type"] == "heartbeat" and beat["seq"] == 1 and beat["ts"] == 10**18 + 10**9
    assert core.next_deadline(1.0) == 2.0


def test_throttle_holds_data_until_due_and_sets_the_deadline():
    core, market, peer = opened()
    peer.request(op="throttle", interval_ms=250)
    peer.request(op="subscribe", symbols=["*"], snapshot=False)
    peer.flush(0.0)
    market.publish([0])
    assert [m["type"] for m in peer.flush(0.0)] == ["ticks"]
    market.publish([1])
    market.publish([1])
    assert core.take_data(0.1) is None
    assert core.next_deadline(0.1) == pytest.approx(0.25)
    (ticks,) = peer.flush(0.25)
    assert [t["seq"] for t in ticks["ticks"]] == [2]  # conflated: the latest only


def test_mode_latest_conflates_and_stats_say_so():
    _core, market, peer = opened()
    peer.request(op="subscribe", symbols=["S1"], snapshot=False, mode="latest", id=2)
    (ack,) = peer.flush()
    assert ack["mode"] == "latest"
    market.publish([1, 1, 1])
    (ticks,) = peer.flush()
    assert [t["seq"] for t in ticks["ticks"]] == [3]  # the latest state only
    peer.request(op="stats", id=3)
    (stats,) = peer.flush()
    assert stats["mode"] == "latest" and stats["offset"] == 3 and stats["ticks_conflated"] == 2


def test_a_reader_far_behind_catches_up_one_bounded_take_at_a_time():
    # The hub hands out at most max_take records a message; data_waiting says more is there
    # (the shell's flusher then sends the rest, one message per scheduler turn).
    core, market, peer = opened_with(max_take=3)
    peer.request(op="subscribe", symbols=["*"], snapshot=False)
    peer.flush()
    market.publish([0, 1, 2, 3, 4, 0, 1])
    first = core.take_data(0.0)
    assert first is not None and core.data_waiting(0.0)
    core.wrote(first, len(first), 0.0)
    msgs = peer.receive(first) + peer.flush()
    assert [len(m["ticks"]) for m in msgs] == [3, 3, 1]
    assert [m["offset"] for m in msgs] == [3, 6, 7]
    assert [m["seq"] for m in msgs] == [1, 2, 3] and not core.data_waiting(0.0)
    got = [(t["symbol"], t["seq"]) for m in msgs for t in m["ticks"]]
    assert got == [("S0", 1), ("S1", 1), ("S2", 1), ("S3", 1), ("S4", 1), ("S0", 2), ("S1", 2)]


def test_a_throttled_connection_before_any_data_is_due_now_not_at_minus_infinity():
    # Found by the fuzzing machine: no data sent yet, so the throttle's due time was -inf.
    core, market, peer = opened()
    peer.request(op="throttle", interval_ms=50)
    peer.flush(0.0)
    market.publish([0])
    assert core.next_deadline(0.5) == 0.5


def test_a_throttled_reader_does_not_wait_for_data_waiting():
    core, market, peer = opened_with(max_take=1)
    peer.request(op="throttle", interval_ms=100)
    peer.request(op="subscribe", symbols=["*"], snapshot=False)
    peer.flush()
    market.publish([0])
    peer.flush(0.0)
    market.publish([1, 2])
    assert not core.data_waiting(0.05)  # not due: the deadline covers it, not the flusher
    assert core.next_deadline(0.05) == pytest.approx(0.1)


def test_resume_replays_what_was_missed_then_streams():
    core, market, peer = opened()
    epoch = core.ctx.hub.epoch
    market.publish([0, 1])  # offsets 0, 1: seen by the previous connection
    market.publish([1, 2, 1])  # offsets 2, 3, 4: missed
    peer.request(op="subscribe", symbols=["S1", "S2"], resume={"epoch": epoch, "offset": 2}, id=9)
    ack, ticks = peer.flush()
    assert ack["type"] == "ack" and ack["recovered"] is True and ack["missed"] == 3
    assert [(t["symbol"], t["seq"]) for t in ticks["ticks"]] == [("S1", 2), ("S2", 1), ("S1", 3)]
    assert ticks["offset"] == 5
    market.publish([2])
    (live,) = peer.flush()
    assert [(t["symbol"], t["seq"]) for t in live["ticks"]] == [("S2", 2)]


def test_resume_from_another_epoch_gets_a_snapshot():
    core, market, peer = opened()
    market.publish([0])
    peer.request(op="subscribe", symbols=["S0"], resume={"epoch": "0123abcd", "offset": 0})
    ack, snap = peer.flush()
    assert ack["recovered"] is False and "missed" not in ack
    assert snap["type"] == "snapshot" and [t["seq"] for t in snap["ticks"]] == [1]
    assert core.snapshots_sent == 1


def test_binary_frames_carry_the_offset_only_when_asked():
    core, market = make_core(binary=True)
    peer = Peer(core)
    peer.flush()
    peer.request(op="subscribe", symbols=["S0"], snapshot=False)
    peer.flush()
    market.publish([0])
    (plain,) = peer.flush()
    assert p.decode_binary(plain).offset is None  # a version-1 decoder keeps working
    peer.request(op="subscribe", symbols=["S0"], snapshot=False, resume=True)
    peer.flush()
    market.publish([0])
    (with_offset,) = peer.flush()
    frame = p.decode_binary(with_offset)
    assert frame.offset == 2 and frame.records["seq"].tolist() == [2]


def test_fragmented_request_and_ping():
    _core, _, peer = opened()
    peer.send(TextMessage('{"op": "pi', message_finished=False))
    peer.send(TextMessage('ng", "id": 4}'))
    peer.send(Ping(b"abc"))
    pong, ping_reply = peer.flush()
    assert pong["type"] == "pong" and pong["id"] == 4
    assert ping_reply == ("pong", b"abc")


# --------------------------------------------------------------------------- closing


def test_peer_close_is_answered_then_closed():
    core, _, peer = opened()
    peer.send(CloseConnection(1000, "bye"))
    assert core.state is State.CLOSING
    peer.flush()
    assert peer.closed is not None and peer.closed.code == 1000
    assert core.state is State.CLOSED and core.close_code == 1000 and not core.aborted


def test_our_close_waits_for_the_peer_or_the_timeout():
    core, _, peer = opened()
    core.close(1001, "server shutting down", 5.0)
    assert core.state is State.CLOSING and core.take_data(5.0) is None
    peer.flush(5.0)
    assert peer.closed.code == 1001
    assert core.state is State.CLOSING
    peer.send(peer.closed.response())
    assert core.state is State.CLOSED
    core2, _, peer2 = opened()
    core2.close(1001, "x", 5.0)
    peer2.flush(5.0)
    assert core2.next_deadline(5.0) == 7.0
    core2.timer(7.0)
    assert core2.state is State.CLOSED


def test_eof_is_1006():
    core, _, _ = opened()
    core.receive_data(b"", 1.0)
    assert core.state is State.CLOSED and core.close_code == 1006


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\x81\x02hi", 1002),  # an unmasked client frame
        (b"\x81\x82abcd" + bytes((0xFF ^ 0x61, 0xFE ^ 0x62)), 1007),  # invalid UTF-8
        (b"\x89\xfe\x00\x80abcd" + b"\x00" * 128, 1002),  # a control frame over 125 bytes
    ],
)
def test_protocol_errors_get_a_close_frame(raw, code):
    core, _, peer = opened()
    core.receive_data(raw, 0.0)
    assert core.state is State.CLOSING and core.close_code == code
    peer.flush()
    assert peer.closed is not None and peer.closed.code == code
    assert core.wants_eof  # the shell may half-close: the peer's bytes mean nothing now
    core.receive_data(b"more garbage", 0.1)
    core.receive_data(b"", 0.2)
    assert core.state is State.CLOSED


def test_a_message_over_64_KiB_is_1009():
    core, _, peer = opened()
    peer.send(TextMessage("x" * 40_000, message_finished=False))
    assert core.state is State.IDLE
    peer.send(TextMessage("x" * 40_000))
    assert core.close_code == 1009
    peer.flush()
    assert peer.closed.code == 1009


def test_strikes_close_1008_after_the_error_reply():
    core, _market = make_core(limits=st.Limits(strike_limit=1))
    peer = Peer(core)
    peer.flush()
    peer.send(TextMessage("{"))
    peer.send(TextMessage("{"))
    msgs = peer.flush()
    assert [m["code"] for m in msgs] == ["bad_json", "bad_json"]
    assert peer.closed.code == 1008 and core.state is State.CLOSING


def test_detach_leaves_the_hub_and_the_subscriber_count():
    core, _market, peer = opened()
    peer.request(op="subscribe", symbols=["S0"])
    assert core.ctx.subscribers == 1
    core.detach()
    assert core.ctx.subscribers == 0 and not core.sub.wildcard and not len(core.sub.ids)


def test_the_core_modules_import_no_io_library():
    code = (
        "import sys\n"
        "import tickwire.feed.v1.core, tickwire.feed.ws.websocket, tickwire.feed.ws.http\n"
        "print([m for m in ('trio', 'trio_websocket', 'textual') if m in sys.modules])"
    )
    setup = (
        "import importlib.util, sys, types\n"
        "spec = importlib.util.find_spec('tickwire.feed')\n"
        "pkg = types.ModuleType('tickwire.feed')\n"
        "pkg.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['tickwire.feed'] = pkg\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", setup + code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- fuzzing


class CoreMachine(RuleBasedStateMachine):
    """Random client frames, publications, partial sends and clock advances; the invariants
    of the protocol hold after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.core, self.market = make_core(heartbeat_ms=300, stall_s=5.0)
        self.peer = Peer(self.core)
        self.now = 0.0
        self.seen = 0
        self.last_seq = 0
        self.acked: set[str] = set()
        self.sym_seq: dict[str, int] = {}
        self.mode_changed = False  # a throttle request since the last flush

    def _check_new(self) -> None:
        # Throttled all along since the last look: the latest state, one record per symbol.
        conflating = self.core.requests.latest and not self.mode_changed
        self.mode_changed = False
        for msg in self.peer.got[self.seen :]:
            if isinstance(msg, bytes):
                continue
            if isinstance(msg, tuple):  # a pong
                continue
            if msg["type"] in ("ticks", "snapshot", "heartbeat"):
                assert msg["seq"] == self.last_seq + 1, "connection seq skipped"
                self.last_seq = msg["seq"]
            if msg["type"] == "ack":
                self.acked = set(msg["symbols"])
            if msg["type"] in ("ticks", "snapshot"):
                names = [t["symbol"] for t in msg["ticks"]]
                if msg["type"] == "snapshot" or conflating:
                    assert len(names) == len(set(names)), "more than one record per symbol"
                for t in msg["ticks"]:
                    assert "*" in self.acked or t["symbol"] in self.acked, "data before its ack"
                    if msg["type"] == "ticks":
                        assert t["seq"] > self.sym_seq.get(t["symbol"], -1)
                    self.sym_seq[t["symbol"]] = t["seq"]
        self.seen = len(self.peer.got)

    @precondition(lambda self: self.core.state is not State.CLOSED)
    @rule(
        op=hs.sampled_from(["subscribe", "unsubscribe", "throttle", "ping", "stats", "bogus"]),
        symbols=hs.lists(hs.sampled_from([*NAMES, "*", "NOPE"]), min_size=1, max_size=3),
        ms=hs.sampled_from([0, 50, 500]),
        split=hs.booleans(),
    )
    def request(self, op, symbols, ms, split):
        text = json.dumps({"op": op, "symbols": symbols, "interval_ms": ms, "id": 1})
        self.mode_changed |= op == "throttle"
        if self.core.state is State.CLOSING or self.peer.ws.state.name != "OPEN":
            return
        if split:
            self.peer.send(TextMessage(text[:5], message_finished=False), self.now)
            self.peer.send(TextMessage(text[5:]), self.now)
        else:
            self.peer.send(TextMessage(text), self.now)

    @precondition(lambda self: self.core.state is not State.CLOSED)
    @rule(data=hs.binary(max_size=40))
    def garbage(self, data):
        self.core.receive_data(data, self.now)

    @precondition(lambda self: self.core.state is not State.CLOSED)
    @rule(payload=hs.binary(max_size=20))
    def ping(self, payload):
        if self.peer.ws.state.name == "OPEN":
            self.peer.send(Ping(payload), self.now)

    @rule(syms=hs.lists(hs.integers(0, N - 1), min_size=1, max_size=8))
    def publish(self, syms):
        self.market.publish(syms)

    @rule(limit=hs.one_of(hs.none(), hs.integers(0, 50)))
    def socket_takes(self, limit):
        if self.core.state is not State.CLOSED:
            self.peer.flush(self.now, limit)
            self._check_new()

    @rule(dt=hs.floats(0.0, 2.0))
    def time_passes(self, dt):
        self.now += dt
        if self.now >= self.core.next_deadline(self.now - dt):
            self.core.timer(self.now)

    @precondition(lambda self: self.core.state is not State.CLOSED)
    @rule()
    def peer_closes(self):
        if self.peer.ws.state.name in ("OPEN", "REMOTE_CLOSING"):
            self.peer.send(CloseConnection(1000, "bye"), self.now)

    @invariant()
    def bounded_and_consistent(self):
        core = self.core
        assert len(core.outbox) < 64 * 1024
        if core.state is State.IDLE:
            assert not core.outbox
        if core.state is State.BACKLOG:
            assert core.outbox
        assert core.next_deadline(self.now) > -math.inf

    def teardown(self):
        core = self.core
        if core.state is not State.CLOSED:
            core.close(1000, "done", self.now)
            self.peer.flush(self.now)
            self._check_new()
            core.timer(self.now + 10)
        assert core.state is State.CLOSED


TestCoreMachine = CoreMachine.TestCase
TestCoreMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_a_burst_of_requests_in_one_read_waits_for_room_in_the_outbox() -> None:
    """Requests that arrive in one read are handled only while their replies fit under
    HIGH_WATER; the rest wait in wsproto's buffer (`held`) until the outbox drains, and then
    come in order. Before, 80 `symbols` replies of 64 KiB each were all queued at once."""
    from tickwire.feed.ws.websocket import HIGH_WATER

    body = json.dumps([{"symbol": "S" * 60, "n": i} for i in range(800)]).encode()
    assert len(body) > 64 * 1024
    core, _ = make_core(symbols_body=body)
    peer = Peer(core)
    peer.flush()  # the welcome
    wire = b"".join(
        peer.ws.send(TextMessage(json.dumps({"op": "symbols", "id": i}))) for i in range(80)
    )
    core.receive_data(wire, 0.0)
    peak = len(core.outbox)
    assert core.held and peak <= HIGH_WATER + len(body) + 1024, peak
    replies = [m for m in peer.flush() if isinstance(m, dict)]
    while core.held:
        core.resume(0.0)
        peak = max(peak, len(core.outbox))
        replies += [m for m in peer.flush() if isinstance(m, dict)]
    assert peak <= HIGH_WATER + len(body) + 1024, peak
    assert [m["id"] for m in replies if m["type"] == "symbols"] == list(range(80))
