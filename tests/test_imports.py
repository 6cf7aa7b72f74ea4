"""The import graph of digest/ has no cycles, and the leaf modules import nothing heavy.

The graph is read from the source (ast), not from a running interpreter, so it sees every import
whether or not it ran: one node per module (a package is its __init__.py), one edge per import of
another digest module, wherever it stands. A module-level import, one under `if TYPE_CHECKING:`
and one inside a function (a lazy import) all count: each says that one module depends on the
other, and a cycle hidden behind a type-only or a lazy import is still a cycle (the conventions:
"lower modules never import higher ones"). Each edge keeps its line and kind, so a failure names
the cycle and where each of its imports is.

Importing digest.a.b first runs digest/a/__init__.py; that implicit edge to the parent package is
not counted (else every package that re-exports its submodules would be a cycle with them), but an
explicit `from digest.a import name` is an edge to digest.a. Names loaded by string
(importlib.import_module) are not seen.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "digest"

# Modules at the bottom of the graph: everyone imports them, so they must stay cheap to import.
LEAVES = ["digest.errors", "digest.models", "digest.ids", "digest.clock"]
# Third-party packages that cost real time or memory to import (or pull in a lot).
HEAVY = {
    "httpx",
    "feedparser",
    "selectolax",
    "numpy",
    "onnxruntime",
    "tokenizers",
    "jinja2",
    "css_inline",
    "aiosmtplib",
    "starlette",
    "uvicorn",
    "apscheduler",
    "rich",
    "click",
    "psycopg",
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    kind: str  # "module level", "under TYPE_CHECKING" or "in a function"

    def __str__(self) -> str:
        path = module_path(self.source).relative_to(PACKAGE.parent)
        return f"{path}:{self.line} imports {self.target} ({self.kind})"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def module_path(name: str) -> Path:
    return modules()[name]


def resolve(name: str) -> str | None:
    """The digest module an import of `name` loads: the longest existing prefix."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules():
            return ".".join(parts)
        parts.pop()
    return None


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str) -> list[Edge]:
    path = module_path(name)
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    edges: list[Edge] = []

    def add(target: str | None, node: ast.stmt, kind: str) -> None:
        edge = Edge(name, target or "", node.lineno, kind)
        if target is not None and target != name and edge not in edges:
            edges.append(edge)

    def visit(node: ast.AST, kind: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            kind = "in a function"
        elif isinstance(node, ast.If) and is_type_checking(node.test) and kind == "module level":
            for child in node.body:
                visit(child, "under TYPE_CHECKING")
            for child in node.orelse:
                visit(child, kind)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(resolve(alias.name), node, kind)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from ..a import b
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            if origin.split(".")[0] != "digest":
                return
            for alias in node.names:
                # `from digest.a import b` loads the module digest.a.b if there is one.
                add(resolve(f"{origin}.{alias.name}"), node, kind)
        for inner in ast.iter_child_nodes(node):
            visit(inner, kind)

    visit(ast.parse(path.read_text(), str(path)), "module level")
    return edges


@cache
def graph() -> dict[str, list[Edge]]:
    return {name: imports_of(name) for name in modules()}


def strongly_connected(graph: dict[str, list[Edge]]) -> list[frozenset[str]]:
    """Tarjan's algorithm: the groups of modules that import each other, directly or not
    (only groups of two or more; no module imports itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[frozenset[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in graph[node]:
            if edge.target not in index:
                connect(edge.target)
                low[node] = min(low[node], low[edge.target])
            elif edge.target in on_stack:
                low[node] = min(low[node], index[edge.target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(frozenset(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def one_cycle(graph: dict[str, list[Edge]], group: frozenset[str]) -> list[Edge]:
    """The shortest cycle through the group's first module, as its edges."""
    start = min(group)
    paths: dict[str, list[Edge]] = {start: []}
    queue = [start]
    for node in queue:
        for edge in graph[node]:
            if edge.target == start:
                return [*paths[node], edge]
            if edge.target in group and edge.target not in paths:
                paths[edge.target] = [*paths[node], edge]
                queue.append(edge.target)
    raise AssertionError(f"no cycle through {start} in {sorted(group)}")


def describe(group: frozenset[str]) -> str:
    cycle = one_cycle(graph(), group)
    loop = " -> ".join([cycle[0].source, *(edge.target for edge in cycle)])
    if len(group) > len(cycle):
        loop += f"  (one cycle of the group {', '.join(sorted(group))})"
    return f"{loop}\n" + "\n".join(f"    {edge}" for edge in cycle)


def test_the_graph_sees_the_package() -> None:
    """A guard on the reader above: it finds the modules and their imports."""
    assert {"digest.cli", "digest.errors", "digest.rank", "digest.rank.ranker"} <= set(graph())
    assert any(edge.target == "digest.errors" for edge in graph()["digest.cli"])


def test_no_import_cycles() -> None:
    cycles = strongly_connected(graph())
    assert not cycles, "import cycles in digest/:\n" + "\n".join(map(describe, cycles))


def test_a_cycle_is_found_and_named() -> None:
    """The checker on a made-up graph: a -> b -> c -> a, and d alone."""

    def edge(source: str, target: str) -> Edge:
        return Edge(source, target, 1, "module level")

    made_up = {
        "a": [edge("a", "b")],
        "b": [edge("b", "c"), edge("b", "d")],
        "c": [edge("c", "a")],
        "d": [],
    }
    [group] = strongly_connected(made_up)
    assert group == {"a", "b", "c"}
    assert [(e.source, e.target) for e in one_cycle(made_up, group)] == [
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
    ]


@pytest.mark.parametrize("leaf", LEAVES)
def test_a_leaf_imports_nothing_heavy(leaf: str) -> None:
    """In a fresh interpreter: what importing the leaf alone loads."""
    code = f"import sys, {leaf}; print('\\n'.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,  # this checkout's digest/, whatever is installed
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    heavy = sorted({name.split(".")[0] for name in loaded} & HEAVY)
    assert not heavy, f"importing {leaf} loads {heavy}"
    others = sorted(name for name in loaded if name.startswith("digest.") and name not in LEAVES)
    assert not others, f"the leaf {leaf} loads higher digest modules: {others}"
