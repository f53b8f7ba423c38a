"""Alpaca's messages for every batch, built once for all Alpaca sessions (`AlpacaEncoder`).

Each batch of tick records becomes Alpaca trades (`T:t`), quotes (`T:q`) and minute bars (`T:b`,
built from the trades, emitted when event time leaves the minute), a scenario's status changes
become trading statuses (`T:s`, `encode_statuses`) and its LULD band changes `lulds` messages
(`T:l`, `encode_bands`: limit up `u`, limit down `d`, the UTP indicator `i`; a band cleared is
no message, as Alpaca has none), encoded lazily once per codec (JSON text or
MessagePack) and shared by every Alpaca session; `alpaca.py` re-exports it.
Sans-IO: no trio, no sockets, no clock of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgpack
import orjson

from tickwire.simulators.ticks import TickBatch, TickFlag
from tickwire.simulators.universe import Universe

from ._common import NS_PER_MIN, Clock, Entry, Shared
from ._sizes import Sizes
from ._tape import Bar, Tape

Band = tuple[float, float, int]  # limit up, limit down, the indicator's ASCII code
EXCHANGE = "V"  # IEX's participant code: every simulated print and quote is "on IEX"
_TRADE, _BUY, _OPEN = int(TickFlag.TRADE), int(TickFlag.BUY), int(TickFlag.OPEN)
# A trading status (`statuses`) as Alpaca sends Tape C's (UTP) codes: by (status, reason) of
# `simulators.scenario` (halted 1 / trading 0; reason 1 scenario, 2 LULD band):
# (status code, status message, reason code, reason message).
STATUS_CODES = {
    (1, 1): ("H", "Trading Halt", "T12", "Trading Halted; For information requested by NASDAQ"),
    (1, 2): ("P", "Volatility Trading Pause", "LUDP", "Volatility Trading Pause"),
    (0, 1): ("T", "Trading Resumption", "", ""),
    (0, 2): ("T", "Trading Resumption", "", ""),
}


class AlpacaEncoder:
    """Every batch's Alpaca messages, built once for all Alpaca sessions."""

    venue = "alpaca"

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self._tape = Tape(len(universe))
        self._clock = Clock()
        sizes = Sizes(universe)
        self._number, self._plain = sizes.number, sizes.plain  # plain: a size is its units
        self._tapes = ["B" if k == "etf" else "C" for k in universe.kinds]  # Tape B: Arca ETFs
        self._book: list[tuple[float, float, int, int] | None] = [None] * len(universe)
        self._codecs = {"json": self._json, "msgpack": self._msgpack}

    def _json(self, shared: Shared, entry: Entry) -> bytes:
        clock = self._clock
        stamp = clock.whole if entry.channel == "bars" else clock.ns
        return orjson.dumps(self._message(entry, stamp))

    def _msgpack(self, shared: Shared, entry: Entry) -> bytes:
        packed: bytes = msgpack.packb(self._message(entry, msgpack.Timestamp.from_unix_nano))
        return packed

    def _message(self, entry: Entry, stamp: Callable[[int], Any]) -> dict[str, Any]:
        """The Alpaca message of an entry, its event time rendered by `stamp`."""
        names, tapes, plain, number = self.universe.symbols, self._tapes, self._plain, self._number
        if entry.channel == "trades":
            sym, tid, price, size, ts, _ = entry.message
            return {
                "T": "t",
                "S": names[sym],
                "i": tid,
                "x": EXCHANGE,
                "p": price,
                "s": size if plain[sym] else number(sym, size),
                "c": ["@"],
                "t": stamp(ts),
                "z": tapes[sym],
            }
        if entry.channel == "quotes":
            sym, bid, bs, ask, asz, ts = entry.message
            return {
                "T": "q",
                "S": names[sym],
                "bx": EXCHANGE,
                "bp": bid,
                "bs": bs if plain[sym] else number(sym, bs),
                "ax": EXCHANGE,
                "ap": ask,
                "as": asz if plain[sym] else number(sym, asz),
                "c": ["R"],
                "t": stamp(ts),
                "z": tapes[sym],
            }
        if entry.channel == "statuses":
            sym, status, reason, ts = entry.message
            sc, sm, rc, rm = STATUS_CODES.get((status, reason), STATUS_CODES[(status, 1)])
            return {
                "T": "s",
                "S": names[sym],
                "sc": sc,
                "sm": sm,
                "rc": rc,
                "rm": rm,
                "t": stamp(ts),
                "z": tapes[sym],
            }
        if entry.channel == "lulds":
            sym, up, down, indicator, ts = entry.message
            return {
                "T": "l",
                "S": names[sym],
                "u": up,
                "d": down,
                "i": chr(indicator),
                "t": stamp(ts),
                "z": tapes[sym],
            }
        b: Bar = entry.message
        return {
            "T": "b",
            "S": names[b.sym],
            "o": b.open,
            "h": b.high,
            "l": b.low,
            "c": b.close,
            "v": b.volume if plain[b.sym] else number(b.sym, b.volume),
            "t": stamp(b.start_ns),
            "n": b.count,
            "vw": round(b.vwap, 6),
        }

    def encode(self, batch: TickBatch, now_ns: int) -> Shared:
        """Alpaca messages for `batch` (event order), then bars of minutes ended by `now_ns`.

        Only the running state is updated here; each message is built and encoded when a
        session first asks for it, so symbols nobody subscribes to cost no encoding.
        """
        out = Shared(now_ns, self._codecs)
        tape, book, push = self._tape, self._book, out.items.append
        for ts, seq, bid, ask, last, vol, sym, fl, bs, asz, ls in batch.tolist():
            if ts >= tape.minute_ns + NS_PER_MIN:
                self._bars(out, tape.advance(ts))
            tape.seen(sym, last, vol, ls if fl & _TRADE else 0, bool(fl & _OPEN))
            if fl & _TRADE:
                tape.trade(sym, ts, last, ls, bool(fl & _BUY), seq)  # the trade id: its seq
                push((sym, "trades", (sym, seq, last, ls, ts, bool(fl & _BUY))))
            quote = (bid, ask, bs, asz)
            if book[sym] != quote:
                book[sym] = quote
                push((sym, "quotes", (sym, bid, bs, ask, asz, ts)))
        self._bars(out, tape.advance(now_ns))
        return out

    def encode_statuses(self, changes: Iterable[tuple[int, int, int, int]], now_ns: int) -> Shared:
        """Alpaca `statuses` messages for trading status changes, each (ts, sym, status, reason)
        as in `simulators.scenario.STATUS_DTYPE`."""
        out = Shared(now_ns, self._codecs)
        for ts, sym, status, reason in changes:
            out.add(sym, "statuses", (sym, status, reason, ts))
        return out

    def encode_bands(self, changes: Iterable[tuple[int, int, Band]], now_ns: int) -> Shared:
        """Alpaca `lulds` messages for LULD band changes, each (ts, sym, (up, down, indicator))
        as `v1.status.Change` has them; a cleared band (indicator 0) makes none."""
        out = Shared(now_ns, self._codecs)
        for ts, sym, (up, down, indicator) in changes:
            if indicator:
                out.add(sym, "lulds", (sym, up, down, indicator, ts))
        return out

    def current_band(self, sym: int, band: tuple[Band, int], codec: str) -> bytes:
        """The `lulds` message of a symbol's bands as they stand (`v1.status.StatusLog.bands`)
        in `codec` ("json" or "msgpack")."""
        (up, down, indicator), ts = band
        entry = Entry(0, "lulds", (sym, up, down, indicator, ts))
        return self._codecs[codec](Shared(ts, self._codecs), entry)

    def _bars(self, out: Shared, bars: list[Bar]) -> None:
        for b in bars:
            out.add(b.sym, "bars", b)

    def current(self, record: Any, channel: str) -> bytes | None:
        """Alpaca sends nothing at subscribe: data starts with the next event."""
        return None
