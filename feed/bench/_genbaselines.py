"""The generator rows' two baselines: the market's model written as a plain Python loop and as
numpy vectorised per 1 ms step (see `generator.py` for why these two).

Both make the records `Market` makes (`TICK_DTYPE`, one per update, in time order), and both
return (ticks made, thread CPU seconds taken), timing only their stepping, as the model's row
is timed. Imports numpy and the simulator.
"""

from __future__ import annotations

import math
import random
import time

import numpy as np
from numpy.typing import NDArray

from tickwire.simulators import TICK_DTYPE, TickFlag, Universe
from tickwire.simulators.market import (
    HAWKES_ETA,
    HAWKES_TAU_S,
    LEVERAGE,
    LEVERAGE_TAU_S,
    MKT_VOL_SD,
    MKT_VOL_TAUS_S,
    ODD_LOT_P,
    OWN_VOL_SD,
    OWN_VOL_TAUS_S,
    QUOTE_DEPTH,
    QUOTES_PER_TRADE,
    SESSION_S,
    SIZE_TAIL,
    SPREAD_K,
    TRADES_PER_S,
    YEAR_S,
)

STEP_S = 0.001
_TRADE, _BUY, _SELL, _OPEN = (
    int(f) for f in (TickFlag.TRADE, TickFlag.BUY, TickFlag.SELL, TickFlag.OPEN)
)

# One record as `TICK_DTYPE`'s fields, in its order (ts, seq, bid, ask, last, volume, sym, ...).
_Record = tuple[int, int, float, float, float, int, int, int, int, int, int]


class _Params:
    """Per-symbol parameters from the distributions `Market` draws them from, as plain lists."""

    def __init__(self, universe: Universe, seed: int) -> None:
        rng = random.Random(seed)
        n = len(universe)
        etf = [k == "etf" for k in universe.kinds]
        names = list(dict.fromkeys(s for s, e in zip(universe.sectors, etf, strict=True) if not e))
        self.sector = [names.index(s) if s in names else -1 for s in universe.sectors]
        self.n_sectors = max(1, len(names))
        self.sigma: list[float] = []
        self.beta: list[float] = []
        self.gamma: list[float] = []
        self.own: list[float] = []
        self.impact: list[float] = []
        for i in range(n):
            ann_vol = rng.uniform(0.12, 0.2) if etf[i] else rng.uniform(0.2, 0.42)
            sigma = ann_vol / math.sqrt(YEAR_S)
            w_mkt = 0.85 if etf[i] else 0.3
            w_sec = 0.0 if etf[i] or self.sector[i] < 0 else 0.15
            beta = min(max(rng.gauss(1.0, 0.15), 0.5), 1.6)
            self.sigma.append(sigma)
            self.beta.append(beta * sigma * math.sqrt(w_mkt))
            self.gamma.append(sigma * math.sqrt(w_sec))
            self.own.append(sigma * math.sqrt(1.0 - w_mkt - w_sec))
            self.impact.append(rng.uniform(0.15, 0.35))
        activity: list[float] = universe.activity.tolist()
        self.mu = [TRADES_PER_S * a * (1 - HAWKES_ETA) for a in activity]
        self.tick: list[float] = universe.tick_size.tolist()
        self.lot: list[int] = universe.lot_units.tolist()
        self.places = [_places(t) for t in self.tick]
        self.price: list[float] = universe.price.tolist()


def _places(tick: float) -> int:
    """Decimal places of a tick size (0.25 -> 2)."""
    return next((d for d in range(10) if abs(tick * 10**d - round(tick * 10**d)) < 1e-9), 9)


def _intraday(t_s: float) -> tuple[float, float]:
    """(arrival multiplier, volatility multiplier) `t_s` into a 6.5 h session, as `Market`'s."""
    to_close = SESSION_S - t_s
    arrivals = 1.0 + 2.5 * math.exp(-t_s / 1800) + 1.5 * math.exp(-to_close / 1800)
    vol = 1.0 + 1.0 * math.exp(-t_s / 1500) + 0.4 * math.exp(-to_close / 1500)
    return arrivals, vol


