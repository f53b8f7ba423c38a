"""The protocol's additions for lossless streams: mode, resume, epoch, stream offsets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwire.feed import protocol as p
from tickwire.simulators.ticks import TICK_DTYPE


def req(**fields: object) -> str:
    return json.dumps({"op": "subscribe", "symbols": ["A"], **fields})


def test_subscribe_takes_a_mode_and_a_resume_position():
    assert p.parse_request(req()) == p.Subscribe(("A",))  # a v1 request means what it meant
    assert p.parse_request(req(mode="latest")).mode == "latest"
    assert p.parse_request(req(mode="all")).mode == "all"
    assert p.parse_request(req(resume=True)).resume is True
    got = p.parse_request(req(resume={"epoch": "9f2c", "offset": 42}, id=3))
    assert got == p.Subscribe(("A",), True, 3, None, p.ResumeFrom("9f2c", 42))


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"mode": "fast"}, "mode must be"),
        ({"mode": 1}, "mode must be"),
        ({"resume": "yes"}, "resume must be"),
        ({"resume": {"epoch": "e"}}, "resume must be"),
        ({"resume": {"epoch": "e", "offset": -1}}, "resume must be"),
        ({"resume": {"epoch": "e", "offset": 1.5}}, "resume must be"),
        ({"resume": {"epoch": "", "offset": 1}}, "resume must be"),
        ({"resume": {"epoch": 7, "offset": 1}}, "resume must be"),
    ],
)
def test_a_bad_mode_or_resume_is_a_bad_request_that_says_what_is_allowed(fields, match):
    with pytest.raises(p.BadRequest, match=match) as info:
        p.parse_request(req(id=9, **fields))
    assert info.value.id == 9 and info.value.code == "bad_request"


def test_welcome_carries_the_epoch_when_given():
    base = {"server": "x/1", "encoding": "json", "heartbeat_ms": 1000, "n_symbols": 4}
    assert "epoch" not in p.welcome_message(**base)
    assert p.welcome_message(**base, epoch="00ff00ff00ff00ff")["epoch"] == "00ff00ff00ff00ff"


def test_resumed_ack_says_recovered_and_how_many_follow():
    ack = {"type": "ack", "op": "subscribe", "symbols": ["*"]}
    assert p.resumed_ack(ack, 12) == {**ack, "recovered": True, "missed": 12}
    assert p.resumed_ack(ack, 0) == {**ack, "recovered": True, "missed": 0}
    assert p.resumed_ack(ack, None) == {**ack, "recovered": False}


def test_ticks_text_carries_the_offset_when_given():
    body = p.join_fragments([])
    assert json.loads(p.ticks_text("ticks", 5, body)) == {"type": "ticks", "seq": 5, "ticks": []}
    assert json.loads(p.ticks_text("snapshot", 1, body, 123)) == {
        "type": "snapshot",
        "seq": 1,
        "offset": 123,
        "ticks": [],
    }


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 20), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_binary_frames_with_an_offset_round_trip(n, seq, offset):
    records = np.zeros(n, TICK_DTYPE)
    records["seq"] = np.arange(n)
    frame = p.encode_binary(p.BinaryType.TICKS, seq, records, offset)
    assert len(frame) == p.HEADER_OFFSET_SIZE + 64 * n == 24 + 64 * n
    got = p.decode_binary(frame)
    assert (got.seq, got.offset, got.kind) == (seq, offset, p.BinaryType.TICKS)
    assert got.records.tobytes() == records.tobytes()
    plain = p.decode_binary(p.encode_binary(p.BinaryType.TICKS, seq, records))
    assert plain.offset is None and plain.records.tobytes() == records.tobytes()


def test_a_short_version_2_frame_is_a_decode_error():
    frame = p.encode_binary(p.BinaryType.TICKS, 1, np.zeros(0, TICK_DTYPE), 5)
    with pytest.raises(p.DecodeError, match="shorter"):
        p.decode_binary(frame[:20])
    with pytest.raises(p.DecodeError, match="length"):
        p.decode_binary(frame + b"\0" * 8)
