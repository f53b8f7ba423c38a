"""tickwire's version, read once from the installed package's metadata.

The one source for `tickwire --version`, the `Server:` header and welcome's server name, and the
metrics' build info; pyproject.toml's `version` is the only place it is written. Imports nothing
of ours.
"""

from __future__ import annotations

import functools

UNKNOWN = "0+unknown"  # running from a tree that was never installed


@functools.cache
def version() -> str:
    """The installed tickwire's version, or `0+unknown` when it is not installed."""
    # Imported here: importlib.metadata costs every command ~30 ms, and most never ask.
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("tickwire")
    except PackageNotFoundError:
        return UNKNOWN


__all__ = ["UNKNOWN", "version"]
