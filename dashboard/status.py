"""`StatusBar`: one line saying how the feed is doing, repainted a few times a second.

Connection state (connecting, live, stale, reconnecting with a countdown), server, encoding, RTT,
the newest tick's age, messages and ticks per second in, gaps and conflated updates, render fps,
and PAUSED with the updates held back. The app fills a `StatusInfo`; this widget only formats it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from textual.content import Content
from textual.widget import Widget

from . import fmt


@dataclass(slots=True)
class StatusInfo:
    state: str = "connecting"  # connecting | live | stale | reconnecting | closed
    retry_in_s: float | None = None
    error: str | None = None
    url: str = ""
    server: str = ""
    encoding: str = ""
    rtt_s: float = math.nan
    tick_age_ns: int | None = None
    msgs_per_s: float = 0.0
    ticks_per_s: float = 0.0
    gaps: int = 0
    lost: int = 0
    conflated: int = 0
    fps: float = 0.0
    fps_target: float = 0.0
    paused: bool = False
    held: int = 0
    throttle_ms: int = 0


_BADGES = {
    "live": ("● LIVE", "$success"),
    "stale": ("◐ STALE", "$warning"),
    "connecting": ("◌ CONNECTING", "$warning"),
    "reconnecting": ("↻ RECONNECTING", "$error"),
    "closed": ("■ CLOSED", "$error"),
}


def status_markup(info: StatusInfo) -> Content:
    label, colour = _BADGES.get(info.state, (info.state.upper(), "$warning"))
    parts: list[Content] = []
    badge = label
    if info.state in ("reconnecting", "connecting") and info.retry_in_s is not None:
        badge += f" in {max(0.0, info.retry_in_s):.1f}s"
    parts.append(Content.from_markup(f"[bold {colour}]$badge[/]", badge=badge))
    if info.paused:
        parts.append(
            Content.from_markup("[bold reverse $warning] PAUSED +$held updates [/]", held=info.held)
        )
    parts.append(Content.from_markup("[$text-muted]$where[/]", where=info.url))
    if info.encoding:
        parts.append(Content(info.encoding))
    if info.error and info.state != "live":
        parts.append(Content.from_markup("[$text-error]$error[/]", error=info.error[:80]))
    else:
        rtt = "-" if math.isnan(info.rtt_s) else f"{info.rtt_s * 1000:.1f}ms"
        age = "-" if info.tick_age_ns is None else fmt.age(info.tick_age_ns)
        parts.append(Content.from_markup("rtt [b]$rtt[/b]", rtt=rtt))
        parts.append(Content.from_markup("age [b]$age[/b]", age=age))
        parts.append(
            Content.from_markup(
                "[b]$m[/b] msg/s [b]$t[/b] tick/s",
                m=fmt.compact(info.msgs_per_s),
                t=fmt.compact(info.ticks_per_s),
            )
        )
        gaps = Content.from_markup(
            "gaps [b]$g[/b]" + (" lost [b]$lost[/b]" if info.lost else "") + " confl [b]$c[/b]",
            g=info.gaps,
            lost=fmt.compact(info.lost),
            c=fmt.compact(info.conflated),
        )
        parts.append(gaps)
        if info.throttle_ms:
            parts.append(Content.from_markup("throttle [b]$t[/b]ms", t=info.throttle_ms))
    parts.append(
        Content.from_markup(
            "[b]$fps[/b]/$target fps",
            fps=f"{info.fps:.0f}",
            target=f"{info.fps_target:.0f}",
        )
    )
    return Content(" │ ").join(parts)


class StatusBar(Widget):
    """A fixed one-line widget: updating it repaints one line and never asks for a layout."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    _content: Content = Content("")

    def show(self, info: StatusInfo) -> None:
        content = status_markup(info)
        if content.plain != self._content.plain or content != self._content:
            self._content = content
            self.refresh()

    def render(self) -> Content:
        return self._content
