"""Hugging Face daily-papers items (the API's JSON and the page's data-props) -> Paper.

An item is ``{"paper": {...}, "publishedAt": ..., "title": ..., "numComments": ...}``. Only
paper.id, paper.title and paper.summary are always there; both the 2024 schema (few fields)
and the 2026 schema (githubRepo, submittedOnDailyAt, ai_summary, ...) are read. What helps a
reader decide is kept: paper.ai_summary, the organisation's full name (item or paper
organization), item.numComments and paper.githubStars.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from digest.ids import arxiv_abs_url, arxiv_pdf_url, hf_paper_url, normalise_arxiv_id
from digest.models import Paper
from digest.sources.text import collapse
from digest.sources.valid import UnusableEntry, valid_key, valid_paper

# Longer integers are no count (Python refuses to read 4,300 digits, which would fail the page).
INT_DIGITS = 18


def load_json(text: str) -> Any:
    """json.loads for a page's or the API's JSON. One absurd value must not fail the whole
    response: an integer of more than INT_DIGITS digits is read as null. Raises
    json.JSONDecodeError, also for JSON nested too deeply for the parser."""
    try:
        return json.loads(text, parse_int=_bounded_int)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def paper_from_item(item: Any, source_name: str) -> Paper:
    """The valid Paper of one item (digest.sources.valid); UnusableEntry says why it has none."""
    if not isinstance(item, dict):
        raise UnusableEntry(f"an item is a {type(item).__name__}, not an object")
    paper = item.get("paper")
    if not isinstance(paper, dict):
        raise UnusableEntry("an item has no 'paper' object")
    raw_id = paper.get("id")
    raw_id = valid_key(str(raw_id)) if isinstance(raw_id, str | int) else ""
    if not raw_id:
        raise UnusableEntry("an item has no paper.id")
    title = collapse(_str(paper.get("title")) or _str(item.get("title")))
    if not title:
        raise UnusableEntry(f"paper {raw_id} has no title")
    arxiv_id = normalise_arxiv_id(raw_id)
    key = arxiv_id or raw_id
    return valid_paper(
        Paper(
            id=key,
            title=title,
            abstract=collapse(_str(paper.get("summary")) or _str(item.get("summary"))),
            authors=_authors(paper.get("authors")),
            url=hf_paper_url(key),
            arxiv_url=arxiv_abs_url(arxiv_id) if arxiv_id else "",
            pdf_url=arxiv_pdf_url(arxiv_id) if arxiv_id else "",
            code_url=_str(paper.get("githubRepo")).strip(),
            upvotes=_int(paper.get("upvotes")),
            published=(
                _str(paper.get("publishedAt"))
                or _str(paper.get("submittedOnDailyAt"))
                or _str(item.get("publishedAt"))
            ).strip(),
            sources=[source_name],
            ai_summary=collapse(_str(paper.get("ai_summary"))),
            organization=_organization(item.get("organization"))
            or _organization(paper.get("organization")),
            comments=_int(item.get("numComments")),
            stars=_int(paper.get("githubStars")),
        )
    )


def papers_from_items(items: Sequence[Any], source_name: str) -> tuple[list[Paper], list[str]]:
    """The papers of the good items, and one problem line per item that was skipped."""
    papers: list[Paper] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        try:
            papers.append(paper_from_item(item, source_name))
        except UnusableEntry as exc:
            problems.append(f"item {index}: {exc}")
        except Exception as exc:  # an unforeseen value in one item must not sink the others
            problems.append(f"item {index}: {UnusableEntry(f'{type(exc).__name__}: {exc}')}")
    return papers, problems


def _authors(value: Any) -> list[str]:
    """Author names in order. A "hidden" flag hides the HF account link, not the author, so
    hidden authors are kept."""
    if not isinstance(value, list):
        return []
    names: list[str] = []
    for author in value:
        name = author.get("name") if isinstance(author, dict) else author
        name = collapse(name) if isinstance(name, str) else ""
        if name:
            names.append(name)
    return names


def _organization(value: Any) -> str:
    """The organisation's display name: {"name": "caltech", "fullname": "California ..."}."""
    if not isinstance(value, dict):
        return ""
    return collapse(_str(value.get("fullname")) or _str(value.get("name")))


def _bounded_int(digits: str) -> int | None:
    return int(digits) if len(digits.lstrip("-")) <= INT_DIGITS else None


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 10**INT_DIGITS:
        return int(value)
    if isinstance(value, str):
        return _bounded_int(value.strip()) if value.strip().isdecimal() else None
    return None
