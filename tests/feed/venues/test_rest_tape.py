"""The REST tape against a plain fold of the same ticks, record by record, in Python.

A seeded market's batches go into a `RestTape`; what it answers (trades, quotes, last trades,
minute bars) must be what a loop over every tick gives, however the reads fall between the
batches, and quotes are folded only for a reader of quotes.
"""

from __future__ import annotations

import numpy as np

from tickwire.feed.venues._rest_tape import (
    BAR_DTYPE,
    FLUSH_RECORDS,
    NS_PER_MIN,
    QUOTE_DTYPE,
    Ring,
)
from tickwire.feed.venues.rest import RestTape
from tickwire.simulators import Market, Universe
from tickwire.simulators.ticks import TickFlag

T0 = 1_700_000_040_000_000_000  # a whole minute
S = 1_000_000_000


def _batches(
    seconds: int, step_ns: int = S // 4, universe: Universe | None = None
) -> tuple[Universe, list[np.ndarray]]:
    universe = universe or Universe.crypto_pairs()
    market = Market(universe, seed=11, start_ns=T0, session="24h")
    steps = seconds * S // step_ns
    return universe, [market.step(T0 + k * step_ns) for k in range(1, steps + 1)]


def _plain_bars(ticks: np.ndarray, sym: int) -> list[tuple[object, ...]]:
    """One symbol's minute bars from its trades, in a loop (the reference)."""
    bars: dict[int, dict[str, object]] = {}
    for r in ticks[(ticks["sym"] == sym) & (ticks["flags"] & int(TickFlag.TRADE) != 0)]:
        start = int(r["ts"]) // NS_PER_MIN * NS_PER_MIN
        price, size, buy = float(r["last"]), int(r["last_size"]), bool(r["flags"] & 2)
        bar = bars.get(start)
        if bar is None:
            bar = bars[start] = dict(open=price, high=price, low=price, volume=0, buy_volume=0)
            bar.update(count=0, first_id=int(r["seq"]), notional=0.0)
        bar["high"] = max(price, bar["high"])  # type: ignore[call-overload]
        bar["low"] = min(price, bar["low"])  # type: ignore[call-overload]
        bar["close"], bar["last_id"] = price, int(r["seq"])
        bar["volume"] += size  # type: ignore[operator]
        bar["buy_volume"] += size if buy else 0  # type: ignore[operator]
        bar["notional"] += price * size  # type: ignore[operator]
        bar["count"] += 1  # type: ignore[operator]
    names = ("open", "high", "low", "close", "volume", "buy_volume", "count", "first_id")
    return [(start, *(b[n] for n in names), b["last_id"]) for start, b in sorted(bars.items())]


def _bars(tape: RestTape, sym: int) -> list[tuple[object, ...]]:
    names = ("start", "open", "high", "low", "close", "volume", "buy_volume", "count")
    return [
        (*(b[n].item() for n in names), b["first_id"].item(), b["last_id"].item())
        for b in tape.bars(sym)
    ]


def test_tape_answers_what_a_plain_fold_of_every_tick_gives() -> None:
    """Trades, last trades and minute bars over 3 minutes, read now and then (before, across
    and after flushes), equal a loop over every tick."""
    universe, batches = _batches(190)
    tape = RestTape(len(universe))
    ticks = np.concatenate(batches)
    for k, batch in enumerate(batches):
        tape.publish(batch)
        if k % 97 == 0:  # a read between batches folds what is pending
            tape.recent_trades(0)
    trade = (ticks["flags"] & int(TickFlag.TRADE)) != 0
    for sym in range(len(universe)):
        mine = ticks[trade & (ticks["sym"] == sym)]
        got = tape.recent_trades(sym)
        assert got["id"].tolist() == mine["seq"].tolist()
        assert got["price"].tolist() == mine["last"].tolist()
        assert got["buy"].tolist() == ((mine["flags"] & 2) != 0).tolist()
        last = tape.last_trade(sym)
        assert last is not None and int(last["id"]) == int(mine["seq"][-1])
        assert _bars(tape, sym) == _plain_bars(ticks, sym)
    assert len(tape.closed.all()) >= 3 * len(universe) - 5  # three closed minutes, nearly all
    every = tape.all_bars()
    assert every.dtype == BAR_DTYPE and len(every) == len(tape.closed.all()) + len(universe)


def test_quotes_are_folded_only_for_a_reader_and_keep_the_newest() -> None:
    """Without a read of quotes nothing goes into their ring (it is not even touched); a read
    then gives the newest records the ring holds, exactly as if every batch had gone in."""
    universe, batches = _batches(20, S // 100, Universe.synthetic(300))  # ~67k records
    tape = RestTape(len(universe))
    tape.quotes = Ring(QUOTE_DTYPE, 3 * FLUSH_RECORDS // 2)  # small: the batches overflow it
    ticks = np.concatenate(batches)
    assert len(ticks) > 4 * FLUSH_RECORDS
    half = len(batches) // 2
    for batch in batches[:half]:
        tape.publish(batch)
    tape.recent_trades(0)  # trades and bars fold; quotes wait
    assert tape.quotes.filled == 0
    cap = len(tape.quotes.buf)

    def rows(records: np.ndarray) -> list[tuple[object, ...]]:
        names = ("ts", "bid", "ask", "bid_size", "ask_size")
        return list(zip(*(records[n].tolist() for n in names), strict=True))

    def want(upto: int, sym: int) -> list[tuple[object, ...]]:
        seen = ticks[: sum(len(b) for b in batches[:upto])][-cap:]
        return rows(seen[seen["sym"] == sym])

    def got(sym: int) -> list[tuple[object, ...]]:
        return rows(tape.recent_quotes(sym))

    assert got(1) == want(half, 1)
    for batch in batches[half:]:
        tape.publish(batch)
    many = tape.quotes_of([0, 2])
    assert [len(many[s]) for s in (0, 2)] == [len(want(len(batches), s)) for s in (0, 2)]
    for sym in range(len(universe)):
        assert got(sym) == want(len(batches), sym)
