"""No module of ours touches another package's private attributes or private modules.

A private name (`x._name`) of trio, trio-websocket, wsproto, textual or numpy may change in any
release; reaching into one once killed the server, and a test that reads one passes or fails on
the library's internals rather than on ours. The rule, from the AST of every module in feed/,
dashboard/, simulators/ and tests/: an attribute access `obj._name` (dunders aside) is allowed only
if `_name` is a private name our own package defines (a function, class, module global, class
attribute, `self._x` assignment or `__slots__` entry), and no import names a third-party private
module (`from trio_websocket._impl import ...`, `import x._y`; our own private modules, such as
the tests' `_support`, are fine). A name is not proof of whose object it is: `_events` or
`_done` may be ours and also a private attribute of a library we import, so such a shared name is
allowed only on `self`/`cls` or in the module that defines it; elsewhere (a test reading
`app._notifications`, or `feed._stream` from another module) it is a violation. Type hints are
exempt: they are never evaluated, and some types have only a private name. The failure lists
every place.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("feed", "dashboard", "simulators", "tests")
OURS = ("tickwire", "tests")  # absolute imports of our own package may name our private modules

# Underscore names that are documented public API of the standard library.
STDLIB_PUBLIC = frozenset(
    {
        "_exit",  # os._exit
        "_replace",  # namedtuple
        "_asdict",
        "_fields",
        "_field_defaults",
        "_make",
        "_missing_",  # enum hooks
        "_generate_next_value_",
        "_value_",
        "_name_",
        "_ignore_",
        "_order_",
    }
)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


@cache  # parsed once for the tests below, which only read the trees
def _trees() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in modules()}


def defined_private_names(trees: dict[Path, ast.Module]) -> set[str]:
    """Every private name our own code defines, anywhere in the package."""
    names = set().union(*(_defined_in(tree) for tree in trees.values()))
    names.update(p.stem for p in trees)  # our own private modules: feed/v1/state.py is `_state`
    return {n for n in names if _private(n)}


def _defined_in(tree: ast.Module) -> set[str]:
    """The private names one module defines (functions, classes, globals, `self._x`, slots)."""
    names: set[str] = set()
    if True:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
            ):
                names.add(node.attr)  # self._x = ..., cls._x = ... (not ws._x = ...)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "__slots__" for t in targets):
                    value = node.value
                    if isinstance(value, ast.Tuple | ast.List | ast.Set):
                        for elt in value.elts:
                            if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                                names.add(elt.value)
    return {n for n in names if _private(n)}


def imported_packages(trees: dict[Path, ast.Module]) -> set[str]:
    """The third-party top-level packages our code imports (not ours, not the stdlib)."""
    local = {p.stem for p in trees}
    found: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    if "pytest" in found:
        found.add("_pytest")  # where pytest's objects (caplog, monkeypatch, tmp_path) come from
    return {
        name
        for name in found
        if name not in OURS and name not in local and name not in sys.stdlib_module_names
    }


@cache
def foreign_private_names(packages: frozenset[str]) -> frozenset[str]:
    """Private names the installed `packages` define in their Python sources."""
    names: set[str] = set()
    for package in sorted(packages):
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        roots = list(spec.submodule_search_locations or ())
        # A package's own test suite holds no object we are handed, and is most of its files.
        files = [f for r in roots for f in Path(r).rglob("*.py") if "tests" not in f.parts]
        if not roots and spec.origin and spec.origin.endswith(".py"):
            files = [Path(spec.origin)]
        for path in files:
            names.update(_FOREIGN_DEFINITION.findall(path.read_text("utf-8", errors="replace")))
    return frozenset(name for name in names if _private(name))


# What a library's source defines, read with a regex rather than its AST (numpy's and pandas'
# thousands of files parse in seconds this way): `self._x`/`cls._x` (used, so defined on a
# class), `def _x`, `class _x`, a module global `_x = ...`, and quoted names (`__slots__`,
# `setattr(obj, "_x", ...)`). A few extra names only make the rule stricter.
_FOREIGN_DEFINITION = re.compile(
    r"""(?:\b(?:self|cls)\.|^[ \t]*(?:async[ \t]+)?def[ \t]+|^[ \t]*class[ \t]+|^|["'])(_\w+)""",
    re.MULTILINE,
)


def violations(trees: dict[Path, ast.Module], foreign: frozenset[str] = frozenset()) -> list[str]:
    """`path:line: what` for every foreign private attribute or module this package touches.

    `foreign`: the private names of the third-party packages (`foreign_private_names`).
    """
    ours = defined_private_names(trees) | STDLIB_PUBLIC
    shared = (ours & foreign) - STDLIB_PUBLIC  # ours, and a library's: whose object is it?
    local = {p.stem for p in trees}  # the tests import their helpers by bare name: `_support`
    found: list[str] = []
    for path, tree in trees.items():
        rel = path.relative_to(ROOT)
        hints = _annotation_nodes(tree)
        here = _defined_in(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr) and id(node) not in hints:
                if node.attr not in ours or (
                    node.attr in shared and node.attr not in here and not _on_self(node)
                ):
                    found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if _foreign_private(node.module, local):
                    found.append(f"{rel}:{node.lineno}: from {node.module} import ...")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if _foreign_private(alias.name, local):
                        found.append(f"{rel}:{node.lineno}: import {alias.name}")
    return sorted(found, key=lambda f: (f.split(":")[0], int(f.split(":")[1])))


def _on_self(node: ast.Attribute) -> bool:
    """`self._x`, `cls._x` or `super()._x`: an attribute of the class this code is in."""
    value = node.value
    if isinstance(value, ast.Name):
        return value.id in ("self", "cls")
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "super"
    )


