"""tickwire's terminal dashboard: a Textual app fed live by the client library.

`DashboardApp` is the app; `tickwire dashboard` and `tickwire demo` (see `cli`) run it. Trio runs
as a guest on Textual's asyncio loop (`bridge`), so the dashboard uses `tickwire.feed` unchanged.
Imports `tickwire.feed` and `tickwire.simulators`; nothing imports this package but the CLI.
"""

from __future__ import annotations

__all__ = ["DashboardApp"]


def __getattr__(name: str) -> object:
    if name == "DashboardApp":  # lazily: `tickwire --help` should not pay for importing Textual
        from .app import DashboardApp

        return DashboardApp
    raise AttributeError(name)
