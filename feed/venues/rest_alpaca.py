"""Alpaca's stock market-data REST API under `/alpaca/v2/stocks/`, sans-IO.

`bars`, `trades` and `quotes`, for one symbol (`/v2/stocks/{symbol}/bars`) or many
(`/v2/stocks/bars?symbols=A,B`), with `start`, `end`, `limit` (1 to 10000, default 1000),
`sort` and `page_token` paging (results by symbol, then time; `next_page_token` until the last
page); `.../latest` for each, and snapshots (`/v2/stocks/{symbol}/snapshot`,
`/v2/stocks/snapshots?symbols=`). Bars are built from the tape's minute bars (`1Min` to
`59Min`, `1Hour` to `23Hour`, `1Day` and `1Week`, in UTC); a quote is every record's bid and
ask; a trade's `i` is its record's `seq`. Errors are Alpaca's `{"code", "message"}`. Unknown
symbols have no data, as at Alpaca.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tickwire.feed.venues._common import Clock
from tickwire.feed.venues._rest_common import (
    MarketView,
    RestError,
    RestRequest,
    RestResponse,
    json_response,
)
from tickwire.feed.venues._rest_tape import NS_PER_MIN, aggregate

PREFIX = "/alpaca/v2/stocks"
NS_PER_S = 1_000_000_000
DAY_NS = 1440 * NS_PER_MIN
MAX_LIMIT, DEFAULT_LIMIT = 10_000, 1000
KINDS = ("bars", "trades", "quotes")
_TIMEFRAME = re.compile(r"^([1-9][0-9]{0,2})(Min|T|Hour|H|Day|D|Week|W)$")
_UNITS = {"Min": 1, "T": 1, "Hour": 60, "H": 60, "Day": 1440, "D": 1440, "Week": 10080, "W": 10080}
_MOST = {1: 59, 60: 23, 1440: 1, 10080: 1}  # the largest amount of each unit Alpaca takes
WEEK_OFFSET_NS = 4 * DAY_NS  # the epoch was a Thursday: weeks start on Monday


def _err(status: int, code: int, message: str) -> RestError:
    return RestError(status, {"code": code, "message": message})


def _invalid(message: str) -> RestError:
    return _err(422, 42210000, message)


class AlpacaRest:
    """The Alpaca stock data handlers of one server."""

    def __init__(self, view: MarketView) -> None:
        self.view = view
        self.index = {s: i for i, s in enumerate(view.universe.symbols)}
        self._clock = Clock()
        self._etf = [k == "etf" for k in view.universe.kinds]

    def handle(self, req: RestRequest, now_ns: int) -> RestResponse:
        parts = req.path[len(PREFIX) :].strip("/").split("/")
        try:
            return json_response(200, self._dispatch(parts, req.params(), now_ns))
        except RestError as exc:
            return exc.response()

    def _dispatch(self, parts: list[str], params: dict[str, str], now_ns: int) -> Any:
        if len(parts) == 1 and parts[0] in KINDS:
            return self._history(parts[0], self._symbols(params), params, now_ns, None)
        if len(parts) == 2 and parts[0] in KINDS and parts[1] == "latest":
            latest = self._latest(parts[0], self._symbols(params))
            return {parts[0]: {name: v for name, v in latest.items() if v is not None}}
        if parts == ["snapshots"]:
            return self._snapshots(self._symbols(params))
        if len(parts) == 2 and parts[1] in KINDS:
            return self._history(parts[1], [parts[0]], params, now_ns, parts[0])
        if len(parts) == 3 and parts[1] in KINDS and parts[2] == "latest":
            kind, one = parts[1], parts[1][:-1]
            return {"symbol": parts[0], one: self._latest(kind, [parts[0]]).get(parts[0])}
        if len(parts) == 2 and parts[1] == "snapshot":
            return {"symbol": parts[0], **self._snapshots([parts[0]]).get(parts[0], {})}
        raise _err(404, 40410000, "endpoint not found")

    def _symbols(self, params: dict[str, str]) -> list[str]:
        names = [s for s in params.get("symbols", "").split(",") if s]
        if not names:
            raise _err(400, 40010001, "missing symbols")
        if len(names) > MAX_LIMIT:
            raise _invalid(f"too many symbols: at most {MAX_LIMIT}")
        return sorted(set(names))

    # ------------------------------------------------------------------ records as Alpaca's

    def _trade(self, sym: int, r: Any) -> dict[str, Any]:
        return {
            "t": self._clock.ns(int(r["ts"])),
            "x": "V",
            "p": float(r["price"]),
            "s": self._size(sym, int(r["size"])),
            "c": ["@"],
            "i": int(r["id"]),
            "z": "B" if self._etf[sym] else "C",
        }

    def _quote(self, sym: int, r: Any) -> dict[str, Any]:
        return {
            "t": self._clock.ns(int(r["ts"])),
            "ax": "V",
            "ap": float(r["ask"]),
            "as": self._size(sym, int(r["ask_size"])),
            "bx": "V",
            "bp": float(r["bid"]),
            "bs": self._size(sym, int(r["bid_size"])),
            "c": ["R"],
            "z": "B" if self._etf[sym] else "C",
        }

    def _bar(self, sym: int, b: Any) -> dict[str, Any]:
        volume = int(b["volume"])
        return {
            "t": self._clock.whole(int(b["start"])),
            "o": float(b["open"]),
            "h": float(b["high"]),
            "l": float(b["low"]),
            "c": float(b["close"]),
            "v": self._size(sym, volume),
            "n": int(b["count"]),
            "vw": float(b["notional"]) / volume if volume else float(b["close"]),
        }

    def _size(self, sym: int, units: int) -> int | float:
        return self.view.sizes.number(sym, units)

    # ------------------------------------------------------------------ history, paged

    def _gather(
        self, kind: str, syms: list[int], params: dict[str, str]
    ) -> tuple[dict[int, NDArray[np.void]], str, Callable[[int, Any], dict[str, Any]]]:
        """Each symbol's records of `kind`, oldest first (one scan of the tape for all of
        them), the name of their time field and their encoder."""
        tape = self.view.tape
        if kind == "trades":
            return tape.trades_of(syms), "ts", self._trade
        if kind == "quotes":
            return tape.quotes_of(syms), "ts", self._quote
        width, offset = _timeframe(params.get("timeframe"))
        bars = {sym: aggregate(b, width, offset) for sym, b in tape.bars_of(syms).items()}
        return bars, "start", self._bar

    def _history(
        self, kind: str, names: list[str], params: dict[str, str], now_ns: int, one: str | None
    ) -> dict[str, Any]:
        if kind == "bars":
            _timeframe(params.get("timeframe"))  # checked even when no symbol has data
        limit = _limit(params)
        start, end = _time(params, "start"), _time(params, "end")
        desc = params.get("sort", "asc") == "desc"
        if params.get("sort", "asc") not in ("asc", "desc"):
            raise _invalid("invalid sort: asc or desc")
        token = _token(params.get("page_token")) if params.get("page_token") else None
        if token is not None:
            names = [n for n in names if n >= token[0]]
        known = {n: self.index[n] for n in names if n in self.index}
        found, time_field, encode = (
            self._gather(kind, list(known.values()), params) if known else ({}, "", self._trade)
        )
        out: dict[str, list[Any]] = {}
        left, next_token = limit, None
        for name, sym in known.items():
            records = found[sym]
            times = records[time_field]
            keep = np.ones(len(records), bool)
            if start is not None:
                keep &= times >= start
            if end is not None:
                keep &= times <= end
            records, times = records[keep], times[keep]
            if desc:
                records, times = records[::-1], times[::-1]
            first = 0
            if token is not None and name == token[0]:
                _, at_ns, dup = token
                before = int(np.count_nonzero(times > at_ns if desc else times < at_ns))
                first = before + dup
            if first >= len(records):
                continue
            if left == 0:
                next_token = _make_token(name, times, first)
                break
            page = records[first : first + left]
            out[name] = [encode(sym, r) for r in page]
            left -= len(page)
            if first + len(page) < len(records):
                next_token = _make_token(name, times, first + len(page))
                break
        if one is not None:
            return {kind: out.get(one, []), "symbol": one, "next_page_token": next_token}
        return {kind: out, "next_page_token": next_token}

    # ------------------------------------------------------------------ latest and snapshots

    def _latest(self, kind: str, names: list[str]) -> dict[str, dict[str, Any] | None]:
        """Each known symbol's latest trade, quote (its latest record) or minute bar."""
        known = {n: self.index[n] for n in names if n in self.index}
        if not known:
            return {}
        if kind == "quotes":
            latest = self.view.latest()
            return {n: self._quote(sym, latest[sym]) for n, sym in known.items()}
        tape, syms = self.view.tape, list(known.values())
        found = tape.trades_of(syms) if kind == "trades" else tape.bars_of(syms)
        encode = self._trade if kind == "trades" else self._bar
        return {
            n: encode(sym, found[sym][-1]) if len(found[sym]) else None for n, sym in known.items()
        }

    def _snapshots(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Each known symbol's latest trade, quote and minute bar, its day's bar and the day's
        before (days in UTC): one scan of the tape's bars."""
        known = {n: self.index[n] for n in names if n in self.index}
        if not known:
            return {}
        tape, latest = self.view.tape, self.view.latest()
        bars = tape.bars_of(list(known.values()))
        out = {}
        for name, sym in known.items():
            t, b = tape.last_trade(sym), bars[sym]
            days = aggregate(b, DAY_NS)
            out[name] = {
                "latestTrade": None if t is None else self._trade(sym, t),
                "latestQuote": self._quote(sym, latest[sym]),
                "minuteBar": self._bar(sym, b[-1]) if len(b) else None,
                "dailyBar": self._bar(sym, days[-1]) if len(days) else None,
                "prevDailyBar": self._bar(sym, days[-2]) if len(days) > 1 else None,
            }
        return out


def _timeframe(text: str | None) -> tuple[int, int]:
    """A bar timeframe ("5Min", "1Hour", "1Day") as its width and offset in ns."""
    if not text:
        raise _invalid("invalid timeframe: missing (e.g. 1Min, 15Min, 1Hour, 1Day)")
    m = _TIMEFRAME.match(text)
    if m is None:
        raise _invalid(f"invalid timeframe: {text[:20]!r} (e.g. 1Min, 15Min, 1Hour, 1Day)")
    amount, unit = int(m.group(1)), _UNITS[m.group(2)]
    if amount > _MOST[unit]:
        raise _invalid(f"invalid timeframe: {text!r} (at most 59Min, 23Hour, 1Day, 1Week)")
    return amount * unit * NS_PER_MIN, WEEK_OFFSET_NS if unit == 10080 else 0


def _limit(params: dict[str, str]) -> int:
    text = params.get("limit", "")
    if not text:
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise _invalid(f"invalid limit: must be between 1 and {MAX_LIMIT}")
    return int(text)


def _time(params: dict[str, str], name: str) -> int | None:
    """RFC 3339 (fractions to the nanosecond) or a date, as Alpaca takes them, in ns."""
    text = params.get(name)
    if not text:
        return None
    m = re.match(
        r"^(\d{4}-\d\d-\d\d(?:T\d\d:\d\d(?::\d\d)?)?)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)?$", text
    )
    if m is None:
        raise _invalid(f"invalid {name}: RFC 3339 or YYYY-MM-DD, got {text[:40]!r}")
    try:
        at = datetime.fromisoformat(m.group(1) + (m.group(3) or "").replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(f"invalid {name}: RFC 3339 or YYYY-MM-DD, got {text[:40]!r}") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    frac = int((m.group(2) or "0").ljust(9, "0"))
    return int(at.timestamp()) * NS_PER_S + frac


def _make_token(name: str, times: NDArray[np.int64], at: int) -> str:
    """The page that starts at record `at`: its symbol, its time and how many records of that
    same time come before it (a time, not a position: records that arrive or leave the tape
    between two pages do not shift the next one)."""
    ts = int(times[at])
    dup = int(np.count_nonzero(times[:at] == ts))  # sorted: they are just before `at`
    return base64.urlsafe_b64encode(f"{name}\x00{ts}\x00{dup}".encode()).decode()


def _token(text: str | None) -> tuple[str, int, int]:
    try:
        raw = base64.urlsafe_b64decode((text or "").encode()).decode()
        name, ts, dup = raw.split("\x00")
        return name, int(ts), int(dup)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _invalid("invalid page token") from None
