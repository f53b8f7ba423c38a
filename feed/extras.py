"""Optional extras (pyproject's `[project.optional-dependencies]`): a command that needs one
checks it before any work (before connecting, before starting workers) and says in one line
which `pip install 'tickwire[EXTRA]'` brings it."""

from __future__ import annotations

import importlib

from tickwire.simulators.errors import UserError


def require(what: str, extra: str, *modules: str, otherwise: str = "") -> None:
    """A UserError `WHAT needs A and B: pip install 'tickwire[EXTRA]'` (then `; OTHERWISE`)
    unless every module imports (imported, not just found: a broken install counts as missing).
    """
    gone = [m for m in modules if not _imports(m)]
    if gone:
        tail = f"; {otherwise}" if otherwise else ""
        raise UserError(f"{what} needs {' and '.join(gone)}: pip install 'tickwire[{extra}]'{tail}")


def _imports(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
