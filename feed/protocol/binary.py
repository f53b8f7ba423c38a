"""The wire protocol's binary frames, sans-IO: a 16- or 24-byte header, then TICK_DTYPE records.

Owns the header layouts (version 1, and version 2 with the stream offset), the encoder the server
uses and the zero-copy decoder clients use. Never imports trio, trio_websocket or textual.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from tickwire.simulators.ticks import TICK_DTYPE

BINARY_VERSION = 1
BINARY_VERSION_OFFSET = 2  # the 24-byte header with the stream offset, for resumable clients


class BinaryType(IntEnum):
    """Message type byte of a binary frame's header."""

    TICKS = 1
    SNAPSHOT = 2


HEADER_DTYPE = np.dtype(
    [("version", "<u1"), ("type", "<u1"), ("reserved", "<u2"), ("count", "<u4"), ("seq", "<u8")]
)
HEADER_SIZE = HEADER_DTYPE.itemsize  # 16: records after it stay 8-byte aligned
_HEADER = struct.Struct("<BBHIQ")  # HEADER_DTYPE's layout; packing it is ~15x cheaper
assert _HEADER.size == HEADER_SIZE
# Version 2 adds the stream offset (u8) after `seq`: sent only to a connection that asked for
# resume positions, so version-1 decoders (np.frombuffer at 16) keep working. Still 8-aligned.
_HEADER_OFFSET = struct.Struct("<BBHIQQ")
HEADER_OFFSET_SIZE = _HEADER_OFFSET.size  # 24


def binary_header(kind: BinaryType, seq: int, count: int, offset: int | None = None) -> bytes:
    if offset is None:
        return _HEADER.pack(BINARY_VERSION, kind, 0, count, seq)
    return _HEADER_OFFSET.pack(BINARY_VERSION_OFFSET, kind, 0, count, seq, offset)


def encode_binary(
    kind: BinaryType, seq: int, records: NDArray[np.void], offset: int | None = None
) -> bytes:
    """A binary market-data frame: header, then the TICK_DTYPE records as they are."""
    return binary_header(kind, seq, len(records), offset) + records.tobytes()


class DecodeError(ValueError):
    """A server frame that does not follow the protocol (a bug or a wrong server)."""


@dataclass(frozen=True, slots=True)
class BinaryFrame:
    kind: BinaryType
    seq: int
    records: NDArray[np.void]
    offset: int | None = None  # the stream position (version-2 frames only)


def decode_binary(payload: bytes | bytearray | memoryview) -> BinaryFrame:
    """Decode a binary frame with one np.frombuffer for the records (zero copy, read-only)."""
    if len(payload) < HEADER_SIZE:
        raise DecodeError(f"binary frame of {len(payload)} bytes is shorter than its header")
    version, type_, _, count, seq = _HEADER.unpack_from(payload)
    offset: int | None = None
    size = HEADER_SIZE
    if version == BINARY_VERSION_OFFSET:
        if len(payload) < HEADER_OFFSET_SIZE:
            raise DecodeError(f"binary frame of {len(payload)} bytes is shorter than its header")
        offset, size = _HEADER_OFFSET.unpack_from(payload)[5], HEADER_OFFSET_SIZE
    elif version != BINARY_VERSION:
        raise DecodeError(f"unsupported binary format version {version}")
    if len(payload) != size + count * TICK_DTYPE.itemsize:
        raise DecodeError(f"binary frame length {len(payload)} does not hold {count} records")
    try:
        kind = BinaryType(type_)
    except ValueError:
        raise DecodeError(f"unknown binary message type {type_}") from None
    records = np.frombuffer(payload, TICK_DTYPE, count=count, offset=size)
    return BinaryFrame(kind, seq, records, offset)
