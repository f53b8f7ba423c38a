"""Generator rows: ticks/s of `Market.step()` in 1 ms steps vs two baselines of the same model.

Both baselines make the records `Market` makes (`TICK_DTYPE`, one per update, in time order), from
the same model in its essentials (see `naive_loop`), each written the way it usually is:
- "python loop": per 1 ms step, per symbol, plain Python (`random`, `math`), the straightforward
  generator the issue asks us to beat 20x;
- "numpy per step": vectorised over symbols, but each 1 ms step computed on its own (no chunks),
  the design issue 3 expected chunked generation to beat 5-20x.
All three run from the open: `Market` is first stepped through an untimed warm-up (its Hawkes
excitation starts at zero and takes ~30 s to settle), and the baselines start with the mean
excitation it has in the middle of its timed span, so all three make about as many ticks per
simulated second (the rows carry those rates) and ticks/s compare like with like.
Imports numpy and the simulator only.
"""

from __future__ import annotations

import math
import random
import time

import numpy as np

from tickwire.simulators import TICK_DTYPE, Market, TickFlag, Universe
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

from ._table import Row, row

STEP_S = 0.001
_TRADE, _BUY, _SELL, _OPEN = (
    int(f) for f in (TickFlag.TRADE, TickFlag.BUY, TickFlag.SELL, TickFlag.OPEN)
)


def _model(n: int, sim_s: float, start_s: float) -> tuple[int, float]:
    """Ticks made and seconds taken by `Market` stepping `sim_s` in 1 ms steps after `start_s`."""
    market = Market(Universe.synthetic(n, seed=1), seed=1, start_ns=0)
    for k in range(1, math.ceil(start_s) + 1):  # untimed, a second at a time
        market.step(round(min(k, start_s) * 1e9))
    start = round(start_s * 1000)
    ticks, t0 = 0, time.perf_counter()
    for k in range(start + 1, start + round(sim_s * 1000) + 1):
        ticks += len(market.step(k * 1_000_000))
    return ticks, time.perf_counter() - t0


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


def naive_loop(universe: Universe, sim_s: float, start_s: float) -> tuple[int, float]:
    """The "python loop" baseline: `sim_s` in 1 ms steps after `start_s`; (ticks, seconds taken).

    What it models, per step: the market's log-volatility (three OU components, plus leverage
    from its falls) and its factor move, one move per sector; then per symbol: its own two OU
    log-volatility components, its price move (beta x market + sector + own), its Hawkes
    intensity (a U-shaped, volatility-linked baseline plus an excitation that decays and jumps
    with each trade) and at most one arrival (a Bernoulli draw: trade, quote or nothing). An
    arrival requotes in whole ticks with a spread that widens with volatility; a trade prints at
    the quote in force before it, sized in round lots with a Pareto tail or as an odd lot, moves
    the price by its impact and adds to volume. Left out: rare jumps and session rolls (the
    spans timed are seconds long). Each step's records become a `TICK_DTYPE` array.
    """
    n = len(universe)
    p = _Params(universe, seed=1)
    rng = random.Random(1)
    gauss, uniform = rng.gauss, rng.random
    step_decay = [math.exp(-STEP_S / tau) for tau in MKT_VOL_TAUS_S.tolist()]
    step_sd = [
        math.sqrt(1 - a * a) * sd for a, sd in zip(step_decay, MKT_VOL_SD.tolist(), strict=True)
    ]
    own_a = [math.exp(-STEP_S / tau) for tau in OWN_VOL_TAUS_S.ravel().tolist()]
    own_sd = [
        math.sqrt(1 - a * a) * sd for a, sd in zip(own_a, OWN_VOL_SD.ravel().tolist(), strict=True)
    ]
    mkt_var = sum(sd * sd for sd in MKT_VOL_SD.tolist())
    own_var = sum(sd * sd for sd in OWN_VOL_SD.ravel().tolist())
    decay = math.exp(-STEP_S / HAWKES_TAU_S)
    jump = HAWKES_ETA / HAWKES_TAU_S
    lev_decay = math.exp(-STEP_S / LEVERAGE_TAU_S)
    sqrt_dt = math.sqrt(STEP_S)
    h_mkt = [0.0, 0.0, 0.0]
    lev = 0.0
    h1 = [gauss(0.0, 1.0) * own_sd[0] / math.sqrt(1 - own_a[0] ** 2) for _ in range(n)]
    h2 = [gauss(0.0, 1.0) * own_sd[1] / math.sqrt(1 - own_a[1] ** 2) for _ in range(n)]
    x = [math.log(price) for price in p.price]
    excite = [_excitation(mu, start_s) for mu in p.mu]
    bid = [max(1, round(price / tick - 0.5)) for price, tick in zip(p.price, p.tick, strict=True)]
    ask = [b + 1 for b in bid]
    last_tk = bid[:]
    last_sz = [0] * n
    volume = [0] * n
    seq = [0] * n
    opened = [False] * n
    made, t0 = 0, time.perf_counter()
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
            if u >= lam * STEP_S * (1 + QUOTES_PER_TRADE):
                continue
            tick, lot = p.tick[i], p.lot[i]
            flags = 0
            if u < lam * STEP_S:  # a trade, at the quote in force
                buy = uniform() < 0.5
                if uniform() < ODD_LOT_P:
                    size = rng.randint(1, max(lot - 1, 1))
                else:
                    size = math.ceil(rng.paretovariate(SIZE_TAIL)) * lot
                last_tk[i] = ask[i] if buy else bid[i]
                last_sz[i] = size
                volume[i] += size
                impact = p.impact[i] * math.log1p(size / lot) * tick / math.exp(x[i])
                x[i] += impact if buy else -impact
                excite[i] += jump
                flags = _TRADE | (_BUY if buy else _SELL)
            if not opened[i]:
                opened[i] = True
                flags |= _OPEN
            price_ticks = math.exp(x[i]) / tick
            vol_ticks = p.sigma[i] * own_vol * vol_u * price_ticks
            spread = 1 + min(int(SPREAD_K * vol_ticks * rng.expovariate(1.0)), 20)
            bid[i] = max(1, round(price_ticks - spread / 2))
            ask[i] = bid[i] + spread
            seq[i] += 1
            places = p.places[i]
            records.append(
                (
                    ts,
                    seq[i],
                    round(bid[i] * tick, places),
                    round(ask[i] * tick, places),
                    round(last_tk[i] * tick, places),
                    volume[i],
                    i,
                    flags,
                    lot * (1 + int(QUOTE_DEPTH * rng.expovariate(1.0))),
                    lot * (1 + int(QUOTE_DEPTH * rng.expovariate(1.0))),
                    last_sz[i],
                )
            )
        if records:
            made += len(np.array(records, dtype=TICK_DTYPE))
    return made, time.perf_counter() - t0


