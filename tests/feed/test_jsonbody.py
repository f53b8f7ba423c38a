"""A reader of a few symbols gets its records encoded on their own, byte for byte as the shared
encoding of the whole batch would give them; a data frame built from a take's shared parts is the
protocol's message, framed."""

from __future__ import annotations

import numpy as np
import orjson

from tickwire.feed import protocol as p
from tickwire.feed.hub.hub import Hub, Pending, Subscriber
from tickwire.feed.hub.jsonbody import GATHER_BYTES, ticks_frame, ticks_out
from tickwire.feed.ws.frames import OP_TEXT, Buffer, frame, joined, unsent
from tickwire.simulators import Market, Universe

START_NS = 1_700_000_000_000_000_000


def test_a_sparse_take_encodes_the_same_json_as_the_shared_batch() -> None:
    market = Market(Universe.synthetic(400), seed=2, start_ns=START_NS)
    hub = Hub(market.universe, market.snapshot(), max_lag_s=0)  # every update, however old
    few = hub.attach(lambda: None)
    hub.set_subscription(few, False, np.array([3, 250], np.intp))
    wild = hub.attach(lambda: None)
    hub.set_subscription(wild, True, np.empty(0, np.intp))
    for k in range(1, 40):
        hub.publish(market.step(START_NS + k * 50_000_000), on_grid=True)
    firsts = _all(hub, few)  # taken first: nobody has encoded these batches yet
    sparse = [t.json_body() for t in firsts]
    assert sum(len(t.records) for t in firsts) > 0
    while hub.take(wild) is not None:
        pass
    for entry in hub.history.entries_from(hub.history.oldest):
        hub.json.entry_json(entry)  # now the whole batches are encoded and cached
    again = hub.attach(lambda: None)
    hub.set_subscription(again, False, np.array([3, 250], np.intp))
    assert hub.resume(again, hub.epoch, hub.history.oldest) == sum(len(t.records) for t in firsts)
    seconds = _all(hub, again)
    assert [t.records.tobytes() for t in seconds] == [t.records.tobytes() for t in firsts]
    assert [t.json_body() for t in seconds] == sparse


def _all(hub: Hub, sub: Subscriber) -> list[Pending]:
    out = []
    while (taken := hub.take(sub)) is not None:
        out.append(taken)
    return out


def test_a_data_frame_is_the_protocol_message_framed_whatever_the_take() -> None:
    """`ticks_frame` joins a take's shared parts straight into the WebSocket frame: byte for byte
    `frame(ticks_text(...))`, for readers at different positions (whole batches, cuts at
    `max_take`, a few records of each batch), latest-state bodies and no offset."""
    market = Market(Universe.synthetic(300), seed=3, start_ns=START_NS)
    hub = Hub(market.universe, market.snapshot(), max_lag_s=0, max_take=70)
    readers = [hub.attach(lambda: None) for _ in range(3)]
    hub.set_subscription(readers[0], True, np.empty(0, np.intp))
    hub.set_subscription(readers[1], True, np.empty(0, np.intp))
    hub.set_subscription(readers[2], False, np.array([1, 7, 150], np.intp))
    latest = hub.attach(lambda: None)
    hub.set_mode(latest, True)
    hub.set_subscription(latest, True, np.empty(0, np.intp))
    takes: list[Pending] = []
    for k in range(1, 30):
        hub.publish(market.step(START_NS + k * 20_000_000), on_grid=True)
        for i, sub in enumerate(readers):
            if k % (i + 1) == 0:  # at different positions
                takes += _all(hub, sub)
        takes += _all(hub, latest)
    takes.append(hub.snapshot(readers[0], np.arange(5, dtype=np.intp)))
    assert len(takes) > 30 and any(len(t.records) == 70 for t in takes)
    for seq, t in enumerate(takes):
        for kind, offset in (("ticks", t.offset), ("snapshot", None)):
            got = ticks_frame(kind, seq, t.json_body, offset)  # before anyone joined the body
            assert got == frame(p.ticks_text(kind, seq, t.json_body(), offset), OP_TEXT)


def test_readers_of_named_symbols_share_one_encoding_once_there_are_many() -> None:
    """The first few readers of a few symbols get them encoded on their own; once more read the
    same batch, it is encoded whole, once, and cut for each: the same bytes either way."""
    market = Market(Universe.synthetic(400), seed=5, start_ns=START_NS)
    hub = Hub(market.universe, market.snapshot())
    readers = []
    for i in range(12):
        sub = hub.attach(lambda: None)
        hub.set_subscription(sub, False, np.array([(i * 31 + j * 97) % 400 for j in range(6)]))
        readers.append(sub)
    hub.publish(market.step(START_NS + 50_000_000), on_grid=True)
    (entry,) = hub.history.entries_from(hub.history.oldest)
    bodies = [(sub, t.json_body()) for sub in readers for t in _all(hub, sub)]
    assert len(bodies) > 8 and entry.json is not None  # encoded whole for the later ones
    assert entry.sparse_reads == 4
    whole = orjson.loads(b"[" + entry.json + b"]")
    for sub, body in bodies:
        got = orjson.loads(body)
        want = [t for t in whole if market.universe.index(t["symbol"]) in set(sub.ids.tolist())]
        assert got == want


