"""The client library's public names, and a protocol core that stays free of trio and textual."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import tickwire.feed

EXPORTS = [
    "DEFAULT_URL",
    "TICK_DTYPE",
    "AuthError",
    "Batch",
    "Book",
    "BookUpdate",
    "ConnectError",
    "ConnectionLost",
    "Event",
    "Feed",
    "Gap",
    "ProtocolError",
    "ScenarioChange",
    "Status",
    "TickFlag",
    "TickwireError",
    "TradingStatus",
    "connect",
]
CORE = ("tickwire.feed.protocol", "tickwire.feed.v1.state", "tickwire.feed.hub.hub")


def test_all_is_pinned():
    assert tickwire.feed.__all__ == EXPORTS
    for name in EXPORTS:
        assert getattr(tickwire.feed, name) is not None


def _loaded_after(setup: str) -> set[str]:
    """Which of trio, trio_websocket and textual a fresh interpreter holds after `setup`."""
    code = (
        f"import json, sys\n{setup}\n"
        "print(json.dumps([m for m in ('trio', 'trio_websocket', 'textual') if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(out.stdout))


@pytest.fixture(scope="module")
def loaded_by_core_import() -> set[str]:
    return _loaded_after("import " + ", ".join(CORE))


@pytest.mark.parametrize(
    "module",
    [
        "trio",
        "trio_websocket",
        "textual",
    ],
)
def test_importing_the_protocol_core_loads_no_io_library(module, loaded_by_core_import):
    assert module not in loaded_by_core_import


def test_the_core_modules_themselves_import_no_io_library():
    # The package __init__ is bypassed: this pins the core modules' own imports.
    setup = (
        "import importlib.util, types\n"
        "spec = importlib.util.find_spec('tickwire.feed')\n"
        "pkg = types.ModuleType('tickwire.feed')\n"
        "pkg.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['tickwire.feed'] = pkg\n"
        "import " + ", ".join(CORE)
    )
    assert _loaded_after(setup) == set()