def numpy_per_step(universe: Universe, sim_s: float, start_s: float) -> tuple[int, float]:
    """The "numpy per step" baseline: `naive_loop`'s model vectorised over symbols, step by step.

    Each 1 ms step draws and updates every symbol with array operations, then fills a
    `TICK_DTYPE` array for the symbols that updated; nothing is computed ahead. Returns (ticks
    made, seconds taken).
    """
    n = len(universe)
    p = _Params(universe, seed=1)
    rng = np.random.default_rng(1)
    sigma, beta, gamma, own, impact, mu = (
        np.array(v) for v in (p.sigma, p.beta, p.gamma, p.own, p.impact, p.mu)
    )
    sector = np.array(p.sector)
    sec_idx, sec_on = np.maximum(sector, 0), sector >= 0
    tick = universe.tick_size.astype(np.float64)
    lot = universe.lot_units
    scale = 10.0 ** np.array(p.places)
    units = np.round(tick * scale)
    a_m = np.exp(-STEP_S / MKT_VOL_TAUS_S)
    b_m = np.sqrt(1 - a_m * a_m) * MKT_VOL_SD
    a_o = np.exp(-STEP_S / OWN_VOL_TAUS_S)
    b_o = np.sqrt(1 - a_o * a_o) * OWN_VOL_SD
    mkt_var, own_var = float((MKT_VOL_SD**2).sum()), float((OWN_VOL_SD**2).sum())
    decay, jump = math.exp(-STEP_S / HAWKES_TAU_S), HAWKES_ETA / HAWKES_TAU_S
    lev_decay, sqrt_dt = math.exp(-STEP_S / LEVERAGE_TAU_S), math.sqrt(STEP_S)
    h_mkt, lev = np.zeros(3), 0.0
    h_own = rng.standard_normal((2, n)) * OWN_VOL_SD
    x = np.log(universe.price.astype(np.float64))
    excite = np.array([_excitation(m, start_s) for m in p.mu])
    bid = np.maximum(1, np.round(universe.price / tick - 0.5)).astype(np.int64)
    ask = bid + 1
    last_tk, last_sz = bid.copy(), np.zeros(n, np.int64)
    volume, seq = np.zeros(n, np.int64), np.zeros(n, np.int64)
    opened = np.zeros(n, bool)
    made, t0 = 0, time.perf_counter()
    for k in range(round(sim_s / STEP_S)):
        t_s = start_s + (k + 1) * STEP_S
        arrivals_u, vol_u = _intraday(t_s)
        h_mkt = a_m * h_mkt + b_m * rng.standard_normal(3)
        mkt_vol = math.exp(float(h_mkt.sum()) + lev - mkt_var / 2)
        z_m = float(rng.standard_normal())
        lev = lev_decay * lev - LEVERAGE * z_m * sqrt_dt
        sec = np.where(sec_on, rng.standard_normal(p.n_sectors)[sec_idx], 0.0)
        h_own = a_o * h_own + b_o * rng.standard_normal((2, n))
        own_vol = np.exp(h_own.sum(axis=0) - own_var / 2)
        own_move = own * own_vol * rng.standard_normal(n)
        x += sqrt_dt * vol_u * (mkt_vol * (beta * z_m + gamma * sec) + own_move)
        lam = mu * arrivals_u * np.sqrt(own_vol * math.sqrt(mkt_vol)) + excite
        excite *= decay
        u = rng.random(n)
        hit = np.flatnonzero(u < lam * (STEP_S * (1 + QUOTES_PER_TRADE)))
        if not hit.size:
            continue
        is_tr = u[hit] < lam[hit] * STEP_S
        flags = np.zeros(hit.size, np.uint16)
        tr = hit[is_tr]
        if tr.size:  # trades print at the quote in force, then move the price
            buy = rng.random(tr.size) < 0.5
            lot_tr = lot[tr]
            lots = np.ceil(rng.pareto(SIZE_TAIL, tr.size) + 1.0).astype(np.int64)
            odd = rng.random(tr.size) < ODD_LOT_P
            size = np.where(odd, rng.integers(1, np.maximum(lot_tr, 2)), lots * lot_tr)
            last_tk[tr] = np.where(buy, ask[tr], bid[tr])
            last_sz[tr] = size
            volume[tr] += size
            moved = impact[tr] * np.log1p(size / lot_tr) * tick[tr] / np.exp(x[tr])
            x[tr] += np.where(buy, moved, -moved)
            excite[tr] += jump
            flags[is_tr] = np.where(buy, _TRADE | _BUY, _TRADE | _SELL)
        flags[~opened[hit]] |= _OPEN
        opened[hit] = True
        price_ticks = np.exp(x[hit]) / tick[hit]
        vol_ticks = SPREAD_K * sigma[hit] * own_vol[hit] * vol_u * price_ticks
        noise = rng.standard_exponential(hit.size)
        spread = 1 + np.minimum(np.floor(vol_ticks * noise), 20).astype(np.int64)
        bid[hit] = np.maximum(1, np.round(price_ticks - spread / 2))
        ask[hit] = bid[hit] + spread
        seq[hit] += 1
        out = np.empty(hit.size, TICK_DTYPE)
        out["ts"] = round(t_s * 1e9)
        out["seq"] = seq[hit]
        u_hit, scale_hit = units[hit], scale[hit]
        out["bid"] = bid[hit] * u_hit / scale_hit
        out["ask"] = ask[hit] * u_hit / scale_hit
        out["last"] = last_tk[hit] * u_hit / scale_hit
        out["volume"] = volume[hit]
        out["sym"] = hit
        out["flags"] = flags
        lot_hit = lot[hit]
        out["bid_size"] = lot_hit * (1 + np.floor(QUOTE_DEPTH * rng.standard_exponential(hit.size)))
        out["ask_size"] = lot_hit * (1 + np.floor(QUOTE_DEPTH * rng.standard_exponential(hit.size)))
        out["last_size"] = last_sz[hit]
        made += len(out)
    return made, time.perf_counter() - t0


