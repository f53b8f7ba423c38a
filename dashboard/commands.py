"""The dashboard's entries in the command palette (ctrl+p): add, remove, sort, throttle, fps...

Textual's own entries (theme, screenshot, quit) stay; the theme chosen there is saved too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from .app import DashboardApp

PaletteEntry = tuple[str, str, Callable[[], object]]


class DashboardCommands(Provider):
    def _entries(self) -> list[PaletteEntry]:
        return cast("DashboardApp", self.app).palette_entries()

    async def discover(self) -> Hits:
        for title, help_text, callback in self._entries():
            if not title.startswith(("Add ", "Remove ")):
                yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> AsyncIterator[Hit]:
        matcher = self.matcher(query)
        for title, help_text, callback in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(callback), help=help_text)
