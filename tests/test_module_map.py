"""The module map in CONTRIBUTING.md matches the code: every module of digest/ has its line, the
map names no module that does not exist, and no import goes from a group to a group below it
(see the map's rule). The imports are read as tests/test_imports.py reads them."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_imports import graph, modules

CONTRIBUTING = Path(__file__).resolve().parent.parent / "CONTRIBUTING.md"
ENTRY = re.compile(r"^- `(digest(?:\.\w+)*)`: \S")


def module_map() -> list[tuple[str, list[str]]]:
    """The map's groups, bottom first: (heading, modules in their order)."""
    text = CONTRIBUTING.read_text()
    section = text.split("\n## Module map\n", 1)[1].split("\n## ", 1)[0]
    groups: list[tuple[str, list[str]]] = []
    for line in section.splitlines():
        if line.startswith("### "):
            groups.append((line[4:].strip(), []))
        elif match := ENTRY.match(line):
            assert groups, f"CONTRIBUTING.md: {line!r} stands before the first group"
            groups[-1][1].append(match[1])
    return groups


def test_the_map_names_each_module_once_and_only_modules_that_exist() -> None:
    listed = [name for _, names in module_map() for name in names]
    doubled = sorted({name for name in listed if listed.count(name) > 1})
    missing = sorted(set(modules()) - set(listed))
    unknown = sorted(set(listed) - set(modules()))
    assert not missing, f"CONTRIBUTING.md's module map lacks {missing}: add a line for each"
    assert not unknown, f"CONTRIBUTING.md's module map names modules that do not exist: {unknown}"
    assert not doubled, f"CONTRIBUTING.md's module map names these twice: {doubled}"


def test_imports_go_down_the_map_never_up() -> None:
    group_of = {
        name: (index, heading)
        for index, (heading, names) in enumerate(module_map())
        for name in names
    }
    upward = [
        f"{edge} -- group '{group_of[edge.source][1]}' imports from the later '{group_of[edge.target][1]}'"
        for edges in graph().values()
        for edge in edges
        if edge.source in group_of
        and edge.target in group_of
        and group_of[edge.target][0] > group_of[edge.source][0]
    ]
    assert not upward, (
        "imports against CONTRIBUTING.md's module map (move the module to another group, or the "
        "import):\n" + "\n".join(upward)
    )
