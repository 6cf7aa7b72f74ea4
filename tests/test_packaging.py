"""`pip install .` (the README's install, not editable) ships every package of digest/: the
package list in pyproject.toml is written out by hand (digest.templates comes from another
folder), so a new package folder must be added there, or an installed `digest` fails on import
while the editable install the tests use still works."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_of_digest_is_in_pyproject() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    folders = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "digest").rglob("__init__.py")
    }
    missing = sorted(folders - listed)
    assert not missing, (
        f"pyproject.toml [tool.setuptools] packages lacks {missing}: pip install . would leave them out"
    )
