"""Decimal text of whole numbers as fixed 4-byte words, for the client's dense books.

Owns the tables and the one vectorised formatter `dense.DenseBooks` keeps its checksum text
with: a number's digits right-aligned in `words` 4-byte words, leading zeros as NUL, so that a
level's text is a fixed-size record and a frame's checksum text is one gather and one
`bytes.translate` that drops the NULs. No trio, no sockets.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import NDArray

WORDS = 5  # 4-digit words a number may need (2^63 - 1 has 19 digits)
# by words of a number's text: the power of 2 its values stay under (< 10^(4 * words))
LIMITS = {1: 1 << 13, 2: 1 << 26, 3: 1 << 39, 4: 1 << 53, 5: 1 << 63}
END = b"|"  # ends a part of a frame's gather (never a digit)
# "0000" .. "9999" as the 4 bytes of a word each, after the same with leading zeros as NUL
# ("\0\0\0\0" for 0): a number's most significant word comes from the first half
_DIGITS = np.frombuffer(
    "".join(
        [*(str(i).rjust(4, "\0") if i else "\0" * 4 for i in range(10_000))]
        + [f"{i:04d}" for i in range(10_000)]
    ).encode(),
    np.uint32,
)
_LOW_DIGITS = _DIGITS.copy()  # a number's last word: 0 is "\0\0\0" "0"
_LOW_DIGITS[0] = np.frombuffer(b"\0\0\x000", np.uint32)[0]
END_WORD = np.frombuffer(END.ljust(4, b"\0"), np.uint32)[0]


def number_words(values: NDArray[np.int64], words: int = WORDS) -> NDArray[np.uint32]:
    """Each value's decimal digits (0 to 10^(4 * words) - 1) as `words` 4-byte words a row,
    right-aligned, leading zeros as NUL: its text once the NULs are dropped."""
    out = np.empty((words, len(values)), np.uint32)  # by word: each a contiguous row
    rest = values
    for col in range(words - 1, 0, -1):
        rest, low = np.divmod(rest, 10_000)
        np.add(low, 10_000, out=low, where=rest > 0)  # digits above: this word in full
        (_LOW_DIGITS if col == words - 1 else _DIGITS).take(low, out=out[col], mode="clip")
    (_LOW_DIGITS if words == 1 else _DIGITS).take(rest, out=out[0], mode="clip")
    return out.T


SMALL = 1 << 18  # numbers below this have their two-word text in `small_words()`


@cache
def small_words() -> NDArray[np.uint32]:
    """`number_words(values, 2)` of every value below SMALL, made once (2 MiB, about a
    millisecond): a frame's sizes are one lookup instead of a few arithmetic steps."""
    highs = -(-SMALL // 10_000)  # the first word's values
    out = np.empty((highs, 10_000, 2), np.uint32)
    out[:, :, 0] = _DIGITS[:highs, None]
    out[0, :, 1] = _LOW_DIGITS[:10_000]  # no digits above: the last word alone
    out[1:, :, 1] = _DIGITS[10_000:]  # digits above: the last word in full
    return out.reshape(-1, 2)[:SMALL]
