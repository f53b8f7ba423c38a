"""A take's binary data frames (`protocol.binary`), as every reader of the take sends them.

Readers of one take (every `*` reader in step) send the same frame but for their own `seq`: the
frame header, the message header's bytes before `seq` (version, type, count) and after it (the
stream offset, for a reader that asked for it) and the records are the same for all of them,
made once per take and kept with it (`Pending.frames`); each reader adds its 8 bytes of `seq`.
Sans-IO: bytes in, bytes out.
"""

from __future__ import annotations

from tickwire.feed import protocol as p
from tickwire.feed.hub.subscriber import Pending
from tickwire.feed.ws.frames import GATHER_BYTES, OP_BINARY, Out, frame_header

# Where `seq` sits in a message header (`protocol.binary_header`): bytes 8 to 16, little-endian.
_SEQ_AT = 8
_PROBE = 0x0102030405060708
assert p.binary_header(p.BinaryType.TICKS, _PROBE, 0)[_SEQ_AT : _SEQ_AT + 8] == (
    _PROBE.to_bytes(8, "little")
)


def binary_frame(pending: Pending, kind: p.BinaryType, seq: int, offset: int | None) -> Out:
    """The frame of `pending`'s records of `kind` stamped with `seq` (and `offset`, if the
    reader asked for stream positions): one bytes object, or the reader's own first bytes and
    the shared records when those are large (sent with one `sendmsg`, not copied)."""
    key = (kind, offset is not None)
    made = pending.frames.get(key)
    if made is None:
        body = pending.record_bytes()
        head = p.binary_header(kind, 0, len(pending.records), offset)
        before = frame_header(len(head) + len(body), OP_BINARY) + head[:_SEQ_AT]
        made = pending.frames[key] = (before, head[_SEQ_AT + 8 :], body)
    before, after, body = made
    first = before + seq.to_bytes(8, "little") + after
    return [first, body] if len(body) >= GATHER_BYTES else first + body
