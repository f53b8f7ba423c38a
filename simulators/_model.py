"""The market's model: per-symbol parameters, its state at the open, and a chunk's dynamics.

`Model` is the base of `market.Market` and owns the stochastic model the market's docstring
describes: the static per-symbol parameters (volatility shares, ticks, lots, rates), the dynamic
state (log-prices, volatility components, Hawkes excitation, quotes), and the steps a chunk takes
on the market's own random stream (session rolls, volatility, the 10 ms price path, halts,
arrivals). `Market` adds the clock: chunks made ahead, released by `step`. numpy only.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._events import GRID_NS, PATH_CELLS
from ._scenario_play import Play
from .crypto import NOTIONAL_LOT
from .scenario import BAND_DTYPE
from .ticks import TICK_DTYPE, TickFlag
from .universe import Universe

SESSION_S = 6.5 * 3600
YEAR_S = 252 * SESSION_S
HAWKES_ETA = 0.7  # branching ratio
HAWKES_TAU_S = 2.0  # excitation decay
TRADES_PER_S = 8.0  # midday trade rate of a symbol with activity 1
QUOTES_PER_TRADE = 2.5  # quote refreshes per trade
SPREAD_K = 0.5  # extra spread ticks per tick of one-second volatility
CRYPTO_YEAR_S = 365 * 86_400
# Log-volatility components: timescales (s) and stationary standard deviations.
MKT_VOL_TAUS_S = np.array([300.0, 1800.0, 7200.0])
MKT_VOL_SD = np.array([0.4, 0.35, 0.3])
_MKT_VAR = float((MKT_VOL_SD**2).sum())
LEVERAGE = 0.012  # market log-vol added per unit fall of its factor (Brownian, sqrt s)
LEVERAGE_TAU_S = 1800.0
OWN_VOL_TAUS_S = np.array([[600.0], [7200.0]])
OWN_VOL_SD = np.array([[0.45], [0.35]])
_OWN_VAR = float((OWN_VOL_SD**2).sum())


class Model:
    """The model's parameters and state; `Market` sets the attributes declared here first."""

    universe: Universe
    activity: float
    session: Literal["6.5h", "24h"]
    start_ns: int
    _n: int
    _rng: np.random.Generator
    _chunk_cells: int
    _vol_sym: NDArray[np.float64] | None
    _halted: NDArray[np.bool_]
    play: Play | None
    now_ns: int
    _tick: NDArray[np.float64]
    _units: NDArray[np.floating[Any]]
    _scale: NDArray[np.floating[Any]]

    def bands(self) -> NDArray[np.void]:
        """The scenario's LULD band changes (`scenario.BAND_DTYPE`, prices on the tick grid) up
        to now, not taken yet, in time order; empty without bands."""
        if self.play is None:
            return np.empty(0, BAND_DTYPE)
        out = self.play.release_bands(self.now_ns)
        sym = out["sym"].astype(np.intp)
        tick, units, scale = self._tick[sym], self._units[sym], self._scale[sym]
        for side in ("up", "down"):
            out[side] = np.maximum(1, np.round(out[side] / tick)) * units / scale
        return out

    def _parameters(self, universe: Universe, ref: np.random.Generator) -> None:
        """Static per-symbol parameters: volatility and its shares, ticks, lots, rates."""
        n, activity = self._n, self.activity
        etf = np.array([k == "etf" for k in universe.kinds])
        sectors = universe.sectors
        names = list(dict.fromkeys(s for s, e in zip(sectors, etf, strict=True) if not e))
        self._sector = np.array([names.index(s) if s in names else -1 for s in sectors])
        self._sec = np.maximum(self._sector, 0)  # a column of the sector path (gamma 0 if none)
        self._n_sectors = max(1, len(names))
        ann_vol = np.where(etf, ref.uniform(0.12, 0.2, n), ref.uniform(0.2, 0.42, n))
        crypto = universe.crypto
        # crypto: about twice as volatile a year, spread over a year that never closes
        sigma = np.where(crypto, 2.2 * ann_vol / np.sqrt(CRYPTO_YEAR_S), ann_vol / np.sqrt(YEAR_S))
        w_mkt = np.where(etf, 0.85, 0.3)  # variance shares: market, sector, own
        w_sec = np.where(etf | (self._sector < 0), 0.0, 0.15)
        w_own = 1.0 - w_mkt - w_sec
        self._beta = ref.normal(1.0, 0.15, n).clip(0.5, 1.6) * sigma * np.sqrt(w_mkt)
        self._gamma = sigma * np.sqrt(w_sec)
        self._own = sigma * np.sqrt(w_own)
        self._sigma = sigma
        self._tick = universe.tick_size.astype(np.float64)
        # prices leave as ticks * units / scale: the double nearest the decimal (0.25: 25 / 100)
        self._scale = 10.0 ** decimals(self._tick)
        self._units = np.round(self._tick * self._scale)
        # a round lot in size units: 100 shares, or ~NOTIONAL_LOT of quote currency of a crypto
        notional = np.round(NOTIONAL_LOT / (universe.price * universe.lot_size))
        self._lot = np.where(crypto, np.maximum(1, notional), universe.lot_units).astype(np.int64)
        # spread ticks per tick of volatility: a crypto pair's fine tick quotes as tight as a stock
        self._spread_k = SPREAD_K * np.where(
            crypto, np.minimum(1.0, 20_000 * self._tick / universe.price), 1.0
        )
        self._mu = TRADES_PER_S * universe.activity * activity * (1 - HAWKES_ETA)
        self._impact = ref.uniform(0.15, 0.35, n)  # ticks of efficient price per log-lot traded

    def _open_state(self, ref: np.random.Generator, start_ns: int) -> None:
        """The dynamic state at the start: prices, volatility, one-tick quotes, no trades."""
        n = self._n
        self._x = np.log(self.universe.price.astype(np.float64))
        self._h_mkt = np.zeros(3)  # market log-vol components
        self._lev = 0.0
        self._h_own = ref.normal(0, 1, (2, n)) * OWN_VOL_SD  # own log-vol components
        self._excite = np.zeros(n)
        self._own_kept = np.empty((0, n))  # the chunk's own moves (`_own_steps`)
        self._volume = np.zeros(n, np.int64)
        self._last_tk = np.zeros(n, np.int64)  # last trade in ticks, as generated (ahead)
        self._last_sz = np.zeros(n, np.int64)
        self._seq = np.zeros(n, np.int64)
        self._session_idx = 0
        self._opened = np.zeros(n, bool)
        self._cell = 0  # cells generated so far
        self._next_ns = start_ns  # where the next chunk starts
        # The latest chunk, released by a cursor; every older record has been released already,
        # since a chunk is only made once time passes its start, after all earlier event times.
        self._pending = np.empty(0, TICK_DTYPE)
        self._pending_ts = np.empty(0, np.int64)  # contiguous: searchsorted on it costs ~1 us
        self._cursor = 0
        self._pending_last = np.empty(0, np.intp)  # per symbol: its last record in the chunk
        self._last = np.zeros(n, TICK_DTYPE)  # latest record per symbol of released chunks
        self._last["sym"] = np.arange(n)
        self._last["ts"] = start_ns
        self._last["flags"] = TickFlag.OPEN
        spread = np.ones(n, np.int64)
        bid = np.maximum(1, np.round(np.exp(self._x) / self._tick - spread / 2)).astype(np.int64)
        self._bid, self._ask = bid, bid + spread
        self._last["bid"] = bid * self._units / self._scale
        self._last["ask"] = (bid + spread) * self._units / self._scale
        self._last_tk[:] = bid
        self._last["last"] = self._last["bid"]
        self._last["bid_size"] = self._last["ask_size"] = self._lot * 3

    def _intraday(
        self, t_s: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(arrival multiplier, volatility multiplier) at `t_s` seconds into the session."""
        if self.session == "24h":
            return np.ones_like(t_s), np.ones_like(t_s)
        to_close = SESSION_S - t_s
        arrivals = 1.0 + 2.5 * np.exp(-t_s / 1800) + 1.5 * np.exp(-to_close / 1800)
        vol = 1.0 + 1.0 * np.exp(-t_s / 1500) + 0.4 * np.exp(-to_close / 1500)
        return arrivals, vol

    def _roll_session(self, t_s: float) -> float:
        """Seconds into the session at `t_s` into the run; overnight, a move and a fresh open."""
        if self.session != "6.5h":
            return t_s
        idx = int(t_s // SESSION_S)
        if idx != self._session_idx:  # overnight: a larger move, then a fresh session
            self._session_idx = idx
            n = self._n
            self._x += self._sigma * np.sqrt(3600) * self._rng.standard_t(4, n) / np.sqrt(2)
            self._opened[:] = False
        return t_s - idx * SESSION_S

    def _volatility(self, chunk_s: float) -> tuple[float, NDArray[np.float64]]:
        """Move the log-volatility components by a chunk; (market, per-symbol) volatility."""
        rng = self._rng
        a = np.exp(-chunk_s / MKT_VOL_TAUS_S)
        self._h_mkt = a * self._h_mkt + np.sqrt(1 - a * a) * MKT_VOL_SD * rng.standard_normal(3)
        ao = np.exp(-chunk_s / OWN_VOL_TAUS_S)
        noise = rng.standard_normal((2, self._n))
        self._h_own = ao * self._h_own + np.sqrt(1 - ao * ao) * OWN_VOL_SD * noise
        mkt_vol = float(np.exp(self._h_mkt.sum() + self._lev - _MKT_VAR / 2))
        own_vol = np.exp(self._h_own.sum(axis=0) - _OWN_VAR / 2)
        return mkt_vol, own_vol

    def _path(
        self, vol_u: NDArray[np.float64], mkt_vol: float, own_vol: NDArray[np.float64]
    ) -> _Path:
        """Diffusion on the 10 ms path: market x beta + sector + own, rare fat-tailed jumps.

        Kept in parts (`_Path`): only the own part is a (steps, symbols) array. Moves the
        leverage term too: the market's down moves raise its volatility, decaying over ~30 min.
        """
        rng, n, dt = self._rng, self._n, GRID_NS / 1e9
        steps = len(vol_u) * PATH_CELLS
        chunk_s = len(vol_u) * dt
        sq = np.sqrt(dt / PATH_CELLS) * np.repeat(vol_u, PATH_CELLS)  # (steps,)
        z_m = rng.standard_normal(steps)
        z_sec = rng.standard_normal((steps, self._n_sectors))
        own = self._own_steps(steps)
        rng.standard_normal(out=own)  # into a kept array: the same draws, no fresh pages
        own *= sq[:, None]
        if self._vol_sym is not None:  # own moves carry a regime's extra variance, market's too
            own_var = (self._own * own_vol) ** 2
            share = own_var / (own_var + (self._beta**2 + self._gamma**2) * mkt_vol**2)
            grow = np.sqrt(np.maximum(0.0, 1 + (self._vol_sym**2 - 1) / share))
            own *= np.repeat(grow, PATH_CELLS, axis=0)
        if n >= 256:  # np.cumsum along axis 0 row by row: the same sums, ~8x faster when wide
            for k in range(1, steps):
                np.add(own[k - 1], own[k], out=own[k])
        else:
            np.cumsum(own, axis=0, out=own)
        own *= self._own * own_vol
        market = np.cumsum(sq * z_m) * mkt_vol
        sector = np.cumsum(sq[:, None] * z_sec, axis=0) * mkt_vol
        fall = -float(z_m.sum()) * np.sqrt(dt / PATH_CELLS)  # the market's Brownian move, down
        self._lev = np.exp(-chunk_s / LEVERAGE_TAU_S) * self._lev + LEVERAGE * fall
        if rng.random() < chunk_s * 2 / SESSION_S:
            jump = mkt_vol * np.sqrt(1800) * rng.standard_t(3) / np.sqrt(3)
            market[rng.integers(steps) :] += jump
        jumps = np.flatnonzero(rng.random(n) < 4 * chunk_s / SESSION_S)
        if jumps.size:
            size = self._sigma[jumps] * np.sqrt(1800) * rng.standard_t(3, jumps.size) / np.sqrt(3)
            for at, j, moved in zip(rng.integers(0, steps, jumps.size), jumps, size, strict=True):
                own[at:, j] += moved
        return _Path(market, sector, own)

    def _own_steps(self, steps: int) -> NDArray[np.float64]:
        """The (steps, symbols) work array of the own moves, kept from chunk to chunk; a
        chunk's `_Path` holds it until the next chunk's path is drawn."""
        if self._own_kept.shape[0] != steps:
            self._own_kept = np.empty((steps, self._n))
        return self._own_kept

    def _trading(self, play: Play, path: _Path, t0_ns: int) -> NDArray[np.bool_]:
        """The (cell, symbol) pairs not halted by the scenario: only they get arrivals."""
        n, cells = self._n, self._chunk_cells
        ends = None
        if play.has_luld:  # the efficient log-price at each cell's end, offsets included
            at = np.repeat(np.arange(cells) * PATH_CELLS + PATH_CELLS - 1, n)
            who = np.tile(np.arange(n), cells)
            ends = (self._x[who] + self._moved(path, at, who)).reshape(cells, n)
            ends += play.effects(t0_ns + (at + 1) * (GRID_NS // PATH_CELLS), who)[0].reshape(
                cells, n
            )
        self._halted = play.halted(t0_ns - self.start_ns, cells, ends)
        return ~self._halted

    def _arrivals(
        self,
        arrivals_u: NDArray[np.float64],
        mkt_vol: float,
        own_vol: NDArray[np.float64],
        trading: NDArray[np.bool_] | None,
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Hawkes trade arrivals on a U-shaped, volatility-linked baseline; quotes in between."""
        rng, n, cells, dt = self._rng, self._n, self._chunk_cells, GRID_NS / 1e9
        base = self._mu * np.sqrt(own_vol * np.sqrt(mkt_vol))
        decay, jump_h = np.exp(-dt / HAWKES_TAU_S), HAWKES_ETA / HAWKES_TAU_S
        lam = np.empty((cells, n))
        n_tr = np.empty((cells, n), np.int64)
        excite = self._excite
        for c in range(cells):
            lam[c] = base * arrivals_u[c] + excite
            if trading is not None:
                lam[c] *= trading[c]
            n_tr[c] = rng.poisson(lam[c] * dt)
            excite = excite * decay + jump_h * n_tr[c]
        self._excite = excite
        n_q = rng.poisson(QUOTES_PER_TRADE * lam * dt)
        return n_tr, n_q

    def _moved(
        self, path: _Path, step: NDArray[np.int64], sym: NDArray[np.intp]
    ) -> NDArray[np.float64]:
        """The log-price move since the chunk began at each (10 ms step, symbol) pair."""
        at = step * self._n
        at += sym
        moved = path.own.ravel().take(at)
        part = self._beta.take(sym)
        part *= path.market.take(step)
        moved += part
        np.multiply(step, self._n_sectors, out=at)
        at += self._sec.take(sym)
        part = path.sector.ravel().take(at)
        part *= self._gamma.take(sym)
        moved += part
        return moved

    def _moved_by_end(self, path: _Path) -> NDArray[np.float64]:
        """`_moved` at the chunk's last step for every symbol, without the index arithmetic."""
        moved: NDArray[np.float64] = path.own[-1].copy()
        moved += self._beta * path.market[-1]
        moved += self._gamma * path.sector[-1].take(self._sec)
        return moved


class _Path(NamedTuple):
    """A chunk's log-price moves per 10 ms step, in parts: beta x market + gamma x sector + own."""

    market: NDArray[np.float64]  # (steps,)
    sector: NDArray[np.float64]  # (steps, sectors)
    own: NDArray[np.float64]  # (steps, symbols): the only part kept per symbol


def decimals(tick: NDArray[np.float64]) -> NDArray[np.intp]:
    """Decimal places of each tick size, at most 9: 0.01 -> 2, 0.25 -> 2, 0.005 -> 3, 5 -> 0."""
    places = np.arange(10)
    scaled = tick[:, None] * 10.0**places
    exact = np.abs(scaled - np.round(scaled)) <= 1e-9 * scaled
    found: NDArray[np.intp] = np.argmax(exact | (places == 9), axis=1)
    return found
