"""The import-linter contracts in pyproject.toml stay complete as files come and go.

`lint-imports` (run by .ci/run) checks the contracts; what it cannot see is a new CLI module left
out of the protected list (a wildcard cannot stand for part of a name) or a listed module that no
longer exists, so this test compares the lists with the files.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {
    "tickwire.feed": "feed",
    "tickwire.simulators": "simulators",
    "tickwire.dashboard": "dashboard",
}


def contracts() -> dict[str, dict[str, list[str]]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["name"]: c for c in config["tool"]["importlinter"]["contracts"]}


def path_of(module: str) -> Path:
    for dotted, folder in FOLDERS.items():
        if module == dotted or module.startswith(dotted + "."):
            parts = module[len(dotted) + 1 :].split(".") if module != dotted else []
            base = ROOT / folder / Path(*parts) if parts else ROOT / folder
            return base if base.is_dir() else base.with_suffix(".py")
    raise AssertionError(f"{module} is in none of {sorted(FOLDERS)}")


def test_every_cli_module_is_protected_and_allowed() -> None:
    cli = contracts()["Nothing imports a CLI module but the CLI modules themselves"]
    on_disk = {"tickwire.feed.cli", "tickwire.dashboard.cli", "tickwire.simulators.cli"}
    on_disk |= {f"tickwire.feed.{p.stem}" for p in (ROOT / "feed").glob("_cli_*.py")}
    on_disk |= {f"tickwire.simulators.{p.stem}" for p in (ROOT / "simulators").glob("_cli_*.py")}
    on_disk |= {f"tickwire.dashboard.{p.stem}" for p in (ROOT / "dashboard").glob("_cli_*.py")}
    assert set(cli["protected_modules"]) == on_disk
    assert set(cli["allowed_importers"]) == on_disk


def test_every_module_a_contract_names_exists() -> None:
    for name, contract in contracts().items():
        for key in ("source_modules", "protected_modules", "allowed_importers"):
            for module in contract.get(key, []):
                assert path_of(module).exists(), f"{name}: {key} names {module}, which is gone"
        for module in contract.get("forbidden_modules", []):
            if module.startswith("tickwire."):
                assert path_of(module).exists(), f"{name}: forbids {module}, which is gone"


def test_every_package_folder_is_installed() -> None:
    """`[tool.setuptools] packages` lists packages one by one (the folders map onto the
    `tickwire` namespace): a folder left out works from an editable install and is missing
    from a real one."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = set()
    for dotted, folder in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            on_disk.add(".".join((dotted, *parts)))
    assert on_disk == listed
