"""The closest names to a mistyped one ("did you mean AAPL?"), for the client's symbol check and
the server's `unknown_symbol` errors alike: difflib, case-insensitive, spelled as the universe
spells them. Never imports trio.

The server answers from its one loop, so a look-up is bounded: difflib compares the name with at
most `WINDOW` names, those sharing its first character and nearest to it in sorted order (the
whole universe when it is small): ~2 ms at most, where all 10,000 symbols took ~13 ms.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Iterable

WINDOW = 256  # names difflib compares at most per look-up (2-8 us each)


class Closest:
    """A universe's names, indexed once for `to`."""

    def __init__(self, names: Iterable[str]) -> None:
        self._spelled: dict[str, str] = {}
        for name in names:
            self._spelled.setdefault(name.casefold(), name)
        keys = sorted(self._spelled)
        self._all = keys if len(keys) <= WINDOW else None
        self._by_first: dict[str, list[str]] = {}
        for key in keys:  # sorted, so each bucket is too
            self._by_first.setdefault(key[:1], []).append(key)

    def to(self, name: str, n: int = 3) -> list[str]:
        """Up to `n` names close to `name`, the closest first."""
        key = name.strip().casefold()
        pool = self._all
        if pool is None:
            bucket = self._by_first.get(key[:1], [])
            at = bisect.bisect_left(bucket, key)
            lo = max(0, min(at - WINDOW // 2, len(bucket) - WINDOW))
            pool = bucket[lo : lo + WINDOW]
        return [self._spelled[c] for c in difflib.get_close_matches(key, pool, n=n)]


_last: tuple[object, Closest] | None = None  # the last universe asked about, and its index


def closest_to(name: str, names: Iterable[str], n: int = 3) -> list[str]:
    """`Closest(names).to(name, n)`, indexing `names` again only when it is another object
    (a server asks about its one universe)."""
    global _last
    if _last is None or _last[0] is not names:
        _last = (names, Closest(names))
    return _last[1].to(name, n)