# Per row: symbols, untimed warm-up, then the simulated seconds timed for the model, the python
# loop and numpy per step, and the real-time target. The warm-up lets the Hawkes excitation grow
# (its mean settles with time constant tau / (1 - eta), ~6.7 s: 30 s is ~99% of the steady rate,
# 10 s ~78%); each baseline's span is cut so it runs about as long as the model (0.1-0.4 s).
_SIZES = {
    False: ((500, 30.0, 10.0, 0.15, 1.5, 20), (5000, 10.0, 3.0, 0.02, 0.4, 3)),
    True: ((500, 5.0, 1.0, 0.03, 0.3, 20), (5000, 2.0, 1.0, 0.004, 0.1, 3)),
}


def generator_rows(quick: bool) -> list[Row]:
    rows = []
    for n, warm_s, sim_s, loop_s, per_step_s, real_time_target in _SIZES[quick]:
        universe = Universe.synthetic(n, seed=1)
        ticks, secs = _model(n, sim_s, warm_s)
        mid_s = warm_s + sim_s / 2  # the baselines start as excited as the model is on average
        l_ticks, l_secs = naive_loop(universe, loop_s, mid_s)
        s_ticks, s_secs = numpy_per_step(universe, per_step_s, mid_s)
        label = f"generator, {n} symbols, 1 ms steps"
        rates = {  # ticks per simulated second: the three make about as many
            "model_ticks_per_sim_s": ticks / sim_s,
            "loop_ticks_per_sim_s": l_ticks / loop_s,
            "per_step_ticks_per_sim_s": s_ticks / per_step_s,
        }
        rows.append(
            row(
                f"{label}: ticks/s",
                ticks / secs,
                "t/s",
                "python loop",
                l_ticks / l_secs,
                higher=True,
                target=">= 1M/core, >= 20x" if n == 500 else "",
                model_ticks=ticks,
                baseline_ticks=l_ticks,
                **rates,
            )
        )
        rows.append(
            row(
                f"{label}: ticks/s vs numpy per step",
                ticks / secs,
                "t/s",
                "numpy per step",
                s_ticks / s_secs,
                higher=True,
                target="5-20x",
                model_ticks=ticks,
                baseline_ticks=s_ticks,
            )
        )
        rows.append(
            row(
                f"{label}: x real time",
                sim_s / secs,
                "x",
                "python loop",
                loop_s / l_secs,
                higher=True,
                target=f">= {real_time_target}x real time",
            )
        )
    return rows