def _excitation(mu: float, t_s: float) -> float:
    """Mean Hawkes excitation `t_s` after a cold start, as `Market` has it then.

    It rises towards eta / (1 - eta) of the baseline rate with time constant tau / (1 - eta).
    """
    steady = mu * _intraday(t_s)[0] * HAWKES_ETA / (1 - HAWKES_ETA)
    return float(steady * -math.expm1(-t_s * (1 - HAWKES_ETA) / HAWKES_TAU_S))


class _Loop:
    """`naive_loop`'s state: the model's step constants and per-symbol lists (plain Python)."""

    def __init__(self, universe: Universe, start_s: float) -> None:
        n = len(universe)
        self.p = p = _Params(universe, seed=1)
        self.rng = rng = random.Random(1)
        gauss = rng.gauss
        self.step_decay = [math.exp(-STEP_S / tau) for tau in MKT_VOL_TAUS_S.tolist()]
        self.step_sd = [
            math.sqrt(1 - a * a) * sd
            for a, sd in zip(self.step_decay, MKT_VOL_SD.tolist(), strict=True)
        ]
        self.own_a = own_a = [math.exp(-STEP_S / tau) for tau in OWN_VOL_TAUS_S.ravel().tolist()]
        self.own_sd = own_sd = [
            math.sqrt(1 - a * a) * sd
            for a, sd in zip(own_a, OWN_VOL_SD.ravel().tolist(), strict=True)
        ]
        self.mkt_var = sum(sd * sd for sd in MKT_VOL_SD.tolist())
        self.own_var = sum(sd * sd for sd in OWN_VOL_SD.ravel().tolist())
        self.decay = math.exp(-STEP_S / HAWKES_TAU_S)
        self.jump = HAWKES_ETA / HAWKES_TAU_S
        self.lev_decay = math.exp(-STEP_S / LEVERAGE_TAU_S)
        self.h1 = [gauss(0.0, 1.0) * own_sd[0] / math.sqrt(1 - own_a[0] ** 2) for _ in range(n)]
        self.h2 = [gauss(0.0, 1.0) * own_sd[1] / math.sqrt(1 - own_a[1] ** 2) for _ in range(n)]
        self.x = [math.log(price) for price in p.price]
        self.excite = [_excitation(mu, start_s) for mu in p.mu]
        self.bid = [
            max(1, round(price / tick - 0.5)) for price, tick in zip(p.price, p.tick, strict=True)
        ]
        self.ask = [b + 1 for b in self.bid]
        self.last_tk = self.bid[:]
        self.last_sz = [0] * n
        self.volume = [0] * n
        self.seq = [0] * n
        self.opened = [False] * n

    def arrival(
        self, i: int, u: float, lam: float, own_vol: float, vol_u: float, ts: int
    ) -> _Record:
        """Symbol `i`'s update (a trade if `u` falls under its trade rate, else a quote): its
        requote in whole ticks, and its record as a tuple of `TICK_DTYPE`'s fields."""
        p, rng, x, bid, ask = self.p, self.rng, self.x, self.bid, self.ask
        uniform = rng.random
        tick, lot = p.tick[i], p.lot[i]
        flags = 0
        if u < lam * STEP_S:  # a trade, at the quote in force
            buy = uniform() < 0.5
            if uniform() < ODD_LOT_P:
                size = rng.randint(1, max(lot - 1, 1))
            else:
                size = math.ceil(rng.paretovariate(SIZE_TAIL)) * lot
            self.last_tk[i] = ask[i] if buy else bid[i]
            self.last_sz[i] = size
            self.volume[i] += size
            impact = p.impact[i] * math.log1p(size / lot) * tick / math.exp(x[i])
            x[i] += impact if buy else -impact
            self.excite[i] += self.jump
            flags = _TRADE | (_BUY if buy else _SELL)
        if not self.opened[i]:
            self.opened[i] = True
            flags |= _OPEN
        price_ticks = math.exp(x[i]) / tick
        vol_ticks = p.sigma[i] * own_vol * vol_u * price_ticks
        spread = 1 + min(int(SPREAD_K * vol_ticks * rng.expovariate(1.0)), 20)
        bid[i] = max(1, round(price_ticks - spread / 2))
        ask[i] = bid[i] + spread
        self.seq[i] += 1
        places = p.places[i]
        return (
            ts,
            self.seq[i],
            round(bid[i] * tick, places),
            round(ask[i] * tick, places),
            round(self.last_tk[i] * tick, places),
            self.volume[i],
            i,
            flags,
            lot * (1 + int(QUOTE_DEPTH * rng.expovariate(1.0))),
            lot * (1 + int(QUOTE_DEPTH * rng.expovariate(1.0))),
            self.last_sz[i],
        )


