"""Injected faults, per connection, sans-IO: the spec's grammar and what it does to data.

A client asks with `?faults=drop:0.01,dup:0.01,reorder:0.01,delay:50ms~20ms&seed=7` (the
operator per path with `serve --faults PATH=SPEC`). The spec is `name:value` items separated
by `,` (or `;`, which a comma-separated `TICKWIRE_FAULTS` variable leaves alone):

- `drop:RATE`, `dup:RATE`, `reorder:RATE`: a share of the data messages (0 to 1, or a percent
  such as `1%`) is dropped, sent twice, or held back and sent after the next one;
- `delay:D[~J]`: every data message waits D, plus or minus up to J (uniform), in order;
- `stall:D@EVERY`: every EVERY of the connection's life, it sends nothing for D;
- `disconnect:AFTER`: the connection's TCP is reset AFTER its opening, without a close frame;
- `maintenance:AFTER`: the connection is closed AFTER its opening as its venue does for its
  maintenance (`/v1`: close code 1012);
- `corrupt:RATE` (`/v1` order books and Kraken's `book`): a share of the book update entries
  gets a wrong checksum; a symbol whose checksum was corrupted gets none corrupted again until
  its book is sent afresh (a client cannot check updates to a book it has dropped), so each one
  is detectable.

Durations are tickwire's (`50ms`, `5s`, `1m`). `Injector` is one connection's faults: data in,
data (or nothing yet) out, and deadlines; its randomness is one `random.Random(seed)`, so the
same seed gives the same faults on the same stream. Only data messages pass through it: the
welcome, replies and errors never do. Every fault it injects is counted (`counts`, and the
server's shared tally). Imports nothing of the feed and never trio.
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from dataclasses import dataclass
from urllib.parse import parse_qs

from tickwire.simulators.durations import DurationError, parse_duration

log = logging.getLogger("tickwire.faults")

KINDS = ("drop", "dup", "reorder", "delay", "stall", "disconnect", "maintenance", "corrupt")
REORDER_HOLD_S = 1.0  # a message held back for a reorder goes out by then if nothing follows
MAX_SEED = 2**64 - 1
_ALLOWED = (
    "drop:RATE, dup:RATE, reorder:RATE (0 to 1 or a percent), delay:D[~JITTER], "
    "stall:D@EVERY, disconnect:AFTER, maintenance:AFTER, corrupt:RATE"
)


class FaultSpecError(ValueError):
    """A fault spec that cannot be read; the message is one line: what is wrong, what is allowed."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """What a connection asked for; zero or inf means that fault is off."""

    drop: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    delay_s: float = 0.0
    jitter_s: float = 0.0
    stall_s: float = 0.0
    stall_every_s: float = math.inf
    disconnect_s: float = math.inf
    maintenance_s: float = math.inf
    corrupt: float = 0.0

    @property
    def active(self) -> bool:
        """Whether this asks for any fault at all (`drop:0` alone asks for none)."""
        return self != FaultSpec()

    def text(self) -> str:
        """The spec as `parse_spec` reads it back (for logs and stats)."""
        parts = [
            f"{k}:{getattr(self, k):g}" for k in ("drop", "dup", "reorder") if getattr(self, k)
        ]
        if self.delay_s or self.jitter_s:
            parts.append(f"delay:{self.delay_s:g}s~{self.jitter_s:g}s")
        if self.stall_every_s < math.inf:
            parts.append(f"stall:{self.stall_s:g}s@{self.stall_every_s:g}s")
        for name in ("disconnect", "maintenance"):
            if (after := getattr(self, f"{name}_s")) < math.inf:
                parts.append(f"{name}:{after:g}s")
        if self.corrupt:
            parts.append(f"corrupt:{self.corrupt:g}")
        return ",".join(parts)


def parse_spec(text: str) -> FaultSpec:
    """A spec such as `drop:0.01,delay:50ms~20ms`; FaultSpecError says what is wrong."""
    values: dict[str, float] = {}
    seen: set[str] = set()
    for item in text.replace(";", ",").split(","):  # `;` too: a variable's list splits at `,`
        item = item.strip()
        if not item:
            continue
        name, colon, value = item.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name not in KINDS:
            raise FaultSpecError(f"unknown fault {name[:40]!r}; allowed: {_ALLOWED}")
        if not colon or not value:
            raise FaultSpecError(f"fault {name} needs a value ({name}:...); allowed: {_ALLOWED}")
        if name in seen:
            raise FaultSpecError(f"fault {name} given twice; give each fault once")
        seen.add(name)
        values.update(_value(name, value))
    return FaultSpec(**values)


def _value(name: str, value: str) -> dict[str, float]:
    if name in ("drop", "dup", "reorder", "corrupt"):
        return {name: _rate(name, value)}
    if name == "delay":
        mean, _, jitter = value.partition("~")
        delay_s = _duration(name, mean)
        jitter_s = _duration(name, jitter) if jitter else 0.0
        if jitter_s > delay_s:
            raise FaultSpecError(f"delay: jitter {jitter} is more than the delay {mean}")
        return {"delay_s": delay_s, "jitter_s": jitter_s}
    if name == "stall":
        length, at, every = value.partition("@")
        if not at:
            raise FaultSpecError(f"stall is stall:D@EVERY (e.g. stall:5s@60s), got {value!r}")
        stall_s, every_s = _duration(name, length), _duration(name, every)
        if not 0 < stall_s < every_s:
            raise FaultSpecError(f"stall: {length} must be more than 0 and less than {every}")
        return {"stall_s": stall_s, "stall_every_s": every_s}
    after_s = _duration(name, value)
    if after_s <= 0:
        raise FaultSpecError(f"{name}: must be more than 0, got {value!r}")
    return {f"{name}_s": after_s}


def _rate(name: str, value: str) -> float:
    try:
        rate = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        rate = math.nan
    if not 0 <= rate <= 1:
        raise FaultSpecError(f"{name}: rate must be from 0 to 1 (or 0% to 100%), got {value!r}")
    return rate


def _duration(name: str, value: str) -> float:
    try:
        return parse_duration(value.strip(), bare=False)
    except DurationError as exc:
        raise FaultSpecError(f"{name}: {exc}") from None


def from_query(query: str) -> tuple[FaultSpec, int] | None:
    """The `faults` and `seed` of a WebSocket URL's query, or None if it names no fault."""
    params = parse_qs(query, keep_blank_values=True)
    texts = params.get("faults")
    if not texts:
        return None  # a `seed` alone may be a venue's own parameter: nothing to do
    spec = parse_spec(",".join(texts))
    seed_text = params.get("seed", ["0"])[-1]
    if not seed_text.isdigit() or int(seed_text) > MAX_SEED:
        raise FaultSpecError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed_text!r}")
    return spec, int(seed_text)


