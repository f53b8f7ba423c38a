"""The wire protocol core, sans-IO: request parsing, binary frames and JSON ticks (PROTOCOL.md)."""

from __future__ import annotations

import json
import struct
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tickwire.feed import protocol as p
from tickwire.simulators.ticks import TICK_DTYPE, TickFlag

NAMES = np.array(["AAPL", "MSFT", "GOOG", "AMZN"], dtype=object)
INDEX = {s: i for i, s in enumerate(NAMES.tolist())}
TICK_KEYS = [
    "symbol",
    "seq",
    "ts",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "last",
    "last_size",
    "volume",
    "side",
    "flags",
]
VALID_FLAGS = [
    0,
    TickFlag.OPEN,
    TickFlag.TRADE | TickFlag.BUY,
    TickFlag.TRADE | TickFlag.SELL,
    TickFlag.TRADE | TickFlag.BUY | TickFlag.OPEN,
    TickFlag.TRADE | TickFlag.SELL | TickFlag.OPEN,
]


def dumps(obj: Any) -> str:
    return json.dumps(obj)


def raises(frame: str | bytes, cls: type[p.RequestError]) -> p.RequestError:
    with pytest.raises(p.RequestError) as info:
        p.parse_request(frame)
    assert type(info.value) is cls, info.value  # the exact class, not just a RequestError
    assert info.value.code == cls.code
    return info.value


def make_ticks(*rows: dict[str, Any]) -> np.ndarray:
    """TICK_DTYPE records; every field not given is a plausible default."""
    out = np.zeros(len(rows), TICK_DTYPE)
    for i, row in enumerate(rows):
        base = {"ts": 1_763_800_000_123_456_789, "seq": 1, "bid": 189.21, "ask": 189.23}
        base.update({"last": 189.22, "volume": 1_234_500, "bid_size": 300, "ask_size": 200})
        base.update({"last_size": 100, "sym": 0, "flags": 0})
        base.update(row)
        for k, v in base.items():
            out[i][k] = v
    return out


# --------------------------------------------------------------------------- parse_request


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"op": "subscribe", "symbols": ["AAPL", "MSFT"]}, p.Subscribe(("AAPL", "MSFT"))),
        (
            {"op": "subscribe", "symbols": ["*"], "snapshot": False, "id": 3},
            p.Subscribe(("*",), False, 3),
        ),
        ({"op": "subscribe", "symbols": ["A"], "snapshot": True}, p.Subscribe(("A",), True)),
        ({"op": "unsubscribe", "symbols": ["AAPL"], "id": 0}, p.Unsubscribe(("AAPL",), 0)),
        ({"op": "unsubscribe", "symbols": ["*"]}, p.Unsubscribe(("*",))),
        ({"op": "symbols"}, p.Symbols()),
        ({"op": "symbols", "id": 9}, p.Symbols(9)),
        ({"op": "throttle", "interval_ms": 0}, p.Throttle(0)),
        ({"op": "throttle", "interval_ms": 60_000, "id": -4}, p.Throttle(60_000, -4)),
        ({"op": "throttle", "interval_ms": 250, "id": None}, p.Throttle(250)),
        ({"op": "ping"}, p.Ping()),
        ({"op": "ping", "id": 2**63}, p.Ping(2**63)),
        ({"op": "stats", "id": 1}, p.Stats(1)),
        ({"op": "stats", "extra": [1, 2]}, p.Stats()),  # unknown fields are ignored
    ],
)
def test_every_op_parses_with_valid_fields(obj, expected):
    assert p.parse_request(dumps(obj)) == expected


def test_duplicate_symbols_are_dropped_in_order():
    req = p.parse_request(dumps({"op": "subscribe", "symbols": ["B", "A", "B", "C", "A"]}))
    assert req == p.Subscribe(("B", "A", "C"))


@pytest.mark.parametrize(
    "text", ["", " ", "{", "nope", "{'op': 'ping'}", '{"op":"ping",}', "\ud800"]
)
def test_bad_json(text):
    err = raises(text, p.BadJson)
    assert err.id is None


@pytest.mark.parametrize("text", ["[]", "1", '"ping"', "null", "true", '[{"op":"ping"}]'])
def test_not_an_object_is_bad_request(text):
    raises(text, p.BadRequest)


