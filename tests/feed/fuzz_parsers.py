"""Coverage-guided fuzzing (atheris) of every parser that reads bytes a peer controls (issue 9).

Targets, each behind one leading selector byte:
- `protocol.parse_request`: any text or bytes raises only `RequestError` (the wire's error codes);
  a request it accepts is one of the six typed requests.
- `protocol.decode_binary`: any bytes raise only `DecodeError`; a frame it accepts re-encodes to
  the same bytes with `encode_binary` (but the `reserved` field, which readers ignore).
- the listener's HTTP front (`HttpFront.receive_data`, issue 9's sans-IO request parser), when the
  installed package has it: any bytes, in any chunks, give None, an accept or a refusal, never an
  exception; a refusal is a complete HTTP/1.1 response (or nothing, for a closed socket).

`python tests/feed/fuzz_parsers.py -runs=200000 [-seed=1] [CORPUS_DIR]`; libFuzzer's flags apply.
A seed corpus of valid requests and frames is written to CORPUS_DIR when it is empty.
`tests/feed/test_fuzz_parsers.py` runs it, bounded, as a slow test. Needs `tickwire[fuzz]`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import atheris

with atheris.instrument_imports(include=["tickwire"]):
    import numpy as np

    from tickwire.feed import protocol as p

    try:  # the wsproto-based listener of issue 9; fuzzed once it exists
        from tickwire.feed.ws.http import HttpFront, Policy
    except ImportError:
        HttpFront = None  # type: ignore[assignment,misc]

REQUESTS = (p.Subscribe, p.Unsubscribe, p.Symbols, p.Throttle, p.Ping, p.Stats)


def fuzz_request(data: bytes) -> None:
    # first byte odd: a binary frame; else UTF-8 text (invalid bytes become U+FFFD, as a
    # WebSocket library would have refused them: the parser sees text, never bad UTF-8)
    frame: str | bytes = (
        data[1:] if data[:1] and data[0] & 1 else data[1:].decode("utf-8", "replace")
    )
    try:
        req = p.parse_request(frame)
    except p.RequestError as exc:
        assert exc.code in p.ERROR_CODES, exc.code
        assert isinstance(exc.message, str) and exc.message
        return
    assert isinstance(req, REQUESTS), req


def fuzz_binary(data: bytes) -> None:
    try:
        frame = p.decode_binary(data)
    except p.DecodeError:
        return
    assert len(frame.records) * p.TICK_DTYPE.itemsize + p.HEADER_SIZE == len(data)
    again = p.encode_binary(frame.kind, frame.seq, frame.records)
    assert again[:2] + again[4:] == data[:2] + data[4:]  # `reserved` (bytes 2-3) is not read


def _policy() -> Any:
    return Policy(ws_routes={"/v1": p.SUBPROTOCOLS}, tokens=("s3cret",))


def fuzz_http(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    front = HttpFront(_policy())
    result = None
    while fdp.remaining_bytes() and result is None:
        chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 4096))
        result = front.receive_data(chunk)
    if result is None:
        result = front.receive_data(b"")  # EOF: decide now
    response = getattr(result, "response", None)
    assert result is not None
    assert isinstance(response, bytes)
    if response:
        assert response.startswith(b"HTTP/1.1 "), response[:40]
        assert b"\r\n\r\n" in response


TARGETS: list[Callable[[bytes], None]] = [fuzz_request, fuzz_binary]
if HttpFront is not None:
    TARGETS.append(fuzz_http)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    TARGETS[data[0] % len(TARGETS)](data[1:])


def seed_corpus(directory: str) -> None:
    """Valid inputs for each target, so mutation starts near the interesting shapes."""
    if os.listdir(directory):
        return
    text = [
        '{"op":"subscribe","symbols":["AAPL","MSFT"],"id":1}',
        '{"op":"subscribe","symbols":["*"],"snapshot":false}',
        '{"op":"unsubscribe","symbols":["*"]}',
        '{"op":"throttle","interval_ms":250,"id":9}',
        '{"op":"ping"}',
        '{"op":"symbols"}',
        '{"op":"stats","id":3}',
    ]
    records = np.zeros(2, p.TICK_DTYPE)
    records["bid"], records["ask"] = 10.0, 10.01
    frames = [p.encode_binary(p.BinaryType.TICKS, 7, records)]
    http = [
        b"GET /v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGlja3dpcmUtdGVzdC0xNg==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: tickwire.v1.binary\r\nOrigin: http://127.0.0.1\r\n"
        b"Authorization: Bearer s3cret\r\n\r\n",
        b"GET /?token=x HTTP/1.1\r\nHost: a\r\n\r\n",
    ]
    seeds = [bytes([0, 0]) + t.encode() for t in text]
    seeds += [bytes([1]) + f for f in frames]
    seeds += [bytes([2, 0]) + h for h in http]
    for i, seed in enumerate(seeds):
        with open(os.path.join(directory, f"seed-{i}"), "wb") as f:
            f.write(seed)


def main() -> None:
    dirs = [a for a in sys.argv[1:] if not a.startswith("-")]
    for d in dirs[:1]:
        os.makedirs(d, exist_ok=True)
        seed_corpus(d)
    names = ", ".join(t.__name__ for t in TARGETS)
    print(f"fuzzing {names}", file=sys.stderr, flush=True)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
