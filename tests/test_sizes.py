"""Sizes: no source module over 400 lines and no function over 80, in the three packages.

A module that grows past 400 lines is split by responsibility (the style guide's "a module owns
one idea"); a function past 80 lines is split into steps with names. This includes the bench's
baselines: a baseline is code we read and trust as much as the rest. Lines are counted as an
editor shows them: a module's every line, a function's from its first decorator to its last line
(docstring and comments included), nested functions on their own as well as inside their parent.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("feed", "simulators", "dashboard")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80

# Exceptions to the limits, each with the reason it may stay over (none today). An entry within
# the limit (or gone) fails below, so a stale one cannot hide a module that grows back later.
ALLOWED_MODULES: dict[str, str] = {}
ALLOWED_FUNCTIONS: dict[str, str] = {}


def modules() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(qualified name, lines) of every function in `tree`, methods as `Class.name`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            assert node.end_lineno is not None
            yield prefix + node.name, node.end_lineno - first + 1
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def sizes() -> tuple[dict[str, int], dict[str, int]]:
    """Lines of every module, and of every function (`path:qualname`), in the packages."""
    by_module: dict[str, int] = {}
    by_function: dict[str, int] = {}
    for path in modules():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        by_module[rel] = len(text.splitlines())
        for name, lines in functions(ast.parse(text, rel)):
            by_function[f"{rel}:{name}"] = max(lines, by_function.get(f"{rel}:{name}", 0))
    return by_module, by_function


def over(found: dict[str, int], limit: int, allowed: Collection[str]) -> list[str]:
    """What breaks the limit: too big and not allowed, or allowed but within the limit now (a
    stale entry)."""
    wrong = [
        f"{name}: {lines} lines (at most {limit})"
        for name, lines in sorted(found.items())
        if lines > limit and name not in allowed
    ]
    for name in sorted(allowed):
        if found.get(name, 0) <= limit:
            wrong.append(f"{name}: within {limit} lines or gone: remove it from the allow-list")
    return wrong


def test_no_module_over_400_lines() -> None:
    by_module, _ = sizes()
    assert len(by_module) > 100  # the walk found the packages
    assert over(by_module, MAX_MODULE_LINES, ALLOWED_MODULES) == []


def test_no_function_over_80_lines() -> None:
    _, by_function = sizes()
    assert len(by_function) > 1000
    assert over(by_function, MAX_FUNCTION_LINES, ALLOWED_FUNCTIONS) == []


def test_the_counting_sees_methods_nested_functions_and_decorators() -> None:
    tree = ast.parse(
        "@dec\n"
        "def f():\n"
        "    def g():\n"
        "        pass\n"
        "class C:\n"
        "    @property\n"
        "    async def m(self):\n"
        "        x = 1\n"
        "        return x\n"
    )
    assert dict(functions(tree)) == {"f": 4, "f.g": 2, "C.m": 4}


@pytest.mark.parametrize(
    ("found", "allowed", "wrong"),
    [
        ({"a.py": 401}, (), ["a.py: 401 lines (at most 400)"]),
        ({"a.py": 400}, (), []),
        ({"a.py": 450}, ("a.py",), []),
        (
            {"a.py": 390},
            ("a.py",),
            ["a.py: within 400 lines or gone: remove it from the allow-list"],
        ),
        ({}, ("a.py",), ["a.py: within 400 lines or gone: remove it from the allow-list"]),
    ],
)
def test_the_check_fails_on_what_it_should(
    found: dict[str, int], allowed: tuple[str, ...], wrong: list[str]
) -> None:
    assert over(found, 400, allowed) == wrong
