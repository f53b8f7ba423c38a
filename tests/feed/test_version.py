"""One version string: pyproject's, read from package metadata, everywhere it is shown."""

from __future__ import annotations

import subprocess
import tomllib
from importlib.metadata import version as installed
from pathlib import Path

import trio
from _support import tickwire_cmd

from tickwire.feed import connect
from tickwire.feed.server.server import Server
from tickwire.feed.version import version

ROOT = Path(__file__).resolve().parents[2]


def test_version_is_pyprojects() -> None:
    written = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert version() == installed("tickwire") == written


def test_dash_dash_version_prints_it() -> None:
    out = subprocess.run(tickwire_cmd("--version"), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == f"tickwire {version()}\n"


async def test_welcome_and_metrics_carry_it(server: Server) -> None:
    with trio.fail_after(20):
        async with connect(server.url) as feed:
            assert feed.welcome["server"] == f"tickwire/{version()}"
    _, body = server.metrics.render()
    assert f'tickwire_build_info{{version="{version()}"}} 1.0' in body.decode()
