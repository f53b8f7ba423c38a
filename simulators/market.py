"""PLACEHOLDER market: a minimal vectorised random walk behind the real `Market` interface.

Replaced by the stylized-facts model of the simulator issue; only the interface is final:
`Market(universe, seed, start_ns)`, `step(until_ns) -> TickBatch`, `snapshot()`.
"""

from __future__ import annotations

import numpy as np

from .ticks import TICK_DTYPE, TickBatch, TickFlag
from .universe import Universe


class Market:
    def __init__(
        self, universe: Universe, seed: int = 0, start_ns: int = 0, *, activity: float = 1.0
    ) -> None:
        self.universe = universe
        self.now_ns = start_ns
        self._rng = np.random.default_rng(np.random.SeedSequence(seed))
        n = len(universe)
        self._rate = 20.0 * universe.activity * activity  # updates per second per symbol
        self._last = np.zeros(n, TICK_DTYPE)
        self._last["sym"] = np.arange(n)
        self._last["ts"] = start_ns
        tick = universe.tick_size
        bid = np.round(universe.price / tick) * tick
        self._last["bid"] = bid
        self._last["ask"] = bid + tick
        self._last["last"] = bid
        self._last["bid_size"] = self._last["ask_size"] = universe.lot_size * 3
        self._last["flags"] = TickFlag.OPEN

    def snapshot(self) -> TickBatch:
        return self._last.copy()

    def step(self, until_ns: int) -> TickBatch:
        dt = (until_ns - self.now_ns) / 1e9
        if dt <= 0:
            return np.empty(0, TICK_DTYPE)
        counts = self._rng.poisson(self._rate * dt)
        sym = np.repeat(np.arange(len(counts)), counts)
        out = np.empty(sym.size, TICK_DTYPE)
        if sym.size == 0:
            self.now_ns = until_ns
            return out
        ts = self.now_ns + np.sort(self._rng.integers(1, until_ns - self.now_ns + 1, sym.size))
        self._rng.shuffle(sym)
        tick = self.universe.tick_size[sym]
        for k in range(sym.size):  # placeholder: a per-update loop, the model replaces it
            s = sym[k]
            rec = self._last[s].copy()
            move = self._rng.choice((-1, 0, 1)) * tick[k]
            rec["bid"] = round((rec["bid"] + move) / tick[k]) * tick[k]
            rec["ask"] = rec["bid"] + tick[k]
            rec["seq"] += 1
            rec["ts"] = ts[k]
            rec["flags"] = 0
            if self._rng.random() < 0.3:
                rec["flags"] = TickFlag.TRADE | TickFlag.BUY
                rec["last"] = rec["ask"]
                rec["last_size"] = 100
                rec["volume"] += 100
            out[k] = rec
            self._last[s] = rec
        self.now_ns = until_ns
        return out