def test_readers_of_one_take_share_its_tail_joined_once(monkeypatch) -> None:
    """Only `seq` differs between the frames of one take's readers: what follows it (the offset
    and the tick list) is joined once for all of them, and each frame is still the message."""
    from tickwire.feed.hub import jsonbody

    joined: list[int] = []
    real = jsonbody._tail

    def counting(parts, offset):
        joined.append(len(parts))
        return real(parts, offset)

    monkeypatch.setattr(jsonbody, "_tail", counting)
    market = Market(Universe.synthetic(300), seed=4, start_ns=START_NS)
    hub = Hub(market.universe, market.snapshot())
    readers = [hub.attach(lambda: None) for _ in range(20)]
    for sub in readers:
        hub.set_subscription(sub, True, np.empty(0, np.intp))
    for k in range(1, 4):
        hub.publish(market.step(START_NS + k * 20_000_000), on_grid=True)
        takes = [hub.take(sub) for sub in readers]
        assert all(t is takes[0] for t in takes)  # one shared take...
        for seq, t in enumerate(takes, start=k * 100):
            got = ticks_frame("ticks", seq, t.json_body, t.offset)
            assert got == frame(p.ticks_text("ticks", seq, t.json_body(), t.offset), OP_TEXT)
        assert len(joined) == k  # ...and one tail joined for its 20 frames (from the second on)
    alone = readers[0]
    hub.publish(market.step(START_NS + 5 * 20_000_000), on_grid=True)
    t = hub.take(alone)  # a take only one reader reads: framed from its parts, no tail
    assert ticks_frame("ticks", 7, t.json_body, t.offset) == frame(
        p.ticks_text("ticks", 7, t.json_body(), t.offset), OP_TEXT
    )
    assert len(joined) == 3


def test_frames_of_every_header_size_and_seq_width_are_the_message() -> None:
    """The frame header shared by a take's readers (by the width of their seq) is right for
    7-bit, 16-bit and 64-bit payload lengths, whatever seq and kind come first."""
    market = Market(Universe.synthetic(1500), seed=5, start_ns=START_NS)
    hub = Hub(market.universe, market.snapshot(), max_lag_s=0)
    sub = hub.attach(lambda: None)
    hub.set_subscription(sub, True, np.empty(0, np.intp))
    hub.publish(market.step(START_NS + 400_000_000), on_grid=True)  # ~1000 records: > 64 KiB
    big = hub.take(sub)
    assert big is not None and len(big.json_body()) > 1 << 16
    empty = Pending(big.records[:0], hub.json.of_pieces([]), 0, offset=3)
    for t in (big, empty):
        for seq in (0, 9, 10, 99999, 100000, 7, 2**40):
            for kind, offset in (("snapshot", None), ("ticks", t.offset), ("ticks", None)):
                got = ticks_frame(kind, seq, t.json_body, offset)
                assert got == frame(p.ticks_text(kind, seq, t.json_body(), offset), OP_TEXT)


def test_the_readers_of_one_take_send_its_body_uncopied() -> None:
    """Each reader's frame is its header and seq, then buffers every reader of the take shares
    (the tail, or the first reader's parts: views of the batch's encoding): no reader copies
    the body, and the buffers joined are the protocol's message, framed."""
    market = Market(Universe.synthetic(300), seed=4, start_ns=START_NS)
    hub = Hub(market.universe, market.snapshot())
    subs = [hub.attach(lambda: None) for _ in range(3)]
    for sub in subs:
        hub.set_subscription(sub, True, np.empty(0, np.intp))
    hub.publish(market.step(START_NS + 50_000_000), on_grid=True)
    takes = [hub.take(sub) for sub in subs]
    assert takes[0] is not None and all(t is takes[0] for t in takes)  # one shared take
    t = takes[0]
    assert len(t.json_body()) >= GATHER_BYTES
    outs = [ticks_out("ticks", seq, t.json_body, t.offset) for seq in (7, 8, 1234)]
    assert all(isinstance(out, list) for out in outs)
    entry = hub.history.entry(hub.history.stop() - 1)
    assert any(part is entry.json for part in outs[0])  # the batch's own encoding
    assert outs[1][-1] is outs[2][-1]  # one tail for every later reader
    for seq, out in zip((7, 8, 1234), outs, strict=True):
        assert joined(out) == frame(p.ticks_text("ticks", seq, t.json_body(), t.offset), OP_TEXT)
        assert ticks_frame("ticks", seq, t.json_body, t.offset) == joined(out)


def test_what_a_partial_send_leaves_is_the_rest_of_the_frame() -> None:
    parts: list[Buffer] = [b"head", memoryview(b"-middle-")[1:], b"", b"tail"]
    whole = joined(parts)
    assert whole == b"headmiddle-tail"
    for n in range(len(whole) + 1):
        assert bytes(unsent(parts, n)) == whole[n:]
        assert bytes(unsent(whole, n)) == whole[n:]


def test_a_small_body_is_copied_behind_its_header_not_gathered() -> None:
    """Below `GATHER_BYTES` a copy costs less than a gather: one bytes object, the same frame."""
    market = Market(Universe.synthetic(300), seed=4, start_ns=START_NS)
    hub = Hub(market.universe, market.snapshot())
    subs = [hub.attach(lambda: None) for _ in range(2)]
    for sub in subs:
        hub.set_subscription(sub, True, np.empty(0, np.intp))
    hub.publish(market.step(START_NS + 2_000_000), on_grid=True)
    t = hub.take(subs[0])
    assert t is not None and hub.take(subs[1]) is t and 0 < len(t.json_body()) < GATHER_BYTES
    for seq in (1, 2):
        out = ticks_out("ticks", seq, t.json_body, t.offset)
        assert isinstance(out, bytes)
        assert out == frame(p.ticks_text("ticks", seq, t.json_body(), t.offset), OP_TEXT)
