"""The start-up capacity check: refuse, in one line, a market this machine cannot run in real time.

`tickwire serve` generates the simulated market on the same core that sends it. Before it listens,
it measures what the universe costs here at the open, the busiest time (`Market.measure_load`:
CPU seconds per simulated second), and refuses a universe whose generation would take more than
`LOAD_LIMIT` of a core: the rest is for the hub, the history, the handshakes and the sending.
Beyond that the market falls behind the clock (its `ts` drift from real time) and every client
waits on it; at 20,000 symbols, measured, handshakes took seconds.

Fast (well under 0.5 s, even at 65,536 symbols) and robust on a busy machine:
- first an estimate from an even sample of `SAMPLE_SYMBOLS` symbols (milliseconds). It reads low
  for big universes (cache effects), so one over `CLEAR_FACTOR` x the limit refuses at once;
- otherwise the whole universe, one chunk at a time, up to `SAMPLES` times: the first measure
  under the limit accepts, so one slow sample (another process took the core) never refuses a
  universe that fits. A measure is CPU time of this thread, not wall time.
`--no-capacity-check` skips it, for people who know (a faster production machine, a test).
Only the simulated market is checked: a replay costs little to step.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tickwire.simulators import Market, Universe
from tickwire.simulators.errors import UserError

if TYPE_CHECKING:
    from tickwire.feed.server.server import ServerConfig

# Generation may take at most half a core at the open. Measured on a 2-vCPU VM: at 10,000
# symbols (~0.4 core of generation) the server stays responsive; at 20,000 (~0.9) it cannot.
LOAD_LIMIT = 0.5
# A bus producer only generates and writes (its writer has its own thread): most of a core.
PRODUCER_LIMIT = 0.85
SAMPLE_SYMBOLS = 1000  # the quick estimate's sample: ~15 ms a measure
SAMPLES = 3  # measures at most, per stage; the lowest counts (noise only ever adds CPU time)
# A measure this far over the limit refuses at once: on a 2-vCPU VM at load average 8, the
# same universe's measures varied by up to ~1.3x (CPU time grows when others share the cache).
CLEAR_FACTOR = 2.0


@dataclass(frozen=True, slots=True)
class Capacity:
    """What the universe costs on this machine at the open."""

    symbols: int
    activity: float
    updates_per_s: float  # expected at the open
    load: float  # CPU seconds per simulated second at the open
    estimated: bool  # from a sample only (a lower bound for big universes)

    def sustainable_symbols(self, limit: float = LOAD_LIMIT) -> int:
        """Symbols of the same kind this machine runs within `limit`, two significant figures."""
        n = self.symbols * limit / self.load if self.load > 0 else float(self.symbols)
        return _round_down(int(n))


def measure(market: Market, limit: float = LOAD_LIMIT) -> Capacity:
    """The market's load, as cheaply as the decision allows (see the module docstring)."""
    n = len(market.universe)
    rate = market.expected_rate()
    over = False  # the sample's estimate reads over the limit already
    if n > SAMPLE_SYMBOLS:
        estimate = min(market.measure_load(symbols=SAMPLE_SYMBOLS) for _ in range(SAMPLES))
        if estimate > CLEAR_FACTOR * limit:
            return Capacity(n, market.activity, rate, estimate, estimated=True)
        over = estimate > limit
    load = math.inf
    for _ in range(SAMPLES):
        load = min(load, market.measure_load(sim_s=0))  # one chunk
        # A measure far over the limit ends it only where the sample agreed: alone, one slow
        # measure (a fresh process's page faults, another process in the cache) is not proof.
        if load <= limit or (over and load > CLEAR_FACTOR * limit):
            break
    return Capacity(n, market.activity, rate, load, estimated=False)


def refusal(cap: Capacity, limit: float = LOAD_LIMIT) -> str | None:
    """The one-line reason to refuse `cap`, or None if it fits within `limit`."""
    if cap.load <= limit:
        return None
    about = "at least " if cap.estimated else ""  # a sample's estimate reads low
    fits = cap.sustainable_symbols(limit)
    sustain = (
        f"this machine sustains {'at most ' if cap.estimated else ''}about {fits:,} such symbols"
        if fits
        else "this machine cannot sustain even one such symbol"
    )
    producer = (
        ", or the Redis bus with a producer (README: Scaling)" if cap.load <= PRODUCER_LIMIT else ""
    )
    return (
        f"{cap.symbols:,} symbols at --activity {cap.activity:g} make ~{cap.updates_per_s:,.0f} "
        f"updates/s at the open and need {about}{cap.load:.2f} CPU s per second to generate "
        f"here, over the {limit:g} a server can spare; {sustain}: use fewer --symbols or a "
        f"lower --activity{producer} (--no-capacity-check starts anyway)"
    )


def add_argument(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--no-capacity-check",
        action="store_true",
        help="start even if this machine cannot generate the market in real time (measured at "
        "start: a universe whose generation takes over half a core at the open is refused)",
    )


def check(
    args: argparse.Namespace, config: ServerConfig, *, replay: bool, limit: float = LOAD_LIMIT
) -> None:
    """Raise `UserError` (one line, exit 2) if the simulated market cannot run in real time.

    A bus producer, which sends nothing itself, passes `limit=PRODUCER_LIMIT`."""
    if replay or getattr(args, "no_capacity_check", False):
        return
    market = Market(
        config.universe or Universe.default(),
        seed=config.seed,
        activity=config.activity,
        session=config.session,
        book_depth=config.book_depth or None,  # books cost most of the generation
    )
    reason = refusal(measure(market, limit), limit)
    if reason is not None and config.book_depth:
        reason = reason.replace(" (--no-capacity-check", ", or --book-depth 0 (--no-capacity-check")
    if reason is not None:
        raise UserError(reason)


def _round_down(n: int) -> int:
    """Down to two significant figures: 11,437 -> 11,000; a promise, not a measure."""
    if n < 100:
        return n
    step = int(10 ** (len(str(n)) - 2))
    return n // step * step