@pytest.mark.parametrize("frame", [b'{"op":"ping"}', b"", bytearray(b'{"op":"ping"}')])
def test_binary_frame_is_bad_request(frame):
    raises(frame, p.BadRequest)


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"id": 1},
        {"op": 1, "id": 1},
        {"op": None, "id": 1},
        {"op": ["ping"], "id": 1},
        {"op": "subscribe", "id": 1},
        {"op": "subscribe", "symbols": "AAPL", "id": 1},
        {"op": "subscribe", "symbols": [], "id": 1},
        {"op": "subscribe", "symbols": None, "id": 1},
        {"op": "subscribe", "symbols": ["AAPL", 5], "id": 1},
        {"op": "subscribe", "symbols": [""], "id": 1},
        {"op": "subscribe", "symbols": ["X" * 33], "id": 1},
        {"op": "subscribe", "symbols": [["AAPL"]], "id": 1},
        {"op": "subscribe", "symbols": {"AAPL": 1}, "id": 1},
        {"op": "subscribe", "symbols": ["AAPL"], "snapshot": 1, "id": 1},
        {"op": "subscribe", "symbols": ["AAPL"], "snapshot": "true", "id": 1},
        {"op": "subscribe", "symbols": ["AAPL"], "snapshot": None, "id": 1},
        {"op": "unsubscribe", "id": 1},
        {"op": "unsubscribe", "symbols": [], "id": 1},
        {"op": "unsubscribe", "symbols": [None], "id": 1},
        {"op": "throttle", "id": 1},
        {"op": "throttle", "interval_ms": None, "id": 1},
        {"op": "throttle", "interval_ms": -1, "id": 1},
        {"op": "throttle", "interval_ms": 60_001, "id": 1},
        {"op": "throttle", "interval_ms": 5.0, "id": 1},
        {"op": "throttle", "interval_ms": "5", "id": 1},
        {"op": "throttle", "interval_ms": True, "id": 1},  # bool where int
        {"op": "throttle", "interval_ms": False, "id": 1},
    ],
)
def test_wrong_types_and_missing_fields_are_bad_request_with_the_id(obj):
    err = raises(dumps(obj), p.BadRequest)
    assert err.id == obj.get("id")
    assert err.message


def test_symbol_of_max_length_is_fine():
    assert p.parse_request(dumps({"op": "subscribe", "symbols": ["X" * 32]})).symbols == ("X" * 32,)


@pytest.mark.parametrize("rid", [True, False, 1.0, 1.5, "1", [1], {"a": 1}, 2**64, -(2**63) - 1])
def test_an_id_that_is_not_an_integer_is_bad_request_without_an_id(rid):
    # 2**64 and below -2**63 do not fit the wire's 64-bit integers: they decode as floats
    err = raises(dumps({"op": "ping", "id": rid}), p.BadRequest)
    assert err.id is None
    assert "id" in err.message


@pytest.mark.parametrize("op", ["", "PING", "subscribes", "sub", "unsubscribe ", "close"])
def test_unknown_op_echoes_the_id(op):
    err = raises(dumps({"op": op, "id": 42}), p.UnknownOp)
    assert err.id == 42
    assert "subscribe" in err.message and "stats" in err.message  # says what is allowed


def test_error_message_shape():
    err = raises(dumps({"op": "nope", "id": 0}), p.UnknownOp)
    msg = orjson.loads(p.dumps(p.error_message(err)))
    assert msg == {"type": "error", "id": 0, "code": "unknown_op", "message": err.message}
    err = raises("{", p.BadJson)
    assert set(p.error_message(err)) == {"type", "code", "message"}  # no id when none was parsed
    err = p.UnknownSymbol("unknown", id=5, symbols=["X", "Y"])
    assert p.error_message(err) == {
        "type": "error",
        "id": 5,
        "code": "unknown_symbol",
        "message": "unknown",
        "symbols": ["X", "Y"],
    }


def test_error_codes_and_close_codes_are_the_documented_ones():
    assert set(p.ERROR_CODES) == {
        "bad_json",
        "bad_request",
        "unknown_op",
        "unknown_symbol",
        "too_many_symbols",
        "rate_limited",
    }
    assert {c.code for c in p.RequestError.__subclasses__()} == set(p.ERROR_CODES)
    assert {c.name: int(c) for c in p.CloseCode} == {
        "NORMAL": 1000,
        "GOING_AWAY": 1001,
        "POLICY": 1008,
        "TOO_BIG": 1009,
        "INTERNAL_ERROR": 1011,
        "TRY_AGAIN_LATER": 1013,
    }


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)
OPS = ["subscribe", "unsubscribe", "symbols", "throttle", "ping", "stats"]
requestish = st.fixed_dictionaries(
    {},
    optional={
        "op": st.sampled_from(OPS) | json_values,
        "id": st.integers(-(2**63), 2**64 - 1) | json_values,
        "symbols": st.lists(st.sampled_from(["AAPL", "*", ""]) | json_values, max_size=4)
        | json_values,
        "snapshot": st.booleans() | json_values,
        "interval_ms": st.integers(-10, 70_000) | json_values,
    },
)