def naive_loop(universe: Universe, sim_s: float, start_s: float) -> tuple[int, float]:
    """The "python loop" baseline: `sim_s` in 1 ms steps after `start_s`; (ticks, CPU seconds).

    What it models, per step: the market's log-volatility (three OU components, plus leverage
    from its falls) and its factor move, one move per sector; then per symbol: its own two OU
    log-volatility components, its price move (beta x market + sector + own), its Hawkes
    intensity (a U-shaped, volatility-linked baseline plus an excitation that decays and jumps
    with each trade) and at most one arrival (a Bernoulli draw: trade, quote or nothing). An
    arrival requotes in whole ticks with a spread that widens with volatility; a trade prints at
    the quote in force before it, sized in round lots with a Pareto tail or as an odd lot, moves
    the price by its impact and adds to volume (`_Loop.arrival`). Left out: rare jumps and
    session rolls (the spans timed are seconds long). Each step's records become a `TICK_DTYPE`
    array.
    """
    n = len(universe)
    s = _Loop(universe, start_s)
    p, x, excite, h1, h2 = s.p, s.x, s.excite, s.h1, s.h2
    gauss, uniform, arrival = s.rng.gauss, s.rng.random, s.arrival
    step_decay, step_sd, own_a, own_sd = s.step_decay, s.step_sd, s.own_a, s.own_sd
    mkt_var, own_var, decay, lev_decay = s.mkt_var, s.own_var, s.decay, s.lev_decay
    sqrt_dt = math.sqrt(STEP_S)
    h_mkt = [0.0, 0.0, 0.0]
    lev = 0.0
    made, t0 = 0, time.thread_time()
    for k in range(round(sim_s / STEP_S)):
        t_s = start_s + (k + 1) * STEP_S
        ts = round(t_s * 1e9)
        arrivals_u, vol_u = _intraday(t_s)
        for j in range(3):
            h_mkt[j] = step_decay[j] * h_mkt[j] + step_sd[j] * gauss(0.0, 1.0)
        mkt_vol = math.exp(sum(h_mkt) + lev - mkt_var / 2)
        z_m = gauss(0.0, 1.0)
        lev = lev_decay * lev - LEVERAGE * z_m * sqrt_dt
        z_sec = [gauss(0.0, 1.0) for _ in range(p.n_sectors)]
        records = []
        for i in range(n):
            h1[i] = own_a[0] * h1[i] + own_sd[0] * gauss(0.0, 1.0)
            h2[i] = own_a[1] * h2[i] + own_sd[1] * gauss(0.0, 1.0)
            own_vol = math.exp(h1[i] + h2[i] - own_var / 2)
            sec = z_sec[p.sector[i]] if p.sector[i] >= 0 else 0.0
            own_move = p.own[i] * own_vol * gauss(0.0, 1.0)
            x[i] += sqrt_dt * vol_u * (mkt_vol * (p.beta[i] * z_m + p.gamma[i] * sec) + own_move)
            lam = p.mu[i] * arrivals_u * math.sqrt(own_vol * math.sqrt(mkt_vol)) + excite[i]
            excite[i] *= decay
            u = uniform()
            if u < lam * STEP_S * (1 + QUOTES_PER_TRADE):
                records.append(arrival(i, u, lam, own_vol, vol_u, ts))
        if records:
            made += len(np.array(records, dtype=TICK_DTYPE))
    return made, time.thread_time() - t0


