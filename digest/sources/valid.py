"""A Paper made valid when a parser builds it: every text field through digest.text, each with
its bound. A parser builds its Paper, passes it through `valid_paper`, and skips the entry
(UnusableEntry, with the reason) when no id or title is left; the other entries carry on.

Bounds (characters; lists in items). The mail cuts shorter for its layout (render/clean.py):

    id            2,048  (a normalised link at most as long as a URL; no word bound)
    title         1,000
    abstract     10,000  (arXiv's own limit is 1,920)
    ai_summary    2,000
    author          200  each, at most 1,000 authors
    organization    200
    category        100  each, at most 50 (also after merging)
    source name     100  each, at most 50
    announce_type   100
    published        64
    urls          2,048  an absolute http(s) URL or "" (digest.text.valid_url)
    counts        0..10**12 or None (upvotes, comments, stars)

and no run of more than digest.text.WORD_CHARS (300) characters without a space in any text.
"""

from __future__ import annotations

from dataclasses import replace

from digest.models import Paper
from digest.text import NAME_CHARS, URL_CHARS, valid_text, valid_url

TITLE_CHARS = 1_000
ABSTRACT_CHARS = 10_000
SUMMARY_CHARS = 2_000
SHORT_CHARS = 100
DATE_CHARS = 64
MAX_AUTHORS = 1_000
MAX_CATEGORIES = 50
MAX_SOURCES = 50
MAX_COUNT = 10**12


class UnusableEntry(ValueError):
    """One entry of a page, feed or API response cannot become a Paper; the message says why
    (in valid text: it may quote the entry)."""

    def __init__(self, reason: str) -> None:
        super().__init__(valid_text(reason, 500))


def valid_paper(paper: Paper) -> Paper:
    """A copy of `paper` with every field valid and bounded (see the module docstring).
    Raises UnusableEntry when it has no id or no title left."""
    key = valid_key(paper.id)
    if not key:
        raise UnusableEntry("an entry has no usable id")
    title = valid_text(paper.title, TITLE_CHARS)
    if not title:
        raise UnusableEntry(f"{key} has no title")
    return replace(
        paper,
        id=key,
        title=title,
        abstract=valid_text(paper.abstract, ABSTRACT_CHARS),
        authors=valid_list(paper.authors, NAME_CHARS, MAX_AUTHORS),
        url=valid_url(paper.url),
        arxiv_url=valid_url(paper.arxiv_url),
        pdf_url=valid_url(paper.pdf_url),
        code_url=valid_url(paper.code_url),
        upvotes=valid_count(paper.upvotes),
        published=valid_text(paper.published, DATE_CHARS),
        categories=valid_list(paper.categories, SHORT_CHARS, MAX_CATEGORIES),
        sources=valid_list(paper.sources, SHORT_CHARS, MAX_SOURCES),
        announce_type=valid_text(paper.announce_type, SHORT_CHARS),
        ai_summary=valid_text(paper.ai_summary, SUMMARY_CHARS),
        organization=valid_text(paper.organization, NAME_CHARS),
        comments=valid_count(paper.comments),
        stars=valid_count(paper.stars),
    )


def valid_key(value: object) -> str:
    """A paper key (an arXiv id or a normalised link): valid one-line text, no word bound."""
    return valid_text(value, URL_CHARS, word_limit=None)


def valid_list(values: object, limit: int, most: int) -> list[str]:
    """The non-empty valid strings of `values`, each at most `limit` characters, at most
    `most` of them, in order (two authors may share a name: nothing is deduplicated)."""
    if not isinstance(values, list | tuple):
        return []
    out: list[str] = []
    for value in values:
        text = valid_text(value, limit)
        if text:
            out.append(text)
            if len(out) == most:
                break
    return out


def valid_count(value: object) -> int | None:
    """A count as a source may give it: an int in 0..10**12, else None (bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_COUNT else None
