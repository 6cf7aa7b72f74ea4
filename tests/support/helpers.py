"""Small builders shared by the end-to-end tests: configs, HF pages, fixture items."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

_spec = importlib.util.spec_from_file_location("make_hf_page", FIXTURES / "make_hf_page.py")
assert _spec and _spec.loader
make_hf_page = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_hf_page)


def hf_items(name: str = "hf_api_daily_papers_2026-06-12_sotawhat.json") -> list[dict[str, Any]]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def hf_page(items: list[dict[str, Any]], day: str = "2026-06-12") -> str:
    """An HF Daily Papers page (the real page's markup) holding these API items."""
    return make_hf_page.build(items, day)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(value)


def write_config(
    path: Path,
    *,
    sources: list[dict[str, Any]],
    subscribers: list[dict[str, Any]],
    delivery: dict[str, Any] | None = None,
    digest: dict[str, Any] | None = None,
) -> Path:
    lines = ["[digest]"]
    settings = {"state": "state.sqlite3", "from": "Paper Digest <digest@example.org>"}
    settings.update(digest or {})
    lines += [f"{k} = {toml_value(v)}" for k, v in settings.items()]
    for source in sources:
        lines.append("[[source]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in source.items()]
    lines.append("[delivery]")
    lines += [f"{k} = {toml_value(v)}" for k, v in (delivery or {"method": "outbox"}).items()]
    for sub in subscribers:
        lines.append("[[subscriber]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in sub.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
