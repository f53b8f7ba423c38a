"""The stylized facts of real markets, measured on simulated records.

`sample(records, ...)` turns records into per-second grids (last mid, spread in ticks, trades);
`report(records, universe)` measures each fact of the simulator issue and says whether it meets
its target; `book_report(records, levels, ladders, universe)` does so for the order book's facts
(`report` adds them when given the level updates and ladders sampled over the run);
`figure(...)` draws them (matplotlib, optional). The tests and `tickwire simulate
--report` use the same code. numpy only (matplotlib lazily).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .book import Reason
from .market import SESSION_S
from .ticks import TickBatch
from .universe import Universe

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Row:
    name: str
    value: float
    target: str
    passed: bool


@dataclass(frozen=True)
class Grid:
    """Per-second samples, shape (seconds, symbols); seconds are session seconds, back to back."""

    mid: Array  # last mid at the end of each second (forward filled)
    spread: Array  # quoted spread in ticks, same sampling
    trades: NDArray[np.int64]  # trades in each second
    session_len: int  # seconds per session (for intraday profiles and overnight breaks)


def sample(records: TickBatch, universe: Universe, start_ns: int, seconds: int) -> Grid:
    """Per-second grids from records (event order), carrying each symbol's last state forward."""
    n = len(universe)
    sec = ((records["ts"] - start_ns) // 1_000_000_000).astype(np.int64)
    keep = (sec >= 0) & (sec < seconds)
    rec, sec = records[keep], sec[keep]
    sym = rec["sym"].astype(np.int64)
    flat = sec * n + sym
    mid = np.full(seconds * n, np.nan)
    spread = np.full(seconds * n, np.nan)
    # the last record of each (second, symbol) cell wins: assign in event order
    mid[flat] = (rec["bid"] + rec["ask"]) / 2
    spread[flat] = (rec["ask"] - rec["bid"]) / universe.tick_size[sym]
    trades = np.bincount(flat[(rec["flags"] & 1) > 0], minlength=seconds * n)
    return Grid(
        _ffill(mid.reshape(seconds, n), universe.price),
        _ffill(spread.reshape(seconds, n), np.ones(n)),
        trades.reshape(seconds, n),
        int(SESSION_S),
    )


def _ffill(a: Array, first: Array) -> Array:
    a = a.copy()
    if np.isnan(a[0]).any():
        a[0] = np.where(np.isnan(a[0]), first, a[0])
    idx = np.where(np.isnan(a), 0, np.arange(len(a))[:, None])
    np.maximum.accumulate(idx, axis=0, out=idx)
    return a[idx, np.arange(a.shape[1])]


def returns(grid: Grid, every_s: int) -> Array:
    """Log mid returns over `every_s` seconds inside sessions (no overnight), (k, symbols)."""
    per = grid.session_len // every_s
    sessions = len(grid.mid) // grid.session_len
    out = []
    for d in range(sessions):
        block = grid.mid[d * grid.session_len : (d + 1) * grid.session_len : every_s]
        out.append(np.diff(np.log(block), axis=0)[: per - 1])
    return np.concatenate(out) if out else np.empty((0, grid.mid.shape[1]))


def excess_kurtosis(r: Array) -> float:
    z = (r - r.mean(0)) / r.std(0)  # each symbol on its own scale, then pooled
    return float(np.mean(z**4) - 3.0)


def acf(x: Array, lag: int) -> Array:
    """Per-column autocorrelation at `lag`."""
    x = x - x.mean(0)
    out: Array = (x[lag:] * x[:-lag]).sum(0) / (x * x).sum(0)
    return out


def hill(sizes: NDArray[np.int64], top: float = 0.01) -> float:
    """Hill estimate of the tail exponent from the top `top` share of sizes."""
    s = np.sort(sizes.astype(np.float64))[::-1]
    k = max(10, int(len(s) * top))
    return float(1.0 / np.mean(np.log(s[:k] / s[k])))


def _trade_stats(records: TickBatch, universe: Universe) -> dict[str, float]:
    trades = records[(records["flags"] & 1) > 0]
    n = len(universe)
    bounce, cv = [], []
    for i in range(n):  # a loop over symbols is fine here: analysis, not the hot path
        t = trades[trades["sym"] == i]
        if len(t) > 50:
            d = np.diff(t["last"])
            if d.std() > 0:
                bounce.append(acf(d[:, None], 1)[0])
            gaps = np.diff(t["ts"]).astype(np.float64)
            if gaps.mean() > 0:
                cv.append(gaps.std() / gaps.mean())
    sizes = trades["last_size"].astype(np.int64)
    lots = universe.lot_size[trades["sym"]]
    return {
        "bounce": float(np.mean(bounce)) if bounce else np.nan,
        "cv": float(np.mean(cv)) if cv else np.nan,
        "round_lots": float(np.mean(sizes % lots == 0)) if len(sizes) else np.nan,
        "hill": hill(sizes) if len(sizes) > 1000 else np.nan,
    }


def report(
    records: TickBatch,
    universe: Universe,
    start_ns: int | None = None,
    *,
    levels: NDArray[np.void] | None = None,
    ladders: NDArray[np.void] | None = None,
) -> list[Row]:
    """Every stylized fact of the simulator issue: value, target, pass/fail.

    With the book's level updates and ladders sampled through the run (`Market.step_book`,
    `Market.book_snapshot`), the book's facts too (`book_report`).
    """
    if start_ns is None:
        start_ns = int(records["ts"][0]) if len(records) else 0
    last_ns = int(records["ts"][-1]) if len(records) else start_ns
    seconds = -(-(last_ns - start_ns) // 1_000_000_000)  # whole seconds, rounded up
    grid = sample(records, universe, start_ns, max(seconds, 1))
    rows: list[Row] = []

    def add(name: str, value: float, target: str, ok: bool) -> None:
        rows.append(Row(name, float(value), target, bool(ok)))

    kurt = {s: excess_kurtosis(returns(grid, s)) for s in (10, 60, 300, 1800)}
    add("excess kurtosis, 1-min returns", kurt[60], ">= 3", kurt[60] >= 3)
    ordered = kurt[10] > kurt[60] > kurt[300] > kurt[1800]
    add("kurtosis 10s > 1m > 5m > 30m", kurt[1800], "decreasing", ordered)
    r1 = returns(grid, 60)
    lag1 = float(np.mean(acf(r1, 1)))
    add("ACF 1-min returns, lag 1", lag1, "in [-0.10, 0.03]", -0.10 <= lag1 <= 0.03)
    lags = float(np.mean([np.mean(acf(r1, k)) for k in range(2, 11)]))
    add("ACF 1-min returns, lags 2-10", lags, "within +-0.03", abs(lags) <= 0.03)
    a1 = acf(np.abs(r1), 1)
    add("ACF |1-min returns|, lag 1", float(a1.mean()), ">= 0.1", a1.mean() >= 0.1)
    signif = float(np.mean(a1 > 2 / np.sqrt(len(r1)))) if np.isfinite(a1).any() else np.nan
    add("  significant for this share of symbols", signif, ">= 0.9", signif >= 0.9)
    a50 = float(np.mean(acf(np.abs(r1), 50)))
    add("ACF |1-min returns|, lag 50", a50, "> 0", a50 > 0)
    index = r1.mean(1)
    sq = index**2
    lev = float(np.mean([np.corrcoef(index[:-k], sq[k:])[0, 1] for k in range(1, 31)]))
    add("leverage corr(r, r^2 next 1-30 min)", lev, "< 0", lev < 0)
    rows.extend(_intraday_rows(grid))
    ts = _trade_stats(records, universe)
    add("bid-ask bounce, trade-to-trade ACF 1", ts["bounce"], "< -0.05", ts["bounce"] < -0.05)
    large_tick = universe.price / universe.tick_size < 6000
    if large_tick.any():
        at_one = float(np.mean(np.isclose(grid.spread[:, large_tick], 1.0)))
        add("quote time at 1 tick (large-tick names)", at_one, "> 0.5", at_one > 0.5)
    add("round-lot share of trades", ts["round_lots"], ">= 0.5", ts["round_lots"] >= 0.5)
    add("trade size tail (Hill, top 1%)", ts["hill"], "in [1.2, 2.0]", 1.2 <= ts["hill"] <= 2.0)
    add("trade inter-arrival CV", ts["cv"], "> 1.2", ts["cv"] > 1.2)
    counts = _minute_counts(grid)
    fano = float(np.nanmean(counts.var(0) / counts.mean(0)))
    add("Fano factor, 1-min trade counts", fano, "> 5", fano > 5)
    rows.extend(_cross_section_rows(grid, universe))
    if levels is not None and ladders is not None:
        rows.extend(book_report(records, levels, ladders, universe))
    return rows


def book_report(
    records: TickBatch, levels: NDArray[np.void], ladders: NDArray[np.void], universe: Universe
) -> list[Row]:
    """The order book's stylized facts; `ladders` are snapshots, shape (samples, symbols)."""
    rows: list[Row] = []

    def add(name: str, value: float, target: str, ok: bool) -> None:
        rows.append(Row(name, float(value), target, bool(ok)))

    depth = (ladders["bid_size"] + ladders["ask_size"]).astype(np.float64)  # (t, n, levels)
    scale = depth.mean(axis=(0, 2), keepdims=True)
    profile = (depth / np.where(scale > 0, scale, 1)).mean(axis=(0, 1))
    peak = int(np.argmax(profile))
    half = max(1, len(profile) // 2)
    hump = 1 <= peak <= half and profile[peak] >= 1.5 * profile[0] and profile[-1] < profile[peak]
    add("depth profile: deepest level (ticks from best)", peak, f"in [1, {half}], a hump", hump)
    ratio = profile[peak] / profile[0] if profile[0] > 0 else np.inf
    add("  deepest / best level mean depth", ratio, ">= 1.5", ratio >= 1.5)
    sym = records["sym"]
    spread = np.round((records["ask"] - records["bid"]) / universe.tick_size[sym])
    liquid = (universe.price / universe.tick_size < 6000)[sym]
    if liquid.any():
        at_one = float(np.mean(spread[liquid] == 1))
        add("spread at 1 tick (large-tick names)", at_one, ">= 0.5", at_one >= 0.5)
        # heavy tail: wide spreads are far likelier than a geometric law of the same mean says
        wide = float(np.mean(spread[liquid] >= 5))
        geometric = (1 - 1 / float(spread[liquid].mean())) ** 4
        tail = wide / geometric if geometric > 0 else np.nan  # all at one tick: no tail
        add("  spread >= 5 ticks vs a geometric law", tail, ">= 3 (heavy tail)", tail >= 3)
    trades = int(np.count_nonzero(records["flags"] & 1))
    cancels = int(np.count_nonzero(levels["reason"] == Reason.CANCEL))
    per = cancels / trades if trades else np.nan
    add("cancellations per trade", per, "in [20, 40]", 20 <= per <= 40)
    added = _added_sizes(levels, universe)
    tail_k = hill(added) if len(added) > 1000 else np.nan
    add("limit order size tail (Hill, top 1%)", tail_k, "in [1.2, 2.0]", 1.2 <= tail_k <= 2.0)
    hit = _imbalance_hits(records)
    add("best-level imbalance calls the next mid move", hit, "> 0.55", hit > 0.55)
    return rows


def _added_sizes(levels: NDArray[np.void], universe: Universe) -> NDArray[np.int64]:
    """What each add put on its level, in lots (the first update of a level is skipped)."""
    sym = levels["sym"].astype(np.int64)
    ticks = np.round(levels["price"] / universe.tick_size[sym]).astype(np.int64)
    key = (sym * 2 + levels["side"]) * (int(ticks.max(initial=0)) + 1) + ticks
    order = np.argsort(key, kind="stable")  # per level, in time order
    k, size = key[order], levels["size"][order].astype(np.int64)
    same = np.zeros(len(k), bool)
    same[1:] = k[1:] == k[:-1]
    added = np.diff(size, prepend=0)
    use = same & (levels["reason"][order] == Reason.ADD) & (added > 0)
    lots: NDArray[np.int64] = added[use] // universe.lot_units[sym[order][use]]
    return lots[lots > 0]


def _imbalance_hits(records: TickBatch) -> float:
    """Share of quotes whose best-level imbalance has the sign of the symbol's next mid move."""
    r = records[np.argsort(records["sym"], kind="stable")]
    bid, ask = r["bid_size"].astype(np.float64), r["ask_size"].astype(np.float64)
    imbalance = np.sign(bid - ask)
    mid = r["bid"] + r["ask"]
    moved = np.zeros(len(r), bool)
    moved[1:] = (mid[1:] != mid[:-1]) & (r["sym"][1:] == r["sym"][:-1])
    at = np.flatnonzero(moved)  # record i's next move: the first moved record after i
    nxt = at[np.minimum(np.searchsorted(at, np.arange(len(r)), "right"), len(at) - 1)]
    ok = (nxt > np.arange(len(r))) & (r["sym"][nxt] == r["sym"]) & (imbalance != 0)
    if not ok.any():
        return float("nan")
    up = np.sign(mid[nxt] - mid[np.maximum(nxt - 1, 0)])
    return float(np.mean(up[ok] == imbalance[ok]))


def _minute_counts(grid: Grid) -> Array:
    t = grid.trades[: len(grid.trades) // 60 * 60]
    counts: Array = t.reshape(-1, 60, t.shape[1]).sum(1).astype(np.float64)
    return counts


def _intraday_rows(grid: Grid) -> list[Row]:
    L = grid.session_len
    sessions = len(grid.mid) // L
    if sessions == 0:
        return []
    tod = np.arange(sessions * L) % L
    edge = (tod < 1800) | (tod >= L - 1800)
    mid_day = (tod >= 2.5 * 3600) & (tod < 4.0 * 3600)
    open_ = tod < 1800
    tr = grid.trades[: sessions * L].sum(1)
    ratio = tr[edge].mean() / tr[mid_day].mean()
    r = np.abs(np.diff(np.log(grid.mid[: sessions * L]), axis=0, prepend=np.nan))
    r[tod == 0] = np.nan  # no overnight moves
    r_ratio = np.nanmean(r[open_]) / np.nanmean(r[mid_day])
    spread = grid.spread[: sessions * L].mean(1)
    s_open, s_mid = spread[open_].mean(), spread[mid_day].mean()
    return [
        Row("trades first/last 30 min vs midday", float(ratio), ">= 1.5", bool(ratio >= 1.5)),
        Row("|r| first 30 min vs midday", float(r_ratio), ">= 1.3", bool(r_ratio >= 1.3)),
        Row("spread at the open / midday", float(s_open / s_mid), "> 1", bool(s_open > s_mid)),
    ]


def _cross_section_rows(grid: Grid, universe: Universe) -> list[Row]:
    r5 = returns(grid, 300)
    stocks = np.array([k != "etf" for k in universe.kinds])
    c = np.atleast_2d(np.corrcoef(r5[:, stocks].T))  # 2-D even for a single stock
    sec = np.array(universe.sectors)[stocks]
    off = np.eye(len(c)) == 0
    same = (sec[:, None] == sec[None, :]) & off
    other = (sec[:, None] != sec[None, :]) & off
    mean = float(c[off].mean())
    rows = [Row("mean pairwise 5-min correlation", mean, "in [0.1, 0.5]", 0.1 <= mean <= 0.5)]
    if same.any() and other.any():
        s_mean, o_mean = float(c[same].mean()), float(c[other].mean())
        rows.append(
            Row("  same sector minus other sectors", s_mean - o_mean, "> 0", s_mean > o_mean)
        )
    return rows


def figure(records: TickBatch, universe: Universe, path: str, start_ns: int | None = None) -> None:
    """Returns distribution, |r| ACF and the intraday profile, saved to `path` (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = int(records["ts"][0]) if start_ns is None else start_ns
    seconds = int((int(records["ts"][-1]) - start) // 1_000_000_000)
    grid = sample(records, universe, start, max(seconds, 1))
    r1 = returns(grid, 60)
    z = ((r1 - r1.mean(0)) / r1.std(0)).ravel()
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    ax[0].hist(z, bins=200, density=True, log=True, label="simulated")
    xs = np.linspace(-8, 8, 400)
    ax[0].plot(xs, np.exp(-xs * xs / 2) / np.sqrt(2 * np.pi), label="normal")
    ax[0].set_title("1-min returns (standardised)")
    ax[0].legend()
    lags = np.arange(1, 101)
    ax[1].plot(lags, [np.mean(acf(np.abs(r1), k)) for k in lags.tolist()], label="|r|")
    ax[1].plot(lags, [np.mean(acf(r1, k)) for k in lags.tolist()], label="r")
    ax[1].axhline(0, color="grey", lw=0.5)
    ax[1].set_title("autocorrelation of 1-min returns")
    ax[1].legend()
    per_min = _minute_counts(grid).sum(1)
    L = grid.session_len // 60
    prof = per_min[: len(per_min) // L * L].reshape(-1, L).mean(0)
    ax[2].plot(np.arange(L) / 60, prof)
    ax[2].set_title("trades per minute through the session")
    ax[2].set_xlabel("hours since the open")
    fig.suptitle("tickwire simulated market: stylized facts (all prices simulated)")
    fig.tight_layout()
    fig.savefig(path)
