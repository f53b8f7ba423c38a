"""No module of ours touches another package's private attributes or private modules.

A private name (`x._name`) of trio, trio-websocket, wsproto, textual or numpy may change in any
release; reaching into one once killed the server, and a test that reads one passes or fails on
the library's internals rather than on ours. The rule, from the AST of every module in feed/,
dashboard/, simulators/ and tests/: an attribute access `obj._name` (dunders aside) is allowed only
if `_name` is a private name our own package defines (a function, class, module global, class
attribute, `self._x` assignment or `__slots__` entry), and no import names a third-party private
module (`from trio_websocket._impl import ...`, `import x._y`; our own private modules, such as
the tests' `_support`, are fine). Type hints are exempt: they are
never evaluated, and some types have only a private name. The failure lists every place.
"""

from __future__ import annotations

import ast
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


def _trees() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in modules()}


def defined_private_names(trees: dict[Path, ast.Module]) -> set[str]:
    """Every private name our own code defines, anywhere in the package."""
    names: set[str] = set()
    for tree in trees.values():
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
    names.update(p.stem for p in trees)  # our own private modules: feed/v1/state.py is `_state`
    return {n for n in names if _private(n)}


def violations(trees: dict[Path, ast.Module]) -> list[str]:
    """`path:line: what` for every foreign private attribute or module this package touches."""
    ours = defined_private_names(trees) | STDLIB_PUBLIC
    local = {p.stem for p in trees}  # the tests import their helpers by bare name: `_support`
    found: list[str] = []
    for path, tree in trees.items():
        rel = path.relative_to(ROOT)
        hints = _annotation_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in ours:
                if id(node) in hints:
                    continue
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if _foreign_private(node.module, local):
                    found.append(f"{rel}:{node.lineno}: from {node.module} import ...")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if _foreign_private(alias.name, local):
                        found.append(f"{rel}:{node.lineno}: import {alias.name}")
    return sorted(found, key=lambda f: (f.split(":")[0], int(f.split(":")[1])))


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


def test_no_private_attribute_of_another_package() -> None:
    found = violations(_trees())
    assert not found, f"{len(found)} private names of other packages used:\n" + "\n".join(found)
