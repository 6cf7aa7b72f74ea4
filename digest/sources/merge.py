"""One record per paper: merge the Papers several sources (or runs) gave for the same id."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

from digest.models import Paper
from digest.sources.valid import MAX_CATEGORIES

HF_PAGE_PREFIX = "https://huggingface.co/papers/"


def merge_papers(papers: Iterable[Paper]) -> list[Paper]:
    """One Paper per id, in order of first appearance; the inputs are not changed.

    The merged record keeps the best of each field: the first non-empty title, the longest
    abstract, the first non-empty author list, the HF page as url (else the first url), the
    first arXiv/pdf/code urls, the most upvotes, the earliest published date, the union of
    categories and of sources (in order), announce type "new" over any other, the first AI
    summary and organisation, and the most comments and stars.
    """
    merged: dict[str, Paper] = {}
    for paper in papers:
        current = merged.get(paper.id)
        if current is None:
            merged[paper.id] = replace(
                paper,
                authors=list(paper.authors),
                categories=list(paper.categories),
                sources=list(paper.sources),
            )
        else:
            _merge_into(current, paper)
    return list(merged.values())


def _merge_into(into: Paper, other: Paper) -> None:
    into.title = into.title or other.title
    if len(other.abstract) > len(into.abstract):
        into.abstract = other.abstract
    if not into.authors and other.authors:
        into.authors = list(other.authors)
    if other.url.startswith(HF_PAGE_PREFIX) and not into.url.startswith(HF_PAGE_PREFIX):
        into.url = other.url
    into.url = into.url or other.url
    into.arxiv_url = into.arxiv_url or other.arxiv_url
    into.pdf_url = into.pdf_url or other.pdf_url
    into.code_url = into.code_url or other.code_url
    into.upvotes = _most(into.upvotes, other.upvotes)
    into.ai_summary = into.ai_summary or other.ai_summary
    into.organization = into.organization or other.organization
    into.comments = _most(into.comments, other.comments)
    into.stars = _most(into.stars, other.stars)
    into.published = _earliest(into.published, other.published)
    into.categories = _union(into.categories, other.categories)[:MAX_CATEGORIES]
    into.sources = _union(into.sources, other.sources)
    if into.announce_type != "new" and (other.announce_type == "new" or not into.announce_type):
        into.announce_type = other.announce_type or into.announce_type


def _most(a: int | None, b: int | None) -> int | None:
    if a is None or b is None:
        return a if b is None else b
    return max(a, b)


def _union(first: list[str], second: list[str]) -> list[str]:
    out = list(first)
    for item in second:
        if item not in out:
            out.append(item)
    return out


def _earliest(a: str, b: str) -> str:
    if not a or not b:
        return a or b
    ta, tb = _instant(a), _instant(b)
    if ta is not None and tb is not None:
        return b if tb < ta else a
    return b if b < a else a


def _instant(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
