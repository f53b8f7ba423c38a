"""A `Scenario` played on the market's grid: what each chunk of `Market` must change, as arrays.

`Play` answers, for a chunk: the volatility factor per cell, which (cell, symbol) pairs are halted
(fixed halts, and LULD bands against the efficient price at each cell's end), the log-price offset,
spread factor and book thinning at any (time, symbol), and the fat-finger trades to insert. It
keeps the status records (`scenario.STATUS_DTYPE`) and LULD band changes (`scenario.BAND_DTYPE`,
prices not yet on the tick grid) made ahead and releases them with time, and when each scenario
played starts and ends (`Announcement`). Loops run over events and cells, never
over symbols. Imports numpy and `scenario` only.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from .scenario import BAND_DTYPE, BAND_MOVE, STATUS_DTYPE, Event, HaltReason, Scenario, Status


class _Shape(NamedTuple):
    """A trapezoid in time (ns from the start): 0 before t0, 1 from t1 to t2, 0 after t3."""

    mask: NDArray[np.bool_]
    t: tuple[float, float, float, float]
    log_move: float  # log-price offset at full strength
    spread: float  # spread factor at full strength
    thin: float  # share of new orders kept at full strength


class FatFinger(NamedTuple):
    ts: int
    sym: int
    move: float
    lots: int


class Announcement(NamedTuple):
    """A scenario starts (`active`) or ends, at event time `ts` (ns)."""

    ts: int
    name: str
    active: bool


def event_end_s(e: Event, since_start_s: float) -> float:
    """When event `e` (at `since_start_s`) stops acting, in seconds from the start: a halt with a
    duration, a crash's recovery, a drought, a regime or LULD bands with a duration; the moment
    itself for a one-off change (a jump, a gap, a fat finger, a resume); inf for what lasts to
    the end of the run (a halt until a resume is ended by its resume)."""
    p = e.params
    if e.kind == "flash-crash":
        return since_start_s + p["fall"] + p["hold"] + p["recover"]
    if e.kind in ("drought", "vol-regime", "luld"):
        return since_start_s + p["duration"]
    if e.kind == "halt" and p["duration"] < math.inf:
        return since_start_s + p["duration"]
    return since_start_s


class Play:
    """One scenario on one market: per-chunk effects, and the status records they lead to."""

    def __init__(
        self, scenario: Scenario, start_ns: int, session_s: float, grid_ns: int, n: int
    ) -> None:
        if scenario.n_symbols != n:
            raise ValueError(f"scenario is for {scenario.n_symbols} symbols, market has {n}")
        self.name = scenario.name
        self.scenario = scenario  # a live trigger adds its events to these (`continued`)
        self.start_ns, self.grid_ns, self.n = start_ns, grid_ns, n
        self.day_ns = round(session_s * 1e9)  # LULD references restart at each open
        self.shapes: list[_Shape] = []
        self.vol: list[tuple[float, float, float]] = []  # (from, until, factor), ns from start
        self.vol_own: list[tuple[float, float, float, NDArray[np.bool_]]] = []  # some symbols
        self.fat: list[FatFinger] = []
        halts: list[tuple[NDArray[np.intp], int, float]] = []  # (symbols, from, until)
        self.band = np.full(n, math.inf)
        self.luld_from, self.luld_until = np.full(n, math.inf), np.full(n, -math.inf)
        self.alpha_s = np.full(n, 300.0)  # LULD reference averaging window, s
        self.pause_ns = np.zeros(n, np.int64)

        def since_start(e: Event) -> float:
            if e.kind == "opening-gap":
                return float(e.params["session"] * session_s * 1e9)
            return float(e.at_ns(start_ns) - start_ns)

        # in time order, whatever the file's: a resume must find the halt it ends
        for a, e in sorted(((since_start(e), e) for e in scenario.events), key=lambda x: x[0]):
            mask = np.zeros(n, bool)
            mask[e.symbols] = True
            p = e.params
            if e.kind == "flash-crash":
                t1 = a + p["fall"] * 1e9
                t2 = t1 + p["hold"] * 1e9
                t = (a, t1, t2, t2 + p["recover"] * 1e9)
                self.shapes.append(_Shape(mask, t, math.log1p(-p["drop"]), p["spread"], p["thin"]))
            elif e.kind in ("opening-gap", "jump"):
                shape = (a, a, math.inf, math.inf)
                self.shapes.append(_Shape(mask, shape, math.log1p(p["move"]), 1.0, 1.0))
            elif e.kind == "drought":
                end = a + p["duration"] * 1e9
                self.shapes.append(_Shape(mask, (a, a, end, end), 0.0, p["spread"], p["thin"]))
            elif e.kind == "vol-regime":
                until = a + p["duration"] * 1e9
                if mask.all():
                    self.vol.append((a, until, p["factor"]))
                else:
                    self.vol_own.append((a, until, p["factor"], mask))
            elif e.kind == "fat-finger":
                self.fat.append(
                    FatFinger(start_ns + round(a), int(e.symbols[0]), p["move"], int(p["size"]))
                )
            elif e.kind == "halt":
                halts.append((e.symbols, self._cell(a), a + p["duration"] * 1e9))
            elif e.kind == "resume":  # ends the open halts of these symbols (checked by parse)
                end = self._cell(a)
                for k, (syms, since, until) in enumerate(halts):
                    if until == math.inf and np.isin(syms, e.symbols).any():
                        ending = np.isin(syms, e.symbols)
                        halts[k] = (syms[ending], since, end)
                        if not ending.all():
                            halts.append((syms[~ending], since, until))
            elif e.kind == "luld":
                self.band[mask] = p["band"]
                self.luld_from[mask] = a
                self.luld_until[mask] = a + p["duration"] * 1e9
                self.alpha_s[mask] = p["window"]
                self.pause_ns[mask] = max(1, round(p["pause"] * 1e9 / grid_ns)) * grid_ns
        # halts from before the start are in force at it; those over by then are left out
        ends = [(s, since, self._cell(u) if u < math.inf else u) for s, since, u in halts]
        self.halts = [(s, max(0, since), until) for s, since, until in ends if until > 0]
        self.has_luld = bool(np.isfinite(self.band).any())
        self.has_liquidity = any(s.spread != 1 or s.thin != 1 for s in self.shapes)
        self.has_moves = any(s.log_move != 0 for s in self.shapes)
        self._start_state(n)

    def _start_state(self, n: int) -> None:
        """What playing changes, as at the start (`continued` carries it over)."""
        # LULD state: reference log-price (nan: none yet), halt span in ns from the start
        self.ref = np.full(n, np.nan)
        self.l_since = np.zeros(n, np.int64)
        self.l_until = np.zeros(n, np.int64)
        self.pending = np.empty(0, STATUS_DTYPE)
        # LULD bands: the reference (log-price) they were published for (nan: none), the
        # indicator of the next first reference (A: an open, E: after a pause), changes ahead
        self.pub = np.full(n, np.nan)
        self.fresh_why = np.full(n, ord("A"), np.uint8)
        self.pending_bands = np.empty(0, BAND_DTYPE)
        self.status = np.zeros(n, np.uint8)  # as of the records released
        self.last_halted = np.zeros(n, bool)  # the last cell made, for the next chunk's changes
        self.last_why, self.announcements = np.zeros(n, np.uint8), list[Announcement]()  # ahead

    def announce(self, scenario: Scenario, t0_ns: int, session_s: float) -> None:
        """`scenario` (times from `t0_ns`) starts at `t0_ns` and ends with its last effect
        (`event_end_s`; never, if one lasts to the end of the run)."""
        ends = []
        for e in scenario.events:
            if e.kind == "opening-gap":
                at_s = e.params["session"] * session_s - (t0_ns - self.start_ns) / 1e9
            else:
                at_s = (e.at_ns(t0_ns) - t0_ns) / 1e9
            ends.append(event_end_s(e, at_s))
        end = max(ends, default=0.0)
        made = [Announcement(t0_ns, scenario.name, True)]
        if end < math.inf:
            made.append(Announcement(t0_ns + self._cell(end * 1e9), scenario.name, False))
        self.announcements = sorted([*self.announcements, *made])

    def _cell(self, t_ns: float) -> int:
        """A time snapped to the 0.1 s grid (ns from the start)."""
        return round(t_ns / self.grid_ns) * self.grid_ns

    # ------------------------------------------------------------------ per chunk

    def vol_factor(self, t0: int, cells: int) -> NDArray[np.float64]:
        """Volatility factor per cell (ns from the start at the chunk's first cell: t0)."""
        t = t0 + self.grid_ns * np.arange(cells, dtype=np.float64)
        out = np.ones(cells)
        for since, until, factor in self.vol:
            out[(t >= since) & (t < until)] *= factor
        return out

    def vol_symbols(self, t0: int, cells: int) -> NDArray[np.float64] | None:
        """(cells, symbols): the volatility factor of the regimes on some symbols, or None."""
        if not self.vol_own:
            return None
        t = t0 + self.grid_ns * np.arange(cells, dtype=np.float64)
        out = np.ones((cells, self.n))
        for since, until, factor, mask in self.vol_own:
            out[np.ix_((t >= since) & (t < until), mask)] *= factor
        return out

    def halted(self, t0: int, cells: int, price: NDArray[np.float64] | None) -> NDArray[np.bool_]:
        """(cells, symbols): no trades nor quotes. `price`: log-price at each cell's end (LULD).

        The chunk's status records are the changes of this mask (held until `release`), so a
        LULD pause inside a scenario halt, or the other way round, is one halt on the wire.
        """
        n, g = self.n, self.grid_ns
        starts = t0 + g * np.arange(cells, dtype=np.int64)
        fixed = np.zeros((cells, n), bool)
        for syms, since, until in self.halts:
            fixed[:, syms] |= ((starts >= since) & (starts < until))[:, None]
        out = fixed.copy()
        if self.has_luld and price is not None:
            out |= self._luld(starts, price, fixed)
        why = np.where(fixed, HaltReason.SCENARIO, HaltReason.LULD).astype(np.uint8)
        before = np.vstack((self.last_halted, out[:-1]))
        why_before = np.vstack((self.last_why, why[:-1]))
        c, sym = np.nonzero(out != before)  # cell order, symbols ascending inside
        made = np.zeros(c.size, STATUS_DTYPE)
        made["ts"] = self.start_ns + starts[c]
        made["sym"] = sym
        made["status"] = np.where(out[c, sym], Status.HALTED, Status.TRADING)
        made["reason"] = np.where(out[c, sym], why[c, sym], why_before[c, sym])
        self.last_halted, self.last_why = out[-1], why[-1]
        self.pending = np.concatenate((self.pending, made))
        return out

    def _luld(
        self, starts: NDArray[np.int64], price: NDArray[np.float64], fixed: NDArray[np.bool_]
    ) -> NDArray[np.bool_]:
        """Bands: halt from the next cell when a cell ends outside; trade again after the pause."""
        g = self.grid_ns
        alpha = 1 - np.exp(-g / 1e9 / self.alpha_s)
        paused = np.zeros(fixed.shape, bool)
        bands: list[NDArray[np.void]] = []
        for c, t in enumerate(starts):
            if t % self.day_ns == 0:  # an open: yesterday's prices are no reference
                self.ref[:] = np.nan
                self.fresh_why[:] = ord("A")
            back = (self.l_until > 0) & (self.l_until <= t)
            self.l_until[back], self.ref[back] = 0, np.nan
            self.fresh_why[back] = ord("E")
            paused[c] = (self.l_until > t) & (self.l_since <= t)
            in_force = (t >= self.luld_from) & (t < self.luld_until)
            live = in_force & ~paused[c] & ~fixed[c]
            p = price[c]
            fresh = live & np.isnan(self.ref)
            self.ref[fresh] = p[fresh]
            breach = live & (np.abs(np.expm1(p - self.ref)) > self.band)
            self.l_since[breach] = t + g
            self.l_until[breach] = t + g + self.pause_ns[breach]
            keep = live & ~breach
            self.ref[keep] += alpha[keep] * (p[keep] - self.ref[keep])
            bands += self._bands(t, in_force, keep, fresh)
        if bands:
            self.pending_bands = np.concatenate((self.pending_bands, *bands))
        return paused

    def _bands(
        self,
        t: int,
        in_force: NDArray[np.bool_],
        keep: NDArray[np.bool_],
        fresh: NDArray[np.bool_],
    ) -> list[NDArray[np.void]]:
        """Cell `t`'s band changes: cleared from `t` where the bands are no longer in force; new
        from the next cell where a reference was taken or moved `BAND_MOVE` from the published."""
        out = []
        pub = self.pub
        gone = ~in_force & (pub == pub)  # published (not nan) and no longer in force
        if gone.any():
            rec = np.zeros(int(gone.sum()), BAND_DTYPE)
            rec["ts"], rec["sym"], rec["up"], rec["down"] = (
                self.start_ns + t,
                np.flatnonzero(gone),
                np.nan,
                np.nan,
            )
            self.pub[gone] = np.nan
            out.append(rec)
        # a reference moved BAND_MOVE from the published one, or none published (nan)
        moved = keep & (fresh | ~(np.abs(np.expm1(self.ref - pub)) < BAND_MOVE))
        if moved.any():
            ids = np.flatnonzero(moved)
            rec = np.zeros(ids.size, BAND_DTYPE)
            rec["ts"], rec["sym"] = self.start_ns + t + self.grid_ns, ids
            rec["indicator"] = np.where(fresh[ids], self.fresh_why[ids], ord("B"))
            mid, band = np.exp(self.ref[ids]), self.band[ids]
            rec["up"], rec["down"] = mid * (1 + band), mid * (1 - band)
            self.pub[ids] = self.ref[ids]
            out.append(rec)
        return out

    def _strength(self, shape: _Shape, t: NDArray[np.float64]) -> NDArray[np.float64]:
        t0, t1, t2, t3 = shape.t
        up = np.where(t >= t1, 1.0, (t - t0) / max(t1 - t0, 1.0))
        down = np.where(t <= t2, 1.0, (t3 - t) / max(t3 - t2, 1.0)) if t3 < math.inf else 1.0
        return np.clip(np.minimum(up, down), 0.0, 1.0) * (t >= t0)

    def effects(
        self, ts_ns: NDArray[np.int64], sym: NDArray[np.intp]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """(log-price offset, spread factor, share of new orders kept) at each (ts, symbol)."""
        t = (ts_ns - self.start_ns).astype(np.float64)
        move, spread, thin = np.zeros(t.size), np.ones(t.size), np.ones(t.size)
        for shape in self.shapes:
            f = self._strength(shape, t) * shape.mask[sym]
            move += shape.log_move * f
            spread *= 1 + (shape.spread - 1) * f
            thin *= 1 - (1 - shape.thin) * f
        return move, spread, thin

    def continued(self, scenario: Scenario, session_s: float) -> Play:
        """A play of `scenario` (this one's events and more) that goes on from where this one
        is: its status records not taken, halts and LULD state carry over."""
        new = Play(scenario, self.start_ns, session_s, self.grid_ns, self.n)
        new.pending, new.status, new.ref = self.pending, self.status, self.ref
        new.last_halted, new.last_why = self.last_halted, self.last_why
        new.l_since, new.l_until = self.l_since, self.l_until
        new.pub, new.fresh_why, new.pending_bands = self.pub, self.fresh_why, self.pending_bands
        new.announcements = self.announcements  # `announce` adds the new scenario's
        return new

    def released_announcements(self, until_ns: int) -> list[Announcement]:
        """The starts and ends with ts <= until_ns not released yet, in time order."""
        cut = 0
        while cut < len(self.announcements) and self.announcements[cut].ts <= until_ns:
            cut += 1
        out, self.announcements = self.announcements[:cut], self.announcements[cut:]
        return out

    def release(self, until_ns: int) -> NDArray[np.void]:
        """The status records with ts <= until_ns not released yet."""
        cut = int(np.searchsorted(self.pending["ts"], until_ns, "right"))
        out, self.pending = self.pending[:cut], self.pending[cut:]
        self.status[out["sym"]] = out["status"]  # in ts order: the last one wins
        return out

    def release_bands(self, until_ns: int) -> NDArray[np.void]:
        """The band changes with ts <= until_ns not released yet (prices off the grid)."""
        cut = int(np.searchsorted(self.pending_bands["ts"], until_ns, "right"))
        out, self.pending_bands = self.pending_bands[:cut], self.pending_bands[cut:]
        return out


def insert_fat_fingers(
    play: Play,
    out: NDArray[np.void],
    last: NDArray[np.intp],
    state: dict[str, NDArray[np.int64]],
    before: NDArray[np.void],
    span: tuple[int, int, NDArray[np.bool_]],
    price: tuple[NDArray[Any], NDArray[Any], NDArray[Any]],
) -> NDArray[np.void]:
    """Insert the chunk's fat-finger trades into `out` (time order), fixing what follows them.

    `state`: the market's per-symbol seq, volume, last_tk, last_sz after the chunk (updated);
    `before`: each symbol's last record before the chunk; `span`: (t0_ns, end_ns, halted cells);
    `price`: (tick, units, scale) per symbol.
    """
    t0, end, halted = span
    tick_sz, units, scale = price
    for ff in play.fat:
        if not t0 <= ff.ts < end or halted[(ff.ts - t0) // play.grid_ns, ff.sym]:
            continue
        s = ff.sym
        pos = int(np.searchsorted(out["ts"], ff.ts, "right"))
        mine = np.flatnonzero(out["sym"] == s)
        prior, after = mine[mine < pos], mine[mine >= pos]
        ref = out[prior[-1]] if prior.size else before[s]
        sell = ff.move < 0
        quote = ref["bid"] if sell else ref["ask"]
        tk = max(1, round(quote * (1 + ff.move) / tick_sz[s]))
        size = ff.lots * int(state["lot"][s])
        rec = ref.copy()
        rec["ts"], rec["seq"] = ff.ts, ref["seq"] + 1
        rec["last"] = tk * units[s] / scale[s]
        rec["last_size"], rec["volume"] = min(size, 2**32 - 1), ref["volume"] + size
        rec["flags"] = 1 | (4 if sell else 2)  # TRADE | SELL or BUY
        out["seq"][after] += 1
        out["volume"][after] += size
        traded = np.flatnonzero(out["flags"][after] & 1)
        stale = after[: traded[0]] if traded.size else after  # quotes still showing the print
        out["last"][stale], out["last_size"][stale] = rec["last"], rec["last_size"]
        out = np.insert(out, pos, rec)
        last[last >= pos] += 1
        if not after.size:
            last[s] = pos
        state["seq"][s] += 1
        state["volume"][s] += size
        if not traded.size:
            state["last_tk"][s], state["last_sz"][s] = tk, rec["last_size"]
    return out