class _Arrays:
    """`numpy_per_step`'s state: the model's step constants and per-symbol arrays."""

    def __init__(self, universe: Universe, start_s: float) -> None:
        n = len(universe)
        self.p = p = _Params(universe, seed=1)
        self.rng = rng = np.random.default_rng(1)
        self.sigma, self.beta, self.gamma, self.own, self.impact, self.mu = (
            np.array(v) for v in (p.sigma, p.beta, p.gamma, p.own, p.impact, p.mu)
        )
        sector = np.array(p.sector)
        self.sec_idx, self.sec_on = np.maximum(sector, 0), sector >= 0
        self.tick = tick = universe.tick_size.astype(np.float64)
        self.lot = universe.lot_units
        self.scale = 10.0 ** np.array(p.places)
        self.units = np.round(tick * self.scale)
        self.a_m = np.exp(-STEP_S / MKT_VOL_TAUS_S)
        self.b_m = np.sqrt(1 - self.a_m * self.a_m) * MKT_VOL_SD
        self.a_o = np.exp(-STEP_S / OWN_VOL_TAUS_S)
        self.b_o = np.sqrt(1 - self.a_o * self.a_o) * OWN_VOL_SD
        self.mkt_var, self.own_var = float((MKT_VOL_SD**2).sum()), float((OWN_VOL_SD**2).sum())
        self.h_own = rng.standard_normal((2, n)) * OWN_VOL_SD
        self.x = np.log(universe.price.astype(np.float64))
        self.excite = np.array([_excitation(m, start_s) for m in p.mu])
        self.bid = np.maximum(1, np.round(universe.price / tick - 0.5)).astype(np.int64)
        self.ask = self.bid + 1
        self.last_tk, self.last_sz = self.bid.copy(), np.zeros(n, np.int64)
        self.volume, self.seq = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self.opened = np.zeros(n, bool)

    def trades(self, tr: NDArray[np.intp]) -> NDArray[np.bool_]:
        """Trades print at the quote in force, then move the price; which of them buy."""
        rng, lot_tr, x = self.rng, self.lot[tr], self.x
        buy = rng.random(tr.size) < 0.5
        lots = np.ceil(rng.pareto(SIZE_TAIL, tr.size) + 1.0).astype(np.int64)
        odd = rng.random(tr.size) < ODD_LOT_P
        size = np.where(odd, rng.integers(1, np.maximum(lot_tr, 2)), lots * lot_tr)
        self.last_tk[tr] = np.where(buy, self.ask[tr], self.bid[tr])
        self.last_sz[tr] = size
        self.volume[tr] += size
        moved = self.impact[tr] * np.log1p(size / lot_tr) * self.tick[tr] / np.exp(x[tr])
        x[tr] += np.where(buy, moved, -moved)
        self.excite[tr] += HAWKES_ETA / HAWKES_TAU_S
        return buy

    def records(
        self, hit: NDArray[np.intp], flags: NDArray[np.uint16], t_s: float
    ) -> NDArray[np.void]:
        """The `TICK_DTYPE` records of the symbols `hit` this step."""
        out = np.empty(hit.size, TICK_DTYPE)
        out["ts"] = round(t_s * 1e9)
        out["seq"] = self.seq[hit]
        u_hit, scale_hit = self.units[hit], self.scale[hit]
        out["bid"] = self.bid[hit] * u_hit / scale_hit
        out["ask"] = self.ask[hit] * u_hit / scale_hit
        out["last"] = self.last_tk[hit] * u_hit / scale_hit
        out["volume"] = self.volume[hit]
        out["sym"] = hit
        out["flags"] = flags
        lot_hit, rng = self.lot[hit], self.rng
        out["bid_size"] = lot_hit * (1 + np.floor(QUOTE_DEPTH * rng.standard_exponential(hit.size)))
        out["ask_size"] = lot_hit * (1 + np.floor(QUOTE_DEPTH * rng.standard_exponential(hit.size)))
        out["last_size"] = self.last_sz[hit]
        return out


