"""`FeedIngest`: the feed bridge's `Sink`, the callbacks that write plain state.

Called on the asyncio thread inside trio's ticks (see `bridge`), these methods only update
`MarketState`, the status counters, the watchlist and notifications; they never repaint: the render
timer in `view` does that. Never imports `app` (the key bindings and actions build on this).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tickwire.feed import Batch, BookUpdate, Gap, ProtocolError, Status, TradingStatus

from .bridge import BookOff, BookOn, Command, Sink, Subscribe, Throttle, Unsubscribe
from .state import MarketState
from .view import DashboardView


class FeedIngest(DashboardView):
    """The `feed_*` callbacks: what the feed says becomes state, nothing is drawn here."""

    def feed_sink(self) -> Sink:
        return self

    def feed_connecting(
        self, url: str, error: str | None, retry_in_s: float | None, attempt: int, of: int
    ) -> None:
        self.info.state = "connecting"
        self.info.error = error
        self.retry_at = None if retry_in_s is None else self.clock.monotonic() + retry_in_s
        if error:
            tries = f"try {attempt + 1} of {of}" if of else f"try {attempt + 1}"
            self.show_banner(f"{error} ({tries})", "error")

    def feed_connected(self, feed: Any, refs: list[dict[str, Any]]) -> list[str]:
        self.feed = feed
        self.show_banner(self.first_run_hint(), "hint")
        self.info.url = feed.url or self.url
        self.info.server = str(feed.welcome.get("server", ""))
        self.info.encoding = feed.encoding
        self.book_depth = int(feed.welcome.get("book_depth") or 0)
        if not self.imbalance_chosen:  # with order books the best level's sizes are the book's
            self.show_imbalance(self.book_depth > 0)
        self.info.state, self.info.error, self.retry_at = "live", None, None
        self.lag.reset()
        if self.state is None or [r["symbol"] for r in refs] != [r.symbol for r in self.state.refs]:
            self.state = MarketState(refs, self.clock.monotonic())
            self.table.state = self.state
        self.state.halted.clear()  # a new connection says again which symbols are halted
        unknown = [s for s in self.watchlist if s not in self.state]
        if unknown:
            self.notify(
                f"not on this server, dropped from the watchlist: {', '.join(unknown)}",
                severity="warning",
            )
            self.watchlist = [s for s in self.watchlist if s in self.state]
        self.send_pace()
        return list(self.watchlist)

    def feed_batch(self, batch: Batch) -> None:
        if self.state is not None:
            ticks = batch.ticks
            self.state.apply(ticks, self.clock.monotonic())
            self.info.conflated += batch.conflated
            if batch.kind == "ticks" and len(ticks):
                self.lag.observe(int(ticks["ts"].max()), self.clock.wall_ns())

    def feed_book(self, update: BookUpdate) -> None:
        if self.book_symbol in update.symbols:
            self.book_dirty = True

    def feed_trading(self, status: TradingStatus) -> None:
        if self.state is not None:
            halted = status.status == "halted"
            self.state.set_trading(status.symbol, halted, status.reason, status.ts)

    def watched(self) -> list[str]:
        return list(self.watchlist)

    def wants_book(self, symbol: str) -> bool:
        return self.book_symbol == symbol

    def feed_gap(self, gap: Gap) -> None:
        self.info.gaps += 1
        self.info.lost += gap.lost or 0
        if gap.reason != "seq":  # a new connection or source: its clock and first batches anew
            self.lag.reset()
        if gap.reason == "restarted":
            when = datetime.fromtimestamp(self.clock.wall_ns() / 1e9, UTC).strftime("%H:%M:%S")
            self.notify(
                f"the server restarted: history before {when} UTC is gone; "
                "prices, volumes and sparklines start again",
                title="feed restarted",
                severity="warning",
                timeout=30,
            )
        elif gap.reason == "reconnected":
            missed = f"; {gap.lost:,} updates missed" if gap.lost else ""
            self.notify(f"reconnected after {gap.downtime_s:.1f}s{missed}", title="feed")

    def feed_status(self, status: Status) -> None:
        self.info.state = status.state
        self.info.error = status.error
        if status.state == "live":
            self.show_banner(self.first_run_hint(), "hint")
        elif status.error:
            self.show_banner(f"{status.error}; reconnecting (try {status.attempt})", "error")
        self.retry_at = (
            None if status.retry_in_s is None else self.clock.monotonic() + status.retry_in_s
        )
        self.show_status(force=True)

    def feed_rtt(self, rtt_s: float) -> None:
        self.info.rtt_s = rtt_s

    def feed_reply(self, command: Command, result: Any, error: str | None) -> None:
        if isinstance(command, BookOn | BookOff):
            if error is not None:
                self.notify(f"order book of {command.symbol}: {error}", severity="error")
        elif isinstance(command, Subscribe):
            if error is not None:
                bad = list(result.symbols) if isinstance(result, ProtocolError) else []
                self.notify(f"cannot add {', '.join(command.symbols)}: {error}", severity="error")
                if bad:
                    self.watchlist = [s for s in self.watchlist if s not in bad]
                    rest = tuple(s for s in command.symbols if s not in bad)
                    if rest:
                        self.bridge.send(Subscribe(rest))
                return
            subs = set(result)
            new = [s for s in command.symbols if s not in self.watchlist]
            self.watchlist = [*self.watchlist, *new]
            self.subscribed = subs
            self.reorder(keep=command.symbols[-1] if new else None)
            self.save_settings()
            if new:
                self.dismiss_hint()
        elif isinstance(command, Unsubscribe):
            if error is not None:
                self.notify(
                    f"cannot remove {', '.join(command.symbols)}: {error}", severity="error"
                )
                return
            self.subscribed = set(result)
            self.dismiss_hint()
            self.watchlist = [s for s in self.watchlist if s not in command.symbols]
            if self.state is not None:
                self.state.reset_symbols([self.state.index[s] for s in command.symbols])
            self.reorder()
            self.save_settings()
        elif isinstance(command, Throttle):
            if error is not None:
                self.notify(f"throttle refused: {error}", severity="error")
                return
            if not command.announce:
                return
            self.throttle_ms = command.interval_ms
            self.info.throttle_ms = command.interval_ms
            self.update_topbar()
            self.notify(
                f"throttle {command.interval_ms} ms per symbol"
                if command.interval_ms
                else "throttle off: the latest state at the screen's pace"
            )

    def feed_fatal(self, message: str) -> None:
        self.fatal_error = message
        self.info.state, self.info.error = "closed", message
        self.exit(2, return_code=2)  # run_app prints the message once, as `tail` does
