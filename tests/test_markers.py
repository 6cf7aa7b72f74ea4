"""The names tests/conftest.py marks by still exist, and its reading of a test's code finds the
subprocess module behind a helper: a renamed test or fixture must not silently lose its marker."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from tests import conftest

ROOT = Path(__file__).resolve().parent.parent


def defined_functions(path: Path) -> set[str]:
    return {
        node.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_each_slow_test_named_in_conftest_exists() -> None:
    gone = []
    for node_id in conftest.SLOW:
        file, _, name = node_id.partition("::")
        path = ROOT / file
        if not path.is_file() or name.split("[")[0] not in defined_functions(path):
            gone.append(node_id)
    assert not gone, f"tests/conftest.py SLOW names tests that do not exist (renamed?): {gone}"


def test_each_fixture_conftest_marks_by_exists() -> None:
    defined = set().union(*(defined_functions(p) for p in (ROOT / "tests").rglob("*.py")))
    fixtures = conftest.SLOW_FIXTURES | conftest.BROWSER_FIXTURES | conftest.POSTGRES_FIXTURES
    assert fixtures <= defined, f"no such fixtures (renamed?): {sorted(fixtures - defined)}"


# Test code as conftest sees it; run through exec so that this test itself starts no process
# and is not marked as one.
SAMPLE = """
import subprocess

def start_a_process():
    subprocess.run(["true"], check=True)

def uses_a_helper():
    start_a_process()

def starts_nothing():
    print("no process")
"""


def test_a_process_started_through_a_helper_is_seen() -> None:
    sample: dict[str, Any] = {"__name__": "tests.sample"}
    exec(SAMPLE, sample)
    assert "subprocess" in conftest._names_used(sample["uses_a_helper"])
    assert "subprocess" not in conftest._names_used(sample["starts_nothing"])