def _check_parse(frame: str) -> None:
    try:
        req = p.parse_request(frame)
    except p.RequestError as err:
        assert err.code in p.ERROR_CODES
        p.dumps(p.error_message(err))  # every error can be sent as it is
        return
    assert isinstance(req, p.Subscribe | p.Unsubscribe | p.Symbols | p.Throttle | p.Ping | p.Stats)


@settings(deadline=None)
@given(st.text())
def test_any_text_parses_or_raises_a_request_error(text):
    _check_parse(text)


@settings(deadline=None)
@given(json_values)
def test_any_json_value_parses_or_raises_a_request_error(value):
    _check_parse(dumps(value))


@settings(deadline=None)
@given(requestish)
def test_request_like_objects_parse_or_raise_with_the_id_echoed(obj):
    try:
        p.parse_request(dumps(obj))
    except p.RequestError as err:
        rid = obj.get("id")
        if type(rid) is int and -(2**63) <= rid < 2**64:
            assert err.id == rid  # a parseable id is always echoed
        else:
            assert err.id is None


symbol_lists = st.lists(st.text(min_size=1, max_size=32), min_size=1, max_size=8, unique=True)
ids = st.none() | st.integers(-(2**63), 2**64 - 1)


@settings(deadline=None)
@given(symbol_lists, st.sampled_from([None, True, False]), ids)
def test_valid_subscribe_round_trips(symbols, snapshot, rid):
    obj: dict[str, Any] = {"op": "subscribe", "symbols": symbols}
    if snapshot is not None:
        obj["snapshot"] = snapshot
    if rid is not None:
        obj["id"] = rid
    req = p.parse_request(dumps(obj))
    assert req == p.Subscribe(tuple(symbols), snapshot is not False, rid)


@settings(deadline=None)
@given(symbol_lists, ids)
def test_valid_unsubscribe_round_trips(symbols, rid):
    obj: dict[str, Any] = {"op": "unsubscribe", "symbols": symbols, "id": rid}
    assert p.parse_request(dumps(obj)) == p.Unsubscribe(tuple(symbols), rid)


@settings(deadline=None)
@given(st.integers(0, p.MAX_THROTTLE_MS), ids)
def test_valid_throttle_round_trips(ms, rid):
    obj: dict[str, Any] = {"op": "throttle", "interval_ms": ms}
    if rid is not None:
        obj["id"] = rid
    assert p.parse_request(dumps(obj)) == p.Throttle(ms, rid)


@settings(deadline=None)
@given(st.integers().filter(lambda n: not 0 <= n <= p.MAX_THROTTLE_MS))
def test_throttle_out_of_range_is_bad_request(ms):
    raises(dumps({"op": "throttle", "interval_ms": ms, "id": 1}), p.BadRequest)


# --------------------------------------------------------------------------- binary frames


def test_header_is_16_bytes_little_endian_as_documented():
    assert p.HEADER_SIZE == p.HEADER_DTYPE.itemsize == 16
    assert p.HEADER_DTYPE.names == ("version", "type", "reserved", "count", "seq")
    fields = p.HEADER_DTYPE.fields
    assert [fields[n][0].str for n in p.HEADER_DTYPE.names] == ["|u1", "|u1", "<u2", "<u4", "<u8"]
    frame = p.encode_binary(p.BinaryType.SNAPSHOT, 0x0102030405060708, make_ticks({}, {}, {}))
    assert frame[:16] == struct.pack("<BBHIQ", 1, 2, 0, 3, 0x0102030405060708)
    assert frame[:16] == bytes([1, 2, 0, 0, 3, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1])
    assert len(frame) == 16 + 3 * 64
    assert int(p.BinaryType.TICKS) == 1 and int(p.BinaryType.SNAPSHOT) == 2


def test_tick_dtype_is_the_documented_record():
    assert TICK_DTYPE.itemsize == 64
    assert [(n, TICK_DTYPE.fields[n][0].str) for n in TICK_DTYPE.names] == [
        ("ts", "<i8"),
        ("seq", "<u8"),
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("last", "<f8"),
        ("volume", "<u8"),
        ("sym", "<u2"),
        ("flags", "<u2"),
        ("bid_size", "<u4"),
        ("ask_size", "<u4"),
        ("last_size", "<u4"),
    ]


