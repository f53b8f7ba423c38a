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
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.validation import Integer
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from .state import SymbolRef

_MODAL_CSS = """
{name} {{ align: center middle; background: $background 60%; }}
{name} > Vertical {{
    width: 72; height: auto; max-height: 80%;
    border: thick $primary 80%; background: $surface; padding: 1 2;
}}
{name} Label.title {{ text-style: bold; margin-bottom: 1; }}
{name} Label.hint {{ color: $text-muted; margin-top: 1; }}
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
            yield Label("Enter adds · ↓ picks a suggestion · Esc cancels", classes="hint")

    def on_mount(self) -> None:
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
        self._fill(event.value)

    @on(Input.Submitted, "#symbol-input")
    def _submitted(self, event: Input.Submitted) -> None:
        symbols = parse_symbols(event.value)
        known = {r.symbol for r in self.refs}
        if symbols and all(s in known for s in symbols):
            self.dismiss(symbols)
            return
        options = self.query_one(OptionList)
        if options.option_count == 1 or (options.highlighted is not None and options.has_focus):
            index = options.highlighted or 0
            picked = options.get_option_at_index(index).id
            self.dismiss([*symbols[:-1], picked] if picked else symbols)
            return
        self.dismiss(symbols or None)  # the server decides; its error becomes a notification

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
                placeholder="interval in ms, 0 to 60000 (0: every update)",
                type="integer",
                validators=[Integer(minimum=0, maximum=60000)],
                id="throttle-input",
            )
            yield Label(
                "0 streams every update; 250 means at most 4 per second per symbol (latest state)",
                classes="hint",
            )

    @on(Input.Submitted, "#throttle-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.validation_result is not None and not event.validation_result.is_valid:
            self.notify("interval_ms must be an integer from 0 to 60000", severity="error")
            return
        self.dismiss(int(event.value))


HELP = """\
[b]Watchlist[/b]
  [b]↑ ↓  j k[/b]      move          [b]PgUp PgDn g G[/b]  page, top, bottom
  [b]Enter[/b]         detail screen of the symbol (Esc: back)
  [b]a[/b]             add symbols (suggestions from the server's universe)
  [b]d[/b]             remove the selected symbol
  [b]s  S[/b]          sort by the next column / reverse (or click a header)
  [b]/[/b]             filter by symbol or name (Esc clears)
  [b]p[/b]             pause rendering (data keeps coming: PAUSED +N updates)
  [b]t[/b]             server throttle (ms per symbol; 0 = every update)
  [b]ctrl+p[/b]        command palette: add, remove, sort, theme, refresh rate…
  [b]?[/b]             this help      [b]q[/b]  quit

[b]Columns[/b]
  Chg and Chg% are against the symbol's reference price; Sprd is ask - bid; Size the last
  trade; Upd/s the updates received per second; Age how old the latest update is; Trend the
  mid price over the last seconds (one sample per second). Last flashes on up/down ticks.

[b]Status bar[/b]
  LIVE / STALE (no message for 3 heartbeats) / RECONNECTING with a countdown; rtt from
  ping/pong; msg/s and ticks/s received; gaps (reconnects or missed messages), lost and
  conflated updates; render fps achieved / requested.
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = (
        _MODAL_CSS.format(name="HelpScreen")
        + """
    HelpScreen > Vertical { width: 96; }
    """
    )
    BINDINGS: ClassVar[Any] = [Binding("escape,q,question_mark", "dismiss(None)", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("tickwire dashboard: keys", classes="title")
            yield Static(Content.from_markup(HELP))
            yield Label("Esc closes", classes="hint")
