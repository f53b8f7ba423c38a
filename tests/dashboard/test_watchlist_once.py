"""`--watchlist A,B` is for one run: the saved watchlist stays unless `--save`.

It used to replace the saved watchlist for good: the app saves its settings (theme, sort, fps...)
as they change, and the watchlist of the moment went with them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from dash_helpers import drive, make_app
from textual.pilot import Pilot

from tickwire.dashboard import cli
from tickwire.dashboard import config as cfg
from tickwire.feed.cli.main import build_parser


def _args(*argv: str) -> argparse.Namespace:
    return build_parser("dashboard").parse_args(["dashboard", *argv])


def _run(path: Path, args: argparse.Namespace) -> None:
    """The app as `tickwire dashboard ARGS` builds it, on a fake feed; change the theme, quit."""
    loaded_path, settings, warning = cli.load_settings(args)
    assert loaded_path == path and warning is None
    app, _fake = make_app(settings=settings, config_path=path, watchlist=args.watchlist)

    async def script(pilot: Pilot[Any]) -> None:
        assert app.watchlist == ["AAPL", "MSFT"]
        app.theme = "nord"  # any saved setting: the settings file is written now
        await pilot.press("q")

    drive(app, script)


@pytest.mark.parametrize("spelling", ["AAPL,MSFT", "AAPL MSFT", "aapl, msft"])
def test_a_watchlist_flag_is_for_this_run_only(tmp_path: Path, spelling: str) -> None:
    path = tmp_path / "dashboard.json"
    cfg.save(cfg.DashboardConfig(watchlist=["SPY", "QQQ", "NVDA"]), path)
    _run(path, _args("--config", str(path), "--watchlist", spelling))
    saved = json.loads(path.read_text())
    assert saved["watchlist"] == ["SPY", "QQQ", "NVDA"] and saved["theme"] == "nord"
    assert "saved_watchlist" not in saved


def test_save_keeps_the_watchlist_flag(tmp_path: Path) -> None:
    path = tmp_path / "dashboard.json"
    cfg.save(cfg.DashboardConfig(watchlist=["SPY", "QQQ", "NVDA"]), path)
    _run(path, _args("--config", str(path), "--watchlist", "AAPL,MSFT", "--save"))
    assert json.loads(path.read_text())["watchlist"] == ["AAPL", "MSFT"]
