"""The wire contract, checked with a client we did not write (`websockets`) against the real
`tickwire serve` process: handshake, auth, ordering, seq, every error code and close code."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _support import serve_process
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from tickwire.feed.protocol import HEADER_SIZE, decode_binary
from tickwire.simulators import TICK_DTYPE

TOKEN = "s3cret"


@pytest.fixture(scope="module")
def url():
    with serve_process("--token", TOKEN, "--max-symbols", "5", "--heartbeat-ms", "100") as (_, url):
        yield url


def _open(url, proto="tickwire.v1", **kw):
    return ws_connect(
        url,
        subprotocols=[proto],
        additional_headers={"Authorization": f"Bearer {TOKEN}"},
        open_timeout=10,
        max_size=2**24,
        **kw,
    )


def _recv(ws):
    msg = ws.recv(timeout=10)
    return json.loads(msg) if isinstance(msg, str) else msg


def _until(ws, pred, limit=500):
    for _ in range(limit):
        m = _recv(ws)
        if pred(m):
            return m
    raise AssertionError("expected message never came")


def test_token_required(url):
    with pytest.raises(InvalidStatus) as err:
        ws_connect(url, open_timeout=10)
    assert err.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        ws_connect(url, additional_headers={"Authorization": "Bearer wrong"}, open_timeout=10)
    with ws_connect(url + f"?token={TOKEN}", open_timeout=10) as ws:  # browsers: query string
        assert _recv(ws)["type"] == "welcome"


def test_browser_origins_and_plain_requests(url):
    with pytest.raises(InvalidStatus) as err:
        _open(url, origin="https://evil.example")
    assert err.value.response.status_code == 403
    with _open(url, origin="http://localhost:3000") as ws:  # a page on this machine
        assert _recv(ws)["type"] == "welcome"
    with pytest.raises(InvalidStatus) as err:
        _open(url.replace("/v1", "/v2"))
    assert err.value.response.status_code == 404


def test_welcome_ack_snapshot_then_gap_free_data(url):
    with _open(url) as ws:
        assert ws.subprotocol == "tickwire.v1"
        welcome = _recv(ws)
        assert welcome["type"] == "welcome" and welcome["encoding"] == "tickwire.v1"
        assert welcome["symbols"] > 0 and welcome["heartbeat_ms"] == 100
        assert len(welcome["epoch"]) == 16
        ws.send(json.dumps({"op": "subscribe", "symbols": ["AAPL", "SPY"], "id": 7}))
        ack = _recv(ws)  # the ack comes before any data of its symbols
        assert ack == {
            "type": "ack",
            "id": 7,
            "op": "subscribe",
            "symbols": ["AAPL", "SPY"],
            "snapshot": True,
            "mode": "all",
        }
        snap = _recv(ws)
        assert snap["type"] == "snapshot" and {t["symbol"] for t in snap["ticks"]} == {
            "AAPL",
            "SPY",
        }
        seq, last = snap["seq"], {t["symbol"]: t["seq"] for t in snap["ticks"]}
        for _ in range(40):
            m = _recv(ws)
            assert m["type"] in ("ticks", "heartbeat")
            assert m["seq"] == seq + 1, "connection seq must have no gaps"
            seq = m["seq"]
            for t in m.get("ticks", []):
                assert t["seq"] == last[t["symbol"]] + 1, "every update, each once, in order"
                last[t["symbol"]] = t["seq"]
                assert t["bid"] < t["ask"] and isinstance(t["volume"], int)
        # unsubscribe while streaming: after the ack, no more SPY
        ws.send(json.dumps({"op": "unsubscribe", "symbols": ["SPY"], "id": 8}))
        ack = _until(ws, lambda m: m.get("type") == "ack")
        assert ack["symbols"] == ["AAPL"]
        for _ in range(30):
            m = _recv(ws)
            assert all(t["symbol"] == "AAPL" for t in m.get("ticks", []))


def test_wildcard_binary(url):
    with _open(url, "tickwire.v1.binary") as ws:
        assert ws.subprotocol == "tickwire.v1.binary"
        n = _recv(ws)["symbols"]
        ws.send(json.dumps({"op": "subscribe", "symbols": ["*"]}))
        assert _recv(ws)["symbols"] == ["*"]
        snap = decode_binary(_recv(ws))
        assert snap.kind == 2 and len(snap.records) == n
        frame = _until(ws, lambda m: isinstance(m, bytes))
        # one np.frombuffer decodes the records after the 16-byte header
        recs = np.frombuffer(frame, TICK_DTYPE, offset=HEADER_SIZE)
        assert len(recs) >= 1 and np.all(recs["bid"] < recs["ask"])
        assert decode_binary(frame).seq > snap.seq


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_request"),
        ('{"op": "subscribe"}', "bad_request"),
        ('{"op": "throttle", "interval_ms": 60001}', "bad_request"),
        ('{"op": "fly"}', "unknown_op"),
        ('{"op": "subscribe", "symbols": ["AAPL", "NOPE"]}', "unknown_symbol"),
        (
            '{"op": "subscribe", "symbols": ["AAPL","MSFT","NVDA","AMD","INTC","ORCL"]}',
            "too_many_symbols",
        ),
    ],
)
def test_error_codes(url, frame, code):
    with _open(url) as ws:
        _recv(ws)
        ws.send(frame)
        err = _until(ws, lambda m: m.get("type") == "error")
        assert err["code"] == code and err["message"]
        ws.send(json.dumps({"op": "ping", "id": 1}))  # an error never closes the connection
        assert _until(ws, lambda m: m.get("type") == "pong")["id"] == 1


def test_rate_limited_then_closed_for_abuse(url):
    with _open(url) as ws:
        _recv(ws)
        for _ in range(150):
            ws.send('{"op": "ping"}')
        codes = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                m = _recv(ws)
                if m.get("type") == "error":
                    codes.append(m["code"])
        assert "rate_limited" in codes
        assert closed.value.rcvd.code == 1008


def test_message_too_big_closes_with_1009(url):
    with _open(url) as ws:
        _recv(ws)
        ws.send('{"op":"ping","pad":"' + "x" * 70_000 + '"}')
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                _recv(ws)
        assert closed.value.rcvd.code == 1009


def test_pings_while_data_streams_never_break_a_frame(url):
    """Pings are answered through the same outbox as the data the generator and the
    connection send: every frame still parses, the connection seq has no gaps, every ping is
    ponged."""
    with _open(url) as ws:
        _recv(ws)  # welcome
        ws.send(json.dumps({"op": "subscribe", "symbols": ["*"], "snapshot": False}))
        assert _recv(ws)["type"] == "ack"
        seq = None
        pongs = []
        for i in range(300):
            if i % 2 == 0:
                pongs.append(ws.ping(str(i)))
            m = _recv(ws)
            assert m["type"] in ("ticks", "heartbeat")
            if seq is not None:
                assert m["seq"] == seq + 1, "connection seq must have no gaps"
            seq = m["seq"]
        assert all(p.wait(10) for p in pongs)