tick_arrays = hnp.arrays(TICK_DTYPE, st.integers(0, 20))
few_ticks = hnp.arrays(TICK_DTYPE, st.integers(0, 3))
seqs = st.integers(0, 2**64 - 1)
kinds = st.sampled_from(list(p.BinaryType))


@settings(deadline=None)
@given(tick_arrays, kinds, seqs)
def test_binary_round_trip(records, kind, seq):
    frame = p.encode_binary(kind, seq, records)
    assert len(frame) == 16 + 64 * len(records)
    decoded = p.decode_binary(frame)
    assert decoded.kind is kind
    assert decoded.seq == seq
    assert decoded.records.dtype == TICK_DTYPE
    assert decoded.records.tobytes() == records.tobytes()
    for name in TICK_DTYPE.names:  # the same values too (NaN payloads included, via the bytes)
        assert np.array_equal(
            decoded.records[name], records[name], equal_nan=name in ("bid", "ask", "last")
        )
    # one np.frombuffer call after the header, as the README tells clients
    plain = np.frombuffer(frame, TICK_DTYPE, offset=16)
    assert plain.tobytes() == records.tobytes()
    assert np.frombuffer(frame[16:], TICK_DTYPE).tobytes() == records.tobytes()
    # and from any bytes-like object a WebSocket library may hand over
    assert p.decode_binary(bytearray(frame)).records.tobytes() == records.tobytes()
    assert p.decode_binary(memoryview(frame)).seq == seq


@settings(max_examples=40, deadline=None)
@given(few_ticks.filter(len), kinds, seqs, st.data())
def test_truncated_or_extended_frames_raise_decode_error(records, kind, seq, data):
    frame = p.encode_binary(kind, seq, records)
    cut = data.draw(st.integers(0, len(frame) - 1))
    with pytest.raises(p.DecodeError):
        p.decode_binary(frame[:cut])
    with pytest.raises(p.DecodeError):
        p.decode_binary(frame + data.draw(st.binary(min_size=1, max_size=70)))


@settings(max_examples=40, deadline=None)
@given(few_ticks, seqs, st.integers(0, 255).filter(lambda v: v not in (1, 2)))  # 2: with offset
def test_unknown_version_raises_decode_error(records, seq, version):
    frame = bytearray(p.encode_binary(p.BinaryType.TICKS, seq, records))
    frame[0] = version
    with pytest.raises(p.DecodeError, match="version"):
        p.decode_binary(bytes(frame))


@settings(max_examples=40, deadline=None)
@given(few_ticks, seqs, st.integers(0, 255).filter(lambda v: v not in (1, 2)))
def test_unknown_type_raises_decode_error(records, seq, kind):
    frame = bytearray(p.encode_binary(p.BinaryType.TICKS, seq, records))
    frame[1] = kind
    with pytest.raises(p.DecodeError, match="type"):
        p.decode_binary(bytes(frame))


@settings(max_examples=40, deadline=None)
@given(few_ticks, st.integers(0, 2**32 - 1))
def test_a_count_that_disagrees_with_the_length_raises_decode_error(records, count):
    frame = bytearray(p.encode_binary(p.BinaryType.TICKS, 7, records))
    assume(count != len(records))
    frame[4:8] = struct.pack("<I", count)
    with pytest.raises(p.DecodeError):
        p.decode_binary(bytes(frame))


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_garbage_decodes_or_raises_decode_error(data):
    try:
        frame = p.decode_binary(data)
    except p.DecodeError:
        return
    assert len(data) == 16 + 64 * len(frame.records)


# --------------------------------------------------------------------------- JSON ticks

cents = st.integers(1, 10**9)
tick_rows = st.fixed_dictionaries(
    {
        "sym": st.integers(0, len(NAMES) - 1),
        "seq": seqs,
        "ts": st.integers(-(2**63), 2**63 - 1),
        "bid": cents.map(lambda c: c / 100),
        "ask": cents.map(lambda c: c / 100),
        "last": st.floats(allow_nan=False, allow_infinity=False),
        "volume": seqs,
        "bid_size": st.integers(0, 2**32 - 1),
        "ask_size": st.integers(0, 2**32 - 1),
        "last_size": st.integers(0, 2**32 - 1),
        "flags": st.sampled_from(VALID_FLAGS).map(int),
    }
)
valid_ticks = st.lists(tick_rows, max_size=20).map(lambda rows: make_ticks(*rows))


