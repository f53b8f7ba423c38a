"""No import cycle among tickwire's modules, TYPE_CHECKING and function-local imports included.

Read from the source with `ast` (nothing is imported), so the rule holds with or without
import-linter: a cycle means two modules that cannot be read, tested or moved one without the
other. A cycle is cut by moving the shared piece into the lower module or a small new one.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The folders install as tickwire.<name> (package-dir in pyproject.toml)
PACKAGES = {
    "feed": "tickwire.feed",
    "simulators": "tickwire.simulators",
    "dashboard": "tickwire.dashboard",
}


def modules(root: Path, packages: dict[str, str]) -> dict[str, tuple[Path, bool]]:
    """Every module by its dotted name: its file, and whether it is a package's __init__."""
    found: dict[str, tuple[Path, bool]] = {}
    for folder, dotted in packages.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = [dotted, *path.relative_to(root / folder).with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def imports(
    name: str, path: Path, is_package: bool, known: dict[str, tuple[Path, bool]]
) -> set[str]:
    """The known modules `name` imports anywhere in its file (top level, TYPE_CHECKING blocks,
    function bodies): `from .a import b` counts as `a.b` when that is a module, else `a`."""

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if is_package else name.rpartition(".")[0]
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(owner(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in known else owner(source))
    return {m for m in found if m is not None and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def graph_of(root: Path, packages: dict[str, str]) -> dict[str, set[str]]:
    known = modules(root, packages)
    return {
        name: imports(name, path, is_package, known) for name, (path, is_package) in known.items()
    }


def describe(graph: dict[str, set[str]], component: list[str]) -> str:
    edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in component]
    return "cycle: " + "; ".join(edges)


def test_no_import_cycle_among_tickwire_modules() -> None:
    graph = graph_of(ROOT, PACKAGES)
    assert len(graph) > 100  # the scan found the modules (feed alone has ~60)
    assert "tickwire.feed.hub.every" in graph["tickwire.feed.hub.hub"]  # and their imports
    found = cycles(graph)
    assert not found, "\n".join(describe(graph, c) for c in found)


def test_the_scan_sees_type_checking_and_function_local_imports(tmp_path: Path) -> None:
    """The guard above can fail: a cycle closed only by a TYPE_CHECKING import, one closed by an
    import inside a function, and one through `from . import x` are each found."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import B\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\nB = 1\n"
    )
    (pkg / "c.py").write_text("import tp.pkg.d\n")
    (pkg / "d.py").write_text("def f():\n    from . import c\n")
    (pkg / "sub" / "e.py").write_text("from .. import a as _a\nfrom ..b import B\n")
    (pkg / "f.py").write_text("from .sub import e\n")
    (pkg / "sub" / "g.py").write_text("from ..f import x\n")  # f -> sub.e, no cycle with g
    graph = graph_of(tmp_path, {"pkg": "tp.pkg"})
    assert cycles(graph) == [["tp.pkg.a", "tp.pkg.b"], ["tp.pkg.c", "tp.pkg.d"]]
    (pkg / "a.py").write_text("from .f import x\n")  # a -> f -> sub.e -> a
    (pkg / "b.py").write_text("B = 1\n")
    graph = graph_of(tmp_path, {"pkg": "tp.pkg"})
    assert cycles(graph) == [["tp.pkg.a", "tp.pkg.f", "tp.pkg.sub.e"], ["tp.pkg.c", "tp.pkg.d"]]
