"""The small modal screens: add symbols (with suggestions), set the throttle, and help.

Each returns its answer with `dismiss()`; the app decides what to send to the feed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.validation import Integer
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from tickwire.feed import ProtocolError
from tickwire.feed.client.stream import resolve_symbols

from .state import SymbolRef

_MODAL_CSS = """
{name} {{ align: center middle; background: $background 60%; }}
{name} > Vertical {{
    width: 72; height: auto; max-height: 80%;
    border: thick $primary 80%; background: $surface; padding: 1 2;
}}
{name} Label.title {{ text-style: bold; margin-bottom: 1; }}
{name} Label.hint {{ color: $text-muted; margin-top: 1; }}
{name} Label.error {{ color: $text-error; margin-top: 1; }}
"""


def matches(
    refs: Sequence[SymbolRef], query: str, exclude: set[str], limit: int = 12
) -> list[SymbolRef]:
    """Symbols starting with `query` first, then names containing it; `exclude` left out."""
    q = query.strip().split(",")[-1].strip().lower()
    pool = [r for r in refs if r.symbol not in exclude]
    if not q:
        return pool[:limit]
    first = [r for r in pool if r.symbol.lower().startswith(q)]
    rest = [r for r in pool if r not in first and (q in r.name.lower() or q in r.symbol.lower())]
    return (first + rest)[:limit]


def parse_symbols(text: str) -> list[str]:
    return [s for s in re.split(r"[\s,;]+", text.strip().upper()) if s]


class AddSymbolScreen(ModalScreen[list[str] | None]):
    DEFAULT_CSS = (
        _MODAL_CSS.format(name="AddSymbolScreen")
        + """
    AddSymbolScreen OptionList { height: auto; max-height: 14; margin-top: 1; }
    """
    )
    BINDINGS: ClassVar[Any] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, refs: Sequence[SymbolRef], watched: set[str]) -> None:
        super().__init__()
        self.refs = list(refs)
        self.watched = watched
        self._known = {r.symbol.casefold(): r.symbol for r in self.refs}

    def compose(self) -> ComposeResult:
        words = [r.symbol for r in self.refs if r.symbol not in self.watched]
        with Vertical():
            yield Label("Add symbols to the watchlist", classes="title")
            yield Input(
                placeholder="symbol or name: AAPL, apple; several: AAPL,MSFT",
                suggester=SuggestFromList(words, case_sensitive=False),
                id="symbol-input",
            )
            yield OptionList(id="suggestions")
            yield Label(id="add-error", classes="error", markup=False)
            yield Label("Enter adds · ↓ picks a suggestion · Esc cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#add-error").display = False
        self._fill("")

    def _fill(self, query: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        found = matches(self.refs, query, self.watched)
        options.add_options(
            Option(
                Content.from_markup(
                    "[b]$sym[/b]  $name  [$text-muted]$sector[/]",
                    sym=r.symbol.ljust(6),
                    name=r.name,
                    sector=r.sector,
                ),
                id=r.symbol,
            )
            for r in found
        )
        options.display = bool(found)

    @on(Input.Changed, "#symbol-input")
    def _changed(self, event: Input.Changed) -> None:
        self.query_one("#add-error").display = False
        self._fill(event.value)

    @on(Input.Submitted, "#symbol-input")
    def _submitted(self, event: Input.Submitted) -> None:
        symbols = parse_symbols(event.value)
        try:
            resolved = resolve_symbols(symbols, [r.symbol for r in self.refs])
        except ProtocolError as exc:
            problem: str | None = exc.message
        else:
            if resolved:
                self.dismiss(resolved)
                return
            problem = None
        options = self.query_one(OptionList)
        if options.option_count == 1 or (options.highlighted is not None and options.has_focus):
            index = options.highlighted or 0
            picked = options.get_option_at_index(index).id
            if picked:
                earlier = [s for s in symbols[:-1] if s.casefold() in self._known]
                self.dismiss([self._known[s.casefold()] for s in earlier] + [picked])
                return
        if problem:  # say it here, with the closest symbols; the dialog stays open
            error = self.query_one("#add-error", Label)
            error.update(problem)
            error.display = True
            return
        self.dismiss(None)

    @on(OptionList.OptionSelected, "#suggestions")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        earlier = parse_symbols(self.query_one(Input).value)[:-1]
        self.dismiss([*earlier, event.option.id] if event.option.id else None)

    def key_down(self) -> None:
        options = self.query_one(OptionList)
        if self.query_one(Input).has_focus and options.option_count:
            options.focus()
            options.highlighted = 0


class ThrottleScreen(ModalScreen[int | None]):
    DEFAULT_CSS = _MODAL_CSS.format(name="ThrottleScreen")
    BINDINGS: ClassVar[Any] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, current_ms: int) -> None:
        super().__init__()
        self.current_ms = current_ms

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                "Server throttle: at most one update per symbol per interval", classes="title"
            )
            yield Input(
                str(self.current_ms),
                placeholder="interval in ms, 0 to 60000 (0: the screen's pace)",
                type="integer",
                validators=[Integer(minimum=0, maximum=60000)],
                id="throttle-input",
            )
            yield Label(
                "0: the latest state at the screen's pace; 250: at most 4 per second per symbol",
                classes="hint",
            )

    @on(Input.Submitted, "#throttle-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.validation_result is not None and not event.validation_result.is_valid:
            self.notify("interval_ms must be an integer from 0 to 60000", severity="error")
            return
        self.dismiss(int(event.value))


WATCHLIST_HELP = """\
[b]Watchlist[/b]
  [b]↑ ↓  j k[/b]      move
  [b]PgUp PgDn g G[/b] page, top, bottom
  [b]Enter[/b]         detail screen of the symbol (Esc: back)
  [b]a[/b]             add symbols (case-insensitive; names work too: apple)
  [b]d[/b]             remove the selected symbol
  [b]s  S[/b]          sort by the next column / reverse (or click a header)
  [b]/[/b]             filter by symbol or name (Esc clears)
  [b]p[/b]             pause rendering (data keeps coming: PAUSED +N updates)
  [b]t[/b]             server throttle (ms per symbol; 0 = the screen's pace)
  [b]i[/b]             Imb column on/off (on by itself when the server has books)
  [b]ctrl+p[/b]        command palette: add, remove, sort, theme, refresh rate…
  [b]?[/b]             this help
  [b]q  ctrl+c[/b]     quit

[b]Columns[/b]
Chg and Chg% are against the symbol's reference price; Sprd is ask - bid; Imb the bid's share \
of the size at the best bid and ask (over 50%: more bid); Size the last trade; \
Upd/s the updates received per second; Age how old the latest update is; Trend the mid price \
over the last seconds (one sample per second). Last flashes on up/down ticks.

[b]Status bar[/b]
LIVE, BEHIND with the delay (the data arrives more than 0.25 s late), STALE (no message for \
3 heartbeats), RECONNECTING with a countdown; gaps (reconnects or missed messages) and lost \
updates; age of the newest tick; rtt from ping/pong; msg/s and ticks/s received; render fps \
achieved / requested; conflated updates. On a narrow terminal the least important go first.
"""

DETAIL_HELP = """\
[b]Detail screen[/b]
  [b]Esc q ⌫[/b]       back to the watchlist
  [b]p[/b]             pause rendering (data keeps coming)
  [b]?[/b]             this help

[b]Chart[/b]
One column per update received, newest on the right: ▔ the ask, ▁ the bid, │ the spread \
between them, ● the last trade; the bars below are the volume traded since the column before. \
The dashboard receives each symbol's latest state at most 4 times a frame, so a column may \
fold several updates in (Seq jumps counts them); the volume stays whole. The price axis is \
labelled at the symbol's tick size.

[b]Order book[/b] (when the server has books)
The depth ladder beside the chart: bids left, asks right, best first, a bar per level's size. \
Spread is the best ask - best bid; imbalance is the bid share of the size on the top 5 levels \
of both sides (over 50%: more on the bid). Only this symbol's book is fetched, while it is open.

[b]State[/b]
Beside the title while the feed is not LIVE: BEHIND with the delay (the data arrives late, or \
this screen has not yet drawn what arrived), STALE, RECONNECTING.

[b]Quote[/b]
Change is against the reference price; Seq jumps count updates the server conflated \
(throttle or a slow reader), which is not data loss: every row is the latest state.
"""


class HelpScreen(ModalScreen[None]):
    """The keys and what the screen shows; scrolls on a small terminal, Esc always visible."""

    DEFAULT_CSS = (
        _MODAL_CSS.format(name="HelpScreen")
        + """
    HelpScreen > Vertical { width: 96; max-width: 100%; max-height: 100%; padding: 0 1; }
    HelpScreen VerticalScroll { height: auto; max-height: 1fr; }
    HelpScreen Label.title { margin: 0; }
    HelpScreen Label.hint { margin: 0; }
    """
    )
    BINDINGS: ClassVar[Any] = [Binding("escape,q,question_mark", "dismiss(None)", "Close")]

    def __init__(self, text: str = WATCHLIST_HELP, title: str = "keys") -> None:
        super().__init__()
        self.text = text
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"tickwire dashboard: {self.title_text}", classes="title")
            with VerticalScroll():
                yield Static(Content.from_markup(self.text))
            yield Label("Esc closes · ↑ ↓ PgUp PgDn scroll", classes="hint")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()
