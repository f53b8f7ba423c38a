"""`StatusBar`: one line saying how the feed is doing, repainted a few times a second.

Connection state (connecting, live, stale, reconnecting with a countdown), server, encoding, RTT,
the newest tick's age, messages and ticks per second in, gaps and conflated updates, render fps,
PAUSED with the updates held back, and the market scenario the server plays (if any). The app
fills a `StatusInfo`; this widget only formats it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from textual.content import Content
from textual.widget import Widget

from tickwire.feed.urls import redact

from . import fmt


@dataclass(slots=True)
class StatusInfo:
    state: str = "connecting"  # connecting | live | behind | stale | reconnecting | closed
    retry_in_s: float | None = None
    error: str | None = None
    url: str = ""
    server: str = ""
    encoding: str = ""
    rtt_s: float = math.nan
    tick_age_ns: int | None = None
    lag_ns: int | None = None  # the feed's delivery lag (see `lag`), shown when BEHIND
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
    scenarios: tuple[str, ...] = ()  # the market scenarios the server plays now


_BADGES = {
    "live": ("● LIVE", "$success"),
    "behind": ("◑ BEHIND", "$warning"),
    "stale": ("◐ STALE", "$warning"),
    "connecting": ("◌ CONNECTING", "$warning"),
    "reconnecting": ("↻ RECONNECTING", "$error"),
    "closed": ("■ CLOSED", "$error"),
}


def state_badge(info: StatusInfo) -> Content:
    """LIVE, BEHIND with the delay, STALE, RECONNECTING with its countdown...: the state part."""
    label, colour = _BADGES.get(info.state, (info.state.upper(), "$warning"))
    badge = label
    if info.state in ("reconnecting", "connecting") and info.retry_in_s is not None:
        badge += f" in {max(0.0, info.retry_in_s):.1f}s"
    elif info.state == "behind" and info.lag_ns is not None:
        badge += f" {fmt.age(info.lag_ns)}"
    return Content.from_markup(f"[bold {colour}]$badge[/]", badge=badge)


def status_parts(info: StatusInfo) -> list[tuple[int, Content]]:
    """The status bar's parts left to right, each with its priority (higher stays longer).

    State comes first and goes last, then PAUSED, gaps and lost updates, the newest tick's age;
    rates, fps and the URL are the first to go on a narrow terminal.
    """
    parts: list[tuple[int, Content]] = [(100, state_badge(info))]
    if info.paused:
        held = Content.from_markup(
            "[bold reverse $warning] PAUSED +$held [/]", held=fmt.compact(info.held)
        )
        parts.append((95, held))
    if info.scenarios:  # a bad day on purpose: say so beside the state, not among the rates
        played = Content.from_markup(
            "[bold reverse $error] SCENARIO $names [/]", names=", ".join(info.scenarios)
        )
        parts.append((92, played))
    if info.error and info.state != "live":
        # In full in the banner above the table; here only while it fits.
        parts.append((70, Content.from_markup("[$text-error]$error[/]", error=info.error)))
    else:
        age = "-" if info.tick_age_ns is None else fmt.age(info.tick_age_ns)
        gaps = Content.from_markup(
            "gaps [b]$g[/b]" + (" lost [b]$lost[/b]" if info.lost else ""),
            g=info.gaps,
            lost=fmt.compact(info.lost),
        )
        parts.append((90, gaps))
        parts.append((85, Content.from_markup("age [b]$age[/b]", age=age)))
        rtt = "-" if math.isnan(info.rtt_s) else f"{info.rtt_s * 1000:.1f}ms"
        parts.append((60, Content.from_markup("rtt [b]$rtt[/b]", rtt=rtt)))
        parts.append((50, Content.from_markup("[b]$m[/b] msg/s", m=fmt.compact(info.msgs_per_s))))
        parts.append((30, Content.from_markup("[b]$t[/b] tick/s", t=fmt.compact(info.ticks_per_s))))
        parts.append((40, Content.from_markup("confl [b]$c[/b]", c=fmt.compact(info.conflated))))
        if info.throttle_ms:
            parts.append((45, Content.from_markup("throttle [b]$t[/b]ms", t=info.throttle_ms)))
    fps = Content.from_markup(
        "[b]$fps[/b]/$target fps", fps=f"{info.fps:.0f}", target=f"{info.fps_target:.0f}"
    )
    parts.append((55, fps))
    if info.encoding:
        parts.append((20, Content(info.encoding)))
    if info.url:
        where = redact(info.url)  # a password in the URL stays off the screen
        parts.append((10, Content.from_markup("[$text-muted]$where[/]", where=where)))
    return parts


_SEP = Content(" │ ")


def status_markup(info: StatusInfo, width: int = 1_000) -> Content:
    """The parts that fit in `width` cells, least important dropped first, none cut."""
    parts = status_parts(info)
    total = sum(c.cell_length for _, c in parts) + _SEP.cell_length * (len(parts) - 1)
    for priority in sorted({p for p, _ in parts}):
        if total <= width or len(parts) == 1:
            break
        for p, c in [pc for pc in parts if pc[0] == priority]:
            if len(parts) == 1:
                break
            parts.remove((p, c))
            total -= c.cell_length + _SEP.cell_length
    return _SEP.join(c for _, c in parts)


class StatusBar(Widget):
    """A fixed one-line widget: updating it repaints one line and never asks for a layout."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    _content: Content = Content("")
    _info: StatusInfo | None = None

    def show(self, info: StatusInfo) -> None:
        self._info = info
        content = status_markup(info, self.size.width or 1_000)
        if content.plain != self._content.plain or content != self._content:
            self._content = content
            self.refresh()

    def on_resize(self) -> None:
        if self._info is not None:
            self.show(self._info)

    def render(self) -> Content:
        return self._content
