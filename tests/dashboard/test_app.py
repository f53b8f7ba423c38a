"""Pilot tests of the dashboard against the scripted fake feed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dash_helpers import drive, make_app, until
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from tickwire.dashboard.config import DEFAULT_WATCHLIST
from tickwire.dashboard.detail import DetailScreen
from tickwire.dashboard.fake import FakeFeed
from tickwire.dashboard.screens import AddSymbolScreen, HelpScreen
from tickwire.dashboard.status import status_markup


def shown(app: Any) -> list[str]:
    return [str(app.state.symbols[i]) for i in app.table.rows]


def test_default_watchlist_rows_appear_live() -> None:
    app, fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        assert sorted(shown(app)) == sorted(DEFAULT_WATCHLIST)
        assert shown(app) == sorted(shown(app))  # sorted by symbol by default
        assert app.info.state == "live"
        assert fake.requests[0] == ("subscribe", list(DEFAULT_WATCHLIST))

    drive(app, script)


def test_add_symbol_round_trip_with_suggestions() -> None:
    app, fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AddSymbolScreen))
        await pilot.press(*"oracl")  # a name, not a symbol: the suggestion list finds ORCL
        await pilot.press("enter")
        await until(pilot, lambda: "ORCL" in shown(app), "ORCL row")
        assert ("subscribe", ["ORCL"]) in fake.requests
        assert app.table.cursor_symbol == "ORCL"  # the cursor goes to the new row

    drive(app, script)


def test_rejected_symbol_shows_the_server_error() -> None:
    app, _fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        app.add_symbols(["NOPE"])
        await until(pilot, lambda: app.notes, "a notification")
        note = app.notes[-1]
        assert "NOPE" in note.message and "unknown symbol" in note.message
        assert note.severity == "error"
        assert "NOPE" not in shown(app)

    drive(app, script)


def test_remove_selected_symbol() -> None:
    app, fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        await pilot.press("down", "down")
        victim = app.table.cursor_symbol
        await pilot.press("d")
        await until(pilot, lambda: victim not in shown(app), "row removed")
        assert ("unsubscribe", [victim]) in fake.requests
        assert victim not in app.watchlist

    drive(app, script)


def test_sort_keeps_the_cursor_on_its_symbol() -> None:
    app, _fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        await pilot.press("j", "j", "j", "j", "j")
        chosen = app.table.cursor_symbol
        for _ in range(3):  # symbol -> name -> last -> chg
            await pilot.press("s")
            assert app.table.cursor_symbol == chosen
        assert app.sort_key == "chg"
        changes = [app.state.tick["last"][i] - app.state.ref_price[i] for i in app.table.rows]
        assert changes == sorted(changes)
        await pilot.press("S")
        assert app.sort_reverse and app.table.cursor_symbol == chosen
        changes = [app.state.tick["last"][i] - app.state.ref_price[i] for i in app.table.rows]
        assert changes == sorted(changes, reverse=True)

    drive(app, script)


def test_click_header_sorts_by_that_column() -> None:
    app, _fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        volume_x = next(
            x for col, x, _ in app.table.column_spans(app.table.size.width) if col.key == "volume"
        )
        await pilot.click("#watch", offset=(volume_x + 2, 0))
        assert app.sort_key == "volume"
        await pilot.click("#watch", offset=(volume_x + 2, 0))
        assert app.sort_reverse

    drive(app, script)


def test_filter_by_symbol_or_name() -> None:
    app, _fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        await pilot.press("slash", *"bank")
        await pilot.pause()
        assert shown(app) == ["BAC"]  # Bank of America, by name
        await pilot.press("enter")
        assert shown(app) == ["BAC"] and app.table.has_focus
        await pilot.press("escape")
        assert len(shown(app)) == len(DEFAULT_WATCHLIST)

    drive(app, script)


def test_detail_screen_and_back() -> None:
    app, _fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        await pilot.press("j")
        symbol = app.table.cursor_symbol
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert app.screen.symbol == symbol
        await pilot.press("enter")  # the watchlist's keys do nothing here
        assert len(app.screen_stack) == 2
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)

    drive(app, script)


def test_pause_keeps_ingesting_and_counts_held_updates() -> None:
    app, fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        await pilot.press("p")
        assert app.paused
        before = app.state.total_updates
        fake.step(5)
        await until(pilot, lambda: app.state.total_updates > before, "updates while paused")
        app.show_status(force=True)
        assert app.info.held == app.state.total_updates - before > 0
        assert "PAUSED +" in str(status_markup(app.info))
        await pilot.press("p")
        assert not app.paused

    drive(app, script)


def test_throttle_and_help() -> None:
    app, fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        await pilot.press("t", "backspace", *"250", "enter")
        await until(pilot, lambda: app.throttle_ms == 250, "throttle ack")
        assert fake.throttle_ms == 250
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

    drive(app, script)


def test_command_palette_adds_a_symbol() -> None:
    app, _fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        await pilot.press("ctrl+p")
        palette = app.screen
        assert isinstance(palette, CommandPalette)
        # One edit, not nine keystrokes: each key press waits for the app to go idle (up to
        # 1 s each on a loaded machine), which once pushed this test past its time limit.
        palette.query_one(Input).value = "add adobe"
        hits = palette.query_one(OptionList)

        def listed() -> bool:  # the palette searches in a worker: wait for its hit
            return hits.option_count == 1 and "ADBE" in str(hits.get_option_at_index(0).prompt)

        await until(pilot, listed, "the palette's hit")
        await pilot.press("enter")
        await until(pilot, lambda: "ADBE" in shown(app), "ADBE row")

    drive(app, script)


def test_reconnecting_countdown_then_recovery() -> None:
    app, fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        fake.drop(retry_in_s=3.0, error="closed by server: 1001")
        await until(pilot, lambda: app.info.state == "reconnecting", "reconnecting")
        text = str(status_markup(app.info))
        assert "RECONNECTING in" in text and "1001" in text
        fake.restore(lost=12)
        await until(pilot, lambda: app.info.gaps == 1, "gap")
        app.show_status(force=True)
        assert app.info.state == "live" and app.info.lost == 12
        assert sorted(shown(app)) == sorted(DEFAULT_WATCHLIST)

    drive(app, script)


def test_quit_closes_the_feed_cleanly() -> None:
    app, fake = make_app()

    async def script(pilot: Pilot[Any]) -> None:
        await pilot.press("q")

    drive(app, script)
    assert app.return_code == 0
    assert fake.state == "closed"
    assert app.bridge.finished


def test_settings_persist_between_runs(tmp_path: Path) -> None:
    path = tmp_path / "dashboard.json"
    app, _fake = make_app(config_path=path)

    async def script(pilot: Pilot[Any]) -> None:
        app.add_symbols(["ORCL"])
        await until(pilot, lambda: "ORCL" in shown(app))
        await pilot.press("s", "S")
        app.theme = "nord"
        await pilot.press("q")

    drive(app, script)
    saved = json.loads(path.read_text())
    assert saved["watchlist"][-1] == "ORCL"
    assert (saved["sort"], saved["reverse"], saved["theme"]) == ("name", True, "nord")

    from tickwire.dashboard import config as cfg

    settings, warning = cfg.load(path)
    app2, _fake2 = make_app(FakeFeed(seed=1, rate_hz=0), settings=settings, config_path=path)

    async def script2(pilot: Pilot[Any]) -> None:
        assert "ORCL" in shown(app2) and app2.sort_key == "name" and app2.sort_reverse
        assert app2.theme == "nord"

    drive(app2, script2)
    assert warning is None


def test_watchlist_override_drops_unknown_symbols() -> None:
    app, _fake = make_app(watchlist=["AAPL", "ZZZZ", "MSFT"])

    async def script(pilot: Pilot[Any]) -> None:
        assert shown(app) == ["AAPL", "MSFT"]
        assert any("ZZZZ" in n.message for n in app.notes)

    drive(app, script)
