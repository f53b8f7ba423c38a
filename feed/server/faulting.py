"""Which connections get injected faults: a client's `?faults=...&seed=N`, else the operator's
`serve --faults PATH=SPEC` for its path; and the server's tally of every fault injected.

Decided once per upgrade, before the 101: a bad spec is HTTP 400 with its one-line reason, no
fault asked means the plain core (nothing per message). Sans-IO.
"""

from __future__ import annotations

from collections.abc import Iterable

from tickwire.feed.faults import FaultSpec, FaultSpecError, Injector, from_query, parse_spec
from tickwire.feed.ws import http


def parse_path_spec(text: str) -> tuple[str, FaultSpec]:
    """`PATH=SPEC` of `serve --faults` (e.g. `/binance=disconnect:30s`); ValueError if bad."""
    path, eq, spec = text.partition("=")
    path = path.strip()
    if not eq or not path.startswith("/"):
        raise ValueError(f"expected PATH=SPEC such as /v1=drop:0.01, got {text!r}")
    try:
        return path.rstrip("/") or "/", parse_spec(spec)
    except FaultSpecError as exc:
        raise ValueError(f"{path}: {exc}") from None


class FaultPolicy:
    """The server's faults: the operator's per path, and the tally of every one injected."""

    def __init__(self, by_path: Iterable[tuple[str, FaultSpec]] = (), seed: int = 0) -> None:
        self.by_path = {path.rstrip("/") or "/": spec for path, spec in by_path}
        self.seed = seed
        self.counts: dict[str, int] = {}  # fault kind -> injected, over every connection
        self._made = 0  # faulty connections so far: the operator's faults differ per connection

    def injector(self, accept: http.Accept, now: float) -> Injector | http.Refuse | None:
        """This upgrade's injector, None for no faults, or a 400 for a bad spec."""
        try:
            asked = from_query(accept.query)
        except FaultSpecError as exc:
            return http.refusal(400, f"faults: {exc}", f"faults: {exc}\n")
        if asked is None:
            spec = self._for_path(accept.path or accept.route)
            if spec is None:
                return None
            asked = spec, self.seed * 1_000_003 + self._made
        spec, seed = asked
        if not spec.active:
            return None
        self._made += 1
        return Injector(spec, seed, now, self.counts)

    def _for_path(self, path: str) -> FaultSpec | None:
        """The operator's spec for the longest of its paths that is `path` or above it."""
        path = path.rstrip("/") or "/"
        best: tuple[int, FaultSpec] | None = None
        for prefix, spec in self.by_path.items():
            under = path == prefix or path.startswith(prefix + "/") or prefix == "/"
            if under and (best is None or len(prefix) > best[0]):
                best = len(prefix), spec
        return None if best is None else best[1]


__all__ = ["FaultPolicy", "parse_path_spec"]