def test_tick_object_is_the_documented_one():
    rec = make_ticks({"sym": 0, "seq": 1042, "flags": TickFlag.TRADE | TickFlag.BUY})
    (tick,) = p.tick_dicts(rec, NAMES)
    assert list(tick) == TICK_KEYS
    assert tick == {
        "symbol": "AAPL",
        "seq": 1042,
        "ts": 1763800000123456789,
        "bid": 189.21,
        "ask": 189.23,
        "bid_size": 300,
        "ask_size": 200,
        "last": 189.22,
        "last_size": 100,
        "volume": 1234500,
        "side": "buy",
        "flags": 3,
    }
    text = p.ticks_body(rec, NAMES).decode()
    assert '"bid":189.21,"ask":189.23' in text  # the shortest decimal form of the price


@pytest.mark.parametrize(
    ("flags", "side"),
    [
        (0, None),
        (TickFlag.OPEN, None),
        (TickFlag.TRADE, None),
        (TickFlag.TRADE | TickFlag.BUY, "buy"),
        (TickFlag.TRADE | TickFlag.SELL, "sell"),
        (TickFlag.TRADE | TickFlag.SELL | TickFlag.OPEN, "sell"),
    ],
)
def test_side_follows_the_flags(flags, side):
    (tick,) = p.tick_dicts(make_ticks({"flags": flags}), NAMES)
    assert tick["side"] == side and tick["flags"] == int(flags)


@settings(deadline=None)
@given(valid_ticks, st.sampled_from(["ticks", "snapshot"]), st.integers(1, 2**63))
def test_json_ticks_are_valid_json_and_reproduce_the_records(records, kind, seq):
    body = p.ticks_body(records, NAMES)
    assert body == p.join_fragments(p.tick_fragments(records, NAMES))
    text = p.ticks_text(kind, seq, body)
    msg = json.loads(text)  # strict JSON for any client, not just orjson
    assert msg == orjson.loads(text)
    assert list(msg) == ["type", "seq", "ticks"]
    assert msg["type"] == kind and msg["seq"] == seq
    assert len(msg["ticks"]) == len(records)
    for tick, rec in zip(msg["ticks"], records, strict=True):
        assert list(tick) == TICK_KEYS
        assert tick["symbol"] == NAMES[rec["sym"]]
        for k in ("seq", "ts", "bid_size", "ask_size", "last_size", "volume", "flags"):
            assert type(tick[k]) is int and tick[k] == int(rec[k])
        for k in ("bid", "ask", "last"):
            assert type(tick[k]) is float and tick[k] == float(rec[k])
        assert tick["side"] in ("buy", "sell", None)
    again = p.records_from_json(msg["ticks"], INDEX)
    assert again.dtype == TICK_DTYPE
    assert again.tobytes() == records.tobytes()
    # and the binary path carries the very same records
    binary = p.decode_binary(p.encode_binary(p.BinaryType.TICKS, seq, records)).records
    assert binary.tobytes() == again.tobytes()


def test_ticks_text_of_nothing():
    assert json.loads(p.ticks_text("ticks", 5, p.join_fragments([]))) == {
        "type": "ticks",
        "seq": 5,
        "ticks": [],
    }
    assert len(p.records_from_json([], INDEX)) == 0


def test_records_from_json_defaults_missing_flags_to_zero():
    (tick,) = p.tick_dicts(make_ticks({"flags": 1}), NAMES)
    del tick["flags"], tick["side"]
    assert p.records_from_json([tick], INDEX)["flags"].tolist() == [0]


@pytest.mark.parametrize(
    "change",
    [
        {"symbol": "NOPE"},
        {"bid": "abc"},
        {"bid_size": -1},
        {"seq": 2**64},
        {"seq": None},
        {"volume": [1]},
    ],
)
def test_malformed_json_ticks_raise_decode_error(change):
    (tick,) = p.tick_dicts(make_ticks({}), NAMES)
    tick.update(change)
    with pytest.raises(p.DecodeError):
        p.records_from_json([tick], INDEX)


@pytest.mark.parametrize("field", ["symbol", "seq", "ts", "bid", "ask", "volume", "last_size"])
def test_json_ticks_missing_a_field_raise_decode_error(field):
    (tick,) = p.tick_dicts(make_ticks({}), NAMES)
    del tick[field]
    with pytest.raises(p.DecodeError):
        p.records_from_json([tick], INDEX)


def test_heartbeat_and_welcome_are_json():
    assert json.loads(p.heartbeat_text(7, 123)) == {"type": "heartbeat", "seq": 7, "ts": 123}
    welcome = p.welcome_message(server="x/1", encoding="json", heartbeat_ms=1000, n_symbols=4)
    assert json.loads(p.dumps(welcome))["type"] == "welcome"
    assert welcome["max_message_bytes"] == 64 * 1024
