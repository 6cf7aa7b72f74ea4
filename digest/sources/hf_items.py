"""Hugging Face daily-papers items (the API's JSON and the page's data-props) -> Paper.

An item is ``{"paper": {...}, "publishedAt": ..., "title": ..., "numComments": ...}``. Only
paper.id, paper.title and paper.summary are always there; both the 2024 schema (few fields)
and the 2026 schema (githubRepo, submittedOnDailyAt, ai_summary, ...) are read. What helps a
reader decide is kept: paper.ai_summary, the organisation's full name (item or paper
organization), item.numComments and paper.githubStars.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from digest.ids import arxiv_abs_url, arxiv_pdf_url, hf_paper_url, normalise_arxiv_id
from digest.models import Paper
from digest.sources.text import collapse


class ItemError(ValueError):
    """One item cannot become a Paper; the message says why."""


def paper_from_item(item: Any, source_name: str) -> Paper:
    if not isinstance(item, dict):
        raise ItemError(f"an item is a {type(item).__name__}, not an object")
    paper = item.get("paper")
    if not isinstance(paper, dict):
        raise ItemError("an item has no 'paper' object")
    raw_id = paper.get("id")
    if not isinstance(raw_id, str | int) or not str(raw_id).strip():
        raise ItemError("an item has no paper.id")
    raw_id = str(raw_id).strip()
    title = collapse(_str(paper.get("title")) or _str(item.get("title")))
    if not title:
        raise ItemError(f"paper {raw_id} has no title")
    arxiv_id = normalise_arxiv_id(raw_id)
    key = arxiv_id or raw_id
    return Paper(
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


def papers_from_items(items: Sequence[Any], source_name: str) -> tuple[list[Paper], list[str]]:
    """The papers of the good items, and one problem line per item that was skipped."""
    papers: list[Paper] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        try:
            papers.append(paper_from_item(item, source_name))
        except ItemError as exc:
            problems.append(f"item {index}: {exc}")
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


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
