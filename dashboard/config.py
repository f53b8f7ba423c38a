"""The dashboard's settings file: watchlist, sort, theme and refresh rate, kept between runs.

JSON under the user's config dir (platformdirs: ~/.config/tickwire/dashboard.json on Linux),
written atomically. A missing file gives the defaults; an unreadable one gives the defaults and a
warning, never a crash. Imports platformdirs only.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

DEFAULT_WATCHLIST = (
    "SPY", "QQQ", "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AMD",
    "NFLX", "JPM", "BAC", "GS", "V", "XOM", "CVX", "LLY", "UNH", "WMT", "KO", "BA",
)  # fmt: skip
DEFAULT_FPS = 20.0
MAX_FPS = 120.0


@dataclass
class DashboardConfig:
    watchlist: list[str] = field(default_factory=lambda: list(DEFAULT_WATCHLIST))
    sort: str = "symbol"
    reverse: bool = False
    theme: str = "textual-dark"
    fps: float = DEFAULT_FPS
    # Not a setting: the watchlist to save instead of `watchlist`, set for a one-off watchlist
    # (`--watchlist` without `--save`) so that saving the other settings keeps the saved one.
    saved_watchlist: list[str] | None = field(default=None, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DashboardConfig:
        cfg = cls()
        known = {f.name for f in fields(cls)} - {"saved_watchlist"}
        for key, value in data.items():
            if key in known:
                setattr(cfg, key, value)
        cfg.watchlist = [str(s).upper() for s in cfg.watchlist if str(s).strip()]
        cfg.reverse = bool(cfg.reverse)
        cfg.fps = float(cfg.fps) if 1 <= float(cfg.fps) <= MAX_FPS else DEFAULT_FPS
        return cfg


def default_path() -> Path:
    return platformdirs.user_config_path("tickwire") / "dashboard.json"


def load(path: Path | None) -> tuple[DashboardConfig, str | None]:
    """The saved settings (or the defaults) and a warning if the file was unusable."""
    if path is None or not path.exists():
        return DashboardConfig(), None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return DashboardConfig.from_dict(data), None
    except (OSError, ValueError, TypeError) as exc:
        return DashboardConfig(), f"ignored {path} ({exc}); using the defaults"


def save(config: DashboardConfig, path: Path | None) -> str | None:
    """Write the settings; returns a warning instead of raising when the disk says no."""
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        data = asdict(config)
        kept = data.pop("saved_watchlist")
        if kept is not None:
            data["watchlist"] = kept
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        return f"cannot save settings to {path}: {exc.strerror or exc}"
    return None