class Injector:
    """One connection's faults: `outgoing` for each data message, `release` and `due_at` for
    the ones held back, and when to stall, disconnect or close for maintenance."""

    __slots__ = (
        "_corrupted",
        "_held",
        "_last_due",
        "_rng",
        "_shapes",
        "_stalls",
        "_swap",
        "_swap_until",
        "counts",
        "opened_s",
        "server_counts",
        "spec",
    )

    def __init__(
        self, spec: FaultSpec, seed: int, now: float, server_counts: dict[str, int] | None = None
    ) -> None:
        self.spec = spec
        self._rng = random.Random(seed)
        self.opened_s = now
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.server_counts = server_counts if server_counts is not None else {}
        self._held: deque[tuple[float, bytes]] = deque()  # (due, data), in send order
        self._last_due = -math.inf
        self._swap: bytes | None = None  # held back for a reorder
        self._swap_until = math.inf
        self._corrupted: set[object] = set()  # symbols whose checksum was, until sent afresh
        self._stalls = 0  # stalls counted so far (the k-th starts at opened_s + k * every)
        # Whether messages are ever touched (not so when only closes are asked for).
        self._shapes = bool(spec.drop or spec.dup or spec.reorder or spec.delay_s or spec.stall_s)

    def count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] += n
        self.server_counts[kind] = self.server_counts.get(kind, 0) + n
        log.debug("fault injected: %s", kind)

    def corrupts(self, symbol: object) -> bool:
        """Whether to corrupt the checksum of this book update entry of `symbol` (counted)."""
        rate = self.spec.corrupt
        if not rate or symbol in self._corrupted or self._rng.random() >= rate:
            return False
        self._corrupted.add(symbol)
        self.count("corrupt")
        return True

    def book_sent(self, symbol: object) -> None:
        """`symbol`'s whole book went out: its updates may be corrupted again."""
        self._corrupted.discard(symbol)

    def outgoing(self, data: bytes, now: float) -> bytes | None:
        """A data message about to leave: what to send now instead (None: nothing yet)."""
        if not self._shapes and not self._held:  # only closes asked for: the message as it is
            return data
        spec, rng = self.spec, self._rng
        if spec.drop and rng.random() < spec.drop:
            self.count("drop")
            return self.release(now)
        if spec.dup and rng.random() < spec.dup:
            self.count("dup")
            data += data
        if spec.reorder and self._swap is None and rng.random() < spec.reorder:
            self.count("reorder")
            self._swap, self._swap_until = data, now + REORDER_HOLD_S
            return self.release(now)
        if self._swap is not None:  # the held-back one goes out after this one
            data, self._swap, self._swap_until = data + self._swap, None, math.inf
        due = now
        if spec.delay_s:
            self.count("delay")
            due = now + spec.delay_s + spec.jitter_s * (2 * rng.random() - 1)
        due = max(due, self.stall_end(now), self._last_due)  # never overtakes one held
        if due > now:
            self._last_due = due
            self._held.append((due, data))
            return self.release(now)
        return self.release(now, data)

    def release(self, now: float, then: bytes | None = None) -> bytes | None:
        """What is due now of the messages held back (in order), followed by `then`."""
        out: list[bytes] = []
        held = self._held
        if self._swap is not None and now >= self._swap_until:  # nothing came after it
            self._last_due = max(now, self._last_due)  # behind those held before it
            held.append((self._last_due, self._swap))
            self._swap, self._swap_until = None, math.inf
        if held and not self.stalled(now):
            while held and held[0][0] <= now:
                out.append(held.popleft()[1])
        if then is not None:
            out.append(then)
        if len(out) < 2:
            return out[0] if out else None
        return b"".join(out)

    def holding(self) -> bool:
        return bool(self._held) or self._swap is not None

    def stall_end(self, now: float) -> float:
        """When the stall in force at `now` ends (-inf: none is)."""
        every = self.spec.stall_every_s
        if every == math.inf:
            return -math.inf
        k = math.floor((now - self.opened_s) / every)
        start = self.opened_s + k * every
        return (
            start + self.spec.stall_s if k >= 1 and now < start + self.spec.stall_s else -math.inf
        )

    def stalled(self, now: float) -> bool:
        """Whether a stall is in force at `now` (counted the first time one is seen)."""
        if self.stall_end(now) <= now:
            return False
        k = math.floor((now - self.opened_s) / self.spec.stall_every_s)
        if k > self._stalls:
            self._stalls = k
            self.count("stall")
        return True

    def next_stall(self, now: float) -> float:
        """When the next stall starts (inf: never)."""
        every = self.spec.stall_every_s
        if every == math.inf:
            return math.inf
        k = max(1, math.floor((now - self.opened_s) / every) + 1)
        return self.opened_s + k * every

    def close_due(self, now: float) -> str | None:
        """`disconnect` or `maintenance` once its time has come, else None."""
        spec = self.spec
        if now >= self.opened_s + spec.disconnect_s:
            return "disconnect"
        if now >= self.opened_s + spec.maintenance_s:
            return "maintenance"
        return None

    def due_at(self, now: float) -> float:
        """When something is due: a held message, a stall's end, a close (inf: nothing)."""
        spec = self.spec
        due = min(self.opened_s + spec.disconnect_s, self.opened_s + spec.maintenance_s)
        due = min(due, self._swap_until)
        if self._held:
            due = min(due, max(self._held[0][0], self.stall_end(now)))
        return due

    def statistics(self) -> dict[str, object]:
        return {"spec": self.spec.text(), **{k: n for k, n in self.counts.items() if n}}


__all__ = [
    "KINDS",
    "FaultSpec",
    "FaultSpecError",
    "Injector",
    "from_query",
    "parse_spec",
]
