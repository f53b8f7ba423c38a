"""The wire protocol v1, sans-IO: client frames in, typed requests out; messages in, bytes out.

Everything about the wire's shape lives here (PROTOCOL.md is the contract), in three modules:
`requests.py` (limits, close codes, one class per op, the error codes, `parse_request`),
`messages.py` (the JSON messages and tick objects, and their decoding for clients) and
`binary.py` (the binary frames' headers, encoder and decoder). This package re-exports their
public names, so `from tickwire.feed import protocol as p` reaches all of them. The order
book's wire parts (one book, its checksum, its messages and binary frames) are `protocol.book`.
Per-connection state (subscription, throttle, rate limit, strikes) is in `feed/v1/state.py`.
Never imports trio, trio_websocket or textual; reads no clock (time comes in as arguments).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tickwire.feed.protocol.requests import (
    ERROR_CODES,
    MAX_EPOCH_LEN,
    MAX_MESSAGE_BYTES,
    MAX_SYMBOL_LEN,
    MAX_THROTTLE_MS,
    MODES,
    PATH,
    PROTOCOL_VERSION,
    SUBPROTOCOL_BINARY,
    SUBPROTOCOL_JSON,
    SUBPROTOCOLS,
    WILDCARD,
    BadJson,
    BadRequest,
    CloseCode,
    Ping,
    RateLimited,
    Request,
    RequestError,
    ResumeFrom,
    Stats,
    Subscribe,
    Symbols,
    Throttle,
    TooManySymbols,
    UnknownOp,
    UnknownSymbol,
    Unsubscribe,
    id_of,
    parse_request,
)

if TYPE_CHECKING:
    from tickwire.feed.protocol.binary import (
        BINARY_VERSION,
        BINARY_VERSION_OFFSET,
        HEADER_DTYPE,
        HEADER_OFFSET_SIZE,
        HEADER_SIZE,
        BinaryFrame,
        BinaryType,
        DecodeError,
        binary_header,
        decode_binary,
        encode_binary,
    )
    from tickwire.feed.protocol.messages import (
        dumps,
        error_message,
        gap_message,
        heartbeat_text,
        join_fragments,
        object_starts,
        records_from_json,
        resumed_ack,
        tick_dicts,
        tick_fragments,
        tick_objects,
        tick_objects_at,
        ticks_body,
        ticks_text,
        welcome_message,
        with_id,
    )

# `binary` and `messages` (numpy, the tick record type) load at the first use of one of their
# names, so code that needs only `requests` (a client before its first batch, `tickwire tail`
# starting up) imports no numpy.
_LAZY = {
    "BINARY_VERSION": "binary",
    "BINARY_VERSION_OFFSET": "binary",
    "HEADER_DTYPE": "binary",
    "HEADER_OFFSET_SIZE": "binary",
    "HEADER_SIZE": "binary",
    "BinaryFrame": "binary",
    "BinaryType": "binary",
    "DecodeError": "binary",
    "binary_header": "binary",
    "decode_binary": "binary",
    "encode_binary": "binary",
    "dumps": "messages",
    "error_message": "messages",
    "gap_message": "messages",
    "heartbeat_text": "messages",
    "join_fragments": "messages",
    "object_starts": "messages",
    "records_from_json": "messages",
    "resumed_ack": "messages",
    "tick_dicts": "messages",
    "tick_fragments": "messages",
    "tick_objects": "messages",
    "tick_objects_at": "messages",
    "ticks_body": "messages",
    "ticks_text": "messages",
    "welcome_message": "messages",
    "with_id": "messages",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
    value = getattr(module, name)
    globals()[name] = value  # once: later lookups are plain attribute reads (the hot path)
    return value


__all__ = [
    "BINARY_VERSION",
    "BINARY_VERSION_OFFSET",
    "ERROR_CODES",
    "HEADER_DTYPE",
    "HEADER_OFFSET_SIZE",
    "HEADER_SIZE",
    "MAX_EPOCH_LEN",
    "MAX_MESSAGE_BYTES",
    "MAX_SYMBOL_LEN",
    "MAX_THROTTLE_MS",
    "MODES",
    "PATH",
    "PROTOCOL_VERSION",
    "SUBPROTOCOLS",
    "SUBPROTOCOL_BINARY",
    "SUBPROTOCOL_JSON",
    "WILDCARD",
    "BadJson",
    "BadRequest",
    "BinaryFrame",
    "BinaryType",
    "CloseCode",
    "DecodeError",
    "Ping",
    "RateLimited",
    "Request",
    "RequestError",
    "ResumeFrom",
    "Stats",
    "Subscribe",
    "Symbols",
    "Throttle",
    "TooManySymbols",
    "UnknownOp",
    "UnknownSymbol",
    "Unsubscribe",
    "binary_header",
    "decode_binary",
    "dumps",
    "encode_binary",
    "error_message",
    "gap_message",
    "heartbeat_text",
    "id_of",
    "join_fragments",
    "object_starts",
    "parse_request",
    "records_from_json",
    "resumed_ack",
    "tick_dicts",
    "tick_fragments",
    "tick_objects",
    "tick_objects_at",
    "ticks_body",
    "ticks_text",
    "welcome_message",
    "with_id",
]