def numpy_per_step(universe: Universe, sim_s: float, start_s: float) -> tuple[int, float]:
    """The "numpy per step" baseline: `naive_loop`'s model vectorised over symbols, step by step.

    Each 1 ms step draws and updates every symbol with array operations, then fills a
    `TICK_DTYPE` array for the symbols that updated; nothing is computed ahead. Returns (ticks
    made, thread CPU seconds taken).
    """
    n = len(universe)
    a = _Arrays(universe, start_s)
    p, rng, x, excite, tick = a.p, a.rng, a.x, a.excite, a.tick
    bid, ask, seq, opened = a.bid, a.ask, a.seq, a.opened
    decay = math.exp(-STEP_S / HAWKES_TAU_S)
    lev_decay, sqrt_dt = math.exp(-STEP_S / LEVERAGE_TAU_S), math.sqrt(STEP_S)
    h_mkt, lev, h_own = np.zeros(3), 0.0, a.h_own
    made, t0 = 0, time.thread_time()
    for k in range(round(sim_s / STEP_S)):
        t_s = start_s + (k + 1) * STEP_S
        arrivals_u, vol_u = _intraday(t_s)
        h_mkt = a.a_m * h_mkt + a.b_m * rng.standard_normal(3)
        mkt_vol = math.exp(float(h_mkt.sum()) + lev - a.mkt_var / 2)
        z_m = float(rng.standard_normal())
        lev = lev_decay * lev - LEVERAGE * z_m * sqrt_dt
        sec = np.where(a.sec_on, rng.standard_normal(p.n_sectors)[a.sec_idx], 0.0)
        h_own = a.a_o * h_own + a.b_o * rng.standard_normal((2, n))
        own_vol = np.exp(h_own.sum(axis=0) - a.own_var / 2)
        own_move = a.own * own_vol * rng.standard_normal(n)
        x += sqrt_dt * vol_u * (mkt_vol * (a.beta * z_m + a.gamma * sec) + own_move)
        lam = a.mu * arrivals_u * np.sqrt(own_vol * math.sqrt(mkt_vol)) + excite
        excite *= decay
        u = rng.random(n)
        hit = np.flatnonzero(u < lam * (STEP_S * (1 + QUOTES_PER_TRADE)))
        if not hit.size:
            continue
        is_tr = u[hit] < lam[hit] * STEP_S
        flags = np.zeros(hit.size, np.uint16)
        tr = hit[is_tr]
        if tr.size:
            buy = a.trades(tr)
            flags[is_tr] = np.where(buy, _TRADE | _BUY, _TRADE | _SELL)
        flags[~opened[hit]] |= _OPEN
        opened[hit] = True
        price_ticks = np.exp(x[hit]) / tick[hit]
        vol_ticks = SPREAD_K * a.sigma[hit] * own_vol[hit] * vol_u * price_ticks
        noise = rng.standard_exponential(hit.size)
        spread = 1 + np.minimum(np.floor(vol_ticks * noise), 20).astype(np.int64)
        bid[hit] = np.maximum(1, np.round(price_ticks - spread / 2))
        ask[hit] = bid[hit] + spread
        seq[hit] += 1
        made += len(a.records(hit, flags, t_s))
    return made, time.thread_time() - t0
