"""The bus's wire format and reassembly, without Redis: round trips, order, gaps."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tickwire.feed.bus import codec as bc
from tickwire.feed.bus.reassemble import Reassembler
from tickwire.simulators import TICK_DTYPE, Market, Universe

EPOCH = 42


def _batches(n_flushes: int = 30, n: int = 60) -> list[np.ndarray]:
    m = Market(Universe.synthetic(n, 0), seed=3, start_ns=0)
    return [m.step(k * 20_000_000).copy() for k in range(1, n_flushes + 1)]


def _entries(batch: np.ndarray, shards: int, first: int, last: int) -> list[bc.Entry]:
    parts = bc.split(batch, shards)
    return [bc.decode_entry(s, f) for s, f in bc.encode_entries(parts, first, last, EPOCH, 123)]


records = arrays(TICK_DTYPE, st.integers(0, 40))


@given(records, st.integers(1, 8))
@settings(deadline=None)  # a shared machine: correctness here, never speed
def test_any_records_survive_split_encode_decode_merge(batch: np.ndarray, shards: int) -> None:
    batch = np.sort(batch, order="ts", kind="stable")  # a flush is in event order
    got = bc.merge(e.records for e in _entries(batch, shards, 1, 1))
    # same records; equal times on different shards come out in shard order
    key = lambda b: sorted(r.tobytes() for r in b)  # noqa: E731
    assert key(got) == key(batch)
    assert np.all(got["ts"][1:] >= got["ts"][:-1])
    for s in range(shards):  # within a shard, exactly the producer's order
        mine = batch["sym"] % shards == s
        assert got[got["sym"] % shards == s].tobytes() == batch[mine].tobytes()


@given(st.permutations(range(30)), st.integers(1, 5))
@settings(max_examples=50, deadline=None)
def test_reassembly_releases_whole_flushes_in_order(order: list[int], shards: int) -> None:
    """Shards arrive interleaved however (each in its own order): flushes come out in order."""
    batches = _batches()
    per_shard: dict[int, list[bc.Entry]] = {}
    for k, b in enumerate(batches, 1):
        for e in _entries(b, shards, k, k):
            per_shard.setdefault(e.shard, []).append(e)
    asm = Reassembler(EPOCH, next_flush=1)
    out: list[np.ndarray | None] = []
    cursors = dict.fromkeys(per_shard, 0)
    picks = [order[i % len(order)] % len(per_shard) for i in range(10_000)]
    for pick in picks:  # feed one shard's next entry at a time, shard chosen by the permutation
        shard = sorted(per_shard)[pick]
        if cursors[shard] < len(per_shard[shard]):
            out += asm.feed(per_shard[shard][cursors[shard]])
            cursors[shard] += 1
    for shard in per_shard:  # drain
        for e in per_shard[shard][cursors[shard] :]:
            out += asm.feed(e)
    assert all(o is not None for o in out)
    assert b"".join(o.tobytes() for o in out if o is not None) == b"".join(
        b.tobytes() for b in batches
    )


def test_a_skipped_flush_number_or_a_trimmed_part_is_a_gap() -> None:
    b = _batches(4)
    asm = Reassembler(EPOCH, next_flush=1)
    assert [x is None for e in _entries(b[0], 1, 1, 1) for x in asm.feed(e)] == [False]
    out = [x for e in _entries(b[2], 1, 3, 3) for x in asm.feed(e)]  # flush 2 never came
    assert out[0] is None and out[1] is not None
    # two shards: shard 0's part of flush 4 arrives, shard 1's was trimmed (it moved on to 5)
    asm = Reassembler(EPOCH, next_flush=4)
    four, five = _entries(b[3], 2, 4, 4), _entries(b[0], 2, 5, 5)
    assert asm.feed(four[0]) == []
    out = asm.feed(five[1])
    assert out[0] is None
    assert asm.feed(five[0])[0] is not None
    # another producer's epoch
    other = bc.decode_entry(0, bc.encode_entries(bc.split(b[0], 1), 6, 6, EPOCH + 1, 0)[0][1])
    assert asm.feed(other) == [None]


def test_completes_only_when_entries_alone_release_every_flush_without_a_gap() -> None:
    """The reader skips its second XREAD on `completes`: it must be False whenever a part
    could still be on a stream not read, a flush number was skipped, or a part is pending."""
    b = _batches(4)
    four = [e for e in _entries(b[0], 4, 1, 1) if len(e.records)]
    assert len({e.shard for e in four}) > 1, "needs a flush spread over shards"
    asm = Reassembler(EPOCH, next_flush=1)
    assert asm.completes(four)
    assert not asm.completes(four[:-1])  # a part on another stream is still to come
    assert not asm.completes([])
    nxt = _entries(b[1], 4, 2, 2)
    assert asm.completes(four + nxt) and not asm.completes(four + nxt[:-1])
    assert not Reassembler(EPOCH, next_flush=2).completes(four)  # not the next flush
    other = Reassembler(EPOCH + 1, next_flush=1)
    assert not other.completes(four)  # another producer: a gap, read everything first
    asm.feed(four[0])  # pending part: only the other streams can finish it
    assert not asm.completes(four[1:])
    for e in four[1:]:
        asm.feed(e)
    assert asm.completes(nxt)


def test_meta_and_latest_round_trip() -> None:
    u = Universe.default()
    meta = bc.decode_meta(bc.encode_meta(u, 7, 4))
    assert (meta.epoch, meta.shards) == (7, 4)
    assert meta.universe.reference() == u.reference()
    batch = np.concatenate(_batches(5))
    last = np.frombuffer(bc.latest_records(batch), TICK_DTYPE)
    snap = bc.decode_latest({str(r["sym"]).encode(): r.tobytes() for r in last}, 60)
    assert len(last) == len(np.unique(batch["sym"]))
    for i in np.unique(batch["sym"]):
        assert snap[i].tobytes() == batch[batch["sym"] == i][-1].tobytes()


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"{}", "not tickwire's"),
        (b"not json", "not tickwire's"),
        (b'{"format": 99, "epoch": 1, "shards": 1, "universe": []}', "tick format 99"),
    ],
)
def test_a_foreign_meta_key_is_a_precise_error(raw: bytes, match: str) -> None:
    with pytest.raises(bc.BusFormatError, match=match):
        bc.decode_meta(raw)


@given(st.dictionaries(st.binary(max_size=3), st.binary(max_size=70), max_size=6))
@settings(deadline=None)
def test_any_foreign_entry_raises_only_bus_format_error(fields: dict[bytes, bytes]) -> None:
    with contextlib.suppress(bc.BusFormatError):  # anything else fails the test
        bc.decode_entry(0, fields)  # type: ignore[arg-type]


def test_the_codec_imports_neither_trio_nor_redis() -> None:
    code = (
        "import sys, tickwire.feed.bus.codec; "
        "print('trio' in sys.modules, 'coredis' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_producer_orders_equal_times_as_gateways_rebuild_them() -> None:
    """The producer's own order (`canonical`) is what `merge` rebuilds from the shards, so a
    stream offset names the same record on the producer and on every gateway."""
    rng = np.random.default_rng(3)
    n, shards = 400, 4
    batch = np.zeros(n, TICK_DTYPE)
    batch["ts"] = np.sort(rng.integers(0, 60, n))  # many equal times
    batch["sym"] = rng.integers(0, 50, n)
    batch["seq"] = np.arange(n)
    ordered = bc.canonical(batch, shards)
    parts = [ordered[ordered["sym"] % shards == s] for s in range(shards)]
    assert bc.merge(parts).tobytes() == ordered.tobytes()
    assert sorted(ordered["seq"].tolist()) == list(range(n))  # the same records
    distinct = batch.copy()
    distinct["ts"] = np.arange(n)
    assert bc.canonical(distinct, shards) is distinct  # strictly increasing: untouched


def test_one_shard_keeps_the_producers_order_as_merge_does() -> None:
    """With one shard `merge` returns the part as it came, so `canonical` leaves it alone,
    equal times included (no sort on a producer's every step)."""
    batch = np.zeros(4, TICK_DTYPE)
    batch["ts"] = [1, 1, 2, 2]
    batch["sym"] = [3, 1, 2, 0]
    assert bc.canonical(batch, 1) is batch
    assert bc.merge([batch]) is batch


def test_a_short_flush_sends_its_records_once() -> None:
    from tickwire.feed.bus.write import FOLD_RECORDS, latest_for_write

    batch = np.zeros(3, TICK_DTYPE)
    batch["sym"] = [5, 2, 5]
    assert latest_for_write(batch) == b""  # the script folds the entry's own records
    long = np.zeros(FOLD_RECORDS + 1, TICK_DTYPE)
    long["sym"] = np.arange(FOLD_RECORDS + 1) % 7
    long["seq"] = np.arange(FOLD_RECORDS + 1)
    last = np.frombuffer(latest_for_write(long), TICK_DTYPE)  # one record per symbol
    assert sorted(last["seq"].tolist()) == list(range(FOLD_RECORDS - 6, FOLD_RECORDS + 1))


@pytest.mark.parametrize("shards", [1, 3])
@pytest.mark.parametrize("with_offset", [True, False])
@pytest.mark.parametrize("kind", ["long", "short", "statuses", "statuses alone"])
def test_the_flush_packer_packs_what_a_generic_packer_packs(
    shards: int, with_offset: bool, kind: str
) -> None:
    """`FlushPacker` writes RESP itself: byte for byte hiredis's packing of `flush_command`,
    for a coalesced write with a latest blob, a 1 ms flush, one with status changes and status
    changes alone."""
    hiredis = pytest.importorskip("hiredis")
    from tickwire.feed.bus import write as bw
    from tickwire.feed.bus.outbox import Outbox
    from tickwire.simulators.scenario import STATUS_DTYPE

    market = Market(Universe.synthetic(500, 0), seed=1, start_ns=0)
    market.step(10**10)
    outbox = Outbox(10**6)
    outbox.accept()
    halts = np.zeros(2, STATUS_DTYPE)
    halts["sym"], halts["status"] = [3, 4], [1, 0]
    if kind == "statuses alone":
        outbox.put_statuses(halts)
    flushes = {"long": 3, "statuses alone": 0}.get(kind, 1)  # three: one long, a latest blob
    for k in range(1, flushes + 1):
        batch = market.step(10**10 + k * 10**6 * (1 if k < 3 else 100))
        outbox.put(batch, 1000 * k if with_offset else None)
        if kind == "statuses":
            outbox.put_statuses(halts)
    taken = outbox.take()
    assert taken is not None and (len(taken.batch) == 0) == (kind == "statuses alone")
    assert (len(taken.batch) > bw.FOLD_RECORDS) == (kind == "long")
    opts = dict(namespace="ns", shards=shards, epoch=7, maxlen=99, token=b"h:1 07", lease_ms=1200)
    keys, args, entries = bw.flush_command(taken, sent_ns=55, **opts)  # type: ignore[arg-type]
    want = hiredis.pack_command((b"EVALSHA", bw.WRITE_SHA, str(len(keys)).encode(), *keys, *args))
    packer = bw.FlushPacker(bw.WRITE_SHA, **opts)  # type: ignore[arg-type]
    assert packer.pack(taken, 55) == (want, entries)
    assert packer.pack(taken, 55) == (want, entries)  # from its cache of packed keys