def _annotation_nodes(tree: ast.Module) -> set[int]:
    """Nodes inside type hints: never evaluated under `from __future__ import annotations`, and
    some types have only a private name (`argparse._SubParsersAction`)."""
    roots: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return {id(sub) for root in roots for sub in ast.walk(root)}


def _foreign_private(module: str, local: set[str]) -> bool:
    parts = module.split(".")
    return parts[0] not in OURS and parts[0] not in local and any(_private(p) for p in parts)


def test_the_scan_sees_the_package() -> None:
    trees = _trees()
    assert len(trees) >= 20, sorted(trees)
    assert set(PACKAGES) <= {p.relative_to(ROOT).parts[0] for p in trees}
    assert ROOT / "tests" / "dashboard" / "test_app.py" in trees  # nested test folders too


def test_the_rule_catches_what_it_must() -> None:
    """The scan itself: foreign private attributes and modules are caught, ours pass."""
    sample = ast.parse(
        "import trio\nfrom trio_websocket._impl import X\nimport wsproto._y\n"
        "class C:\n    __slots__ = ('_slot',)\n    def __init__(self):\n"
        "        self._mine = 1\n    def f(self, ws):\n        ws._stream_lock = None\n"
        "        return self._mine, self._slot, trio._core, os._exit, self.__class__\n"
    )
    found = violations({ROOT / "feed" / "sample.py": sample})
    assert [f.split(": ", 1)[1] for f in found] == [
        "from trio_websocket._impl import ...",
        "import wsproto._y",
        "ws._stream_lock",
        "trio._core",
    ]


def test_the_rule_catches_a_test_reading_a_library_private() -> None:
    """A test file is held to the rule: Textual's `_notifications` is caught, our helpers pass."""
    sample = ast.parse(
        "from _support import serve\nfrom tests._support import tickwire_cmd\n"
        "from textual._context import active_app\n"
        "def test_x(app):\n    return list(app._notifications), serve._helper\n"
        "def _helper():\n    pass\n"
    )
    path = ROOT / "tests" / "dashboard" / "test_sample.py"
    found = violations({path: sample, ROOT / "tests" / "_support.py": ast.parse("")})
    assert [f.split(": ", 1)[1] for f in found] == [
        "from textual._context import ...",
        "app._notifications",
    ]


def test_a_name_ours_and_a_librarys_is_allowed_only_where_it_is_ours() -> None:
    """`_done` defined by our bridge and by a library: fine on `self` and in the bridge's own
    module, a violation on any object elsewhere (it may be the library's)."""
    bridge = ast.parse(
        "class Bridge:\n    def __init__(self):\n        self._done = None\n"
        "    def f(self, other):\n        return self._done, other._done\n"
    )
    test = ast.parse("def test_x(app):\n    return app.bridge._done, app._mine\n")
    mine = ast.parse("class M:\n    def __init__(self):\n        self._mine = 1\n")
    trees = {
        ROOT / "dashboard" / "bridge.py": bridge,
        ROOT / "tests" / "test_sample.py": test,
        ROOT / "feed" / "mine.py": mine,
    }
    found = violations(trees, frozenset({"_done", "_other"}))
    assert [f.split(": ", 1)[1] for f in found] == ["app.bridge._done"]
    assert violations(trees) == []  # without the library's names, `_done` is only ours


def test_the_librarys_names_are_read_from_its_sources() -> None:
    trees = _trees()
    packages = imported_packages(trees)
    assert {"trio", "trio_websocket", "wsproto", "h11", "numpy"} <= packages
    assert "tickwire" not in packages and "asyncio" not in packages
    names = foreign_private_names(frozenset(packages))
    assert {"_notifications", "_closed"} <= names  # textual's App, trio-websocket's connection


def test_no_private_attribute_of_another_package() -> None:
    trees = _trees()
    found = violations(trees, foreign_private_names(frozenset(imported_packages(trees))))
    assert not found, f"{len(found)} private names of other packages used:\n" + "\n".join(found)
