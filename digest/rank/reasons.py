"""Why a paper is in a digest, in words the email and `digest explain` can show."""

from __future__ import annotations

from collections.abc import Sequence

from digest.models import Paper, Reason
from digest.rank.lexical import FIELDS, Index, Term


def term_reasons(index: Index, row: int, terms: Sequence[Term]) -> list[Reason]:
    """One reason per (term, field) that matched, with the spellings found in that field."""
    doc = index.docs[row]
    texts = (doc.paper.title, doc.paper.abstract)
    out: list[Reason] = []
    for term in terms:
        spans = index.hits(term).spans.get(row)
        if spans:
            out += _by_field(spans, texts, term.label)
    return out


def _by_field(
    spans: list[tuple[int, int, int]], texts: tuple[str, str], shown: str
) -> list[Reason]:
    out: list[Reason] = []
    for f, where in enumerate(FIELDS):
        found: list[str] = []
        for field, start, end in spans:
            if field == f and (text := texts[f][start:end]) not in found:
                found.append(text)
        if found:
            out.append(Reason("term", f"{where}: {shown}", terms=tuple(found), where=where))
    return out


def author_reasons(authors: Sequence[str]) -> list[Reason]:
    return [Reason("author", f"by {name}, whom you follow", (name,), "authors") for name in authors]


def like_reason(liked: Sequence[Paper]) -> list[Reason]:
    """The liked papers (one or two, closest first) this one is close to."""
    if not liked:
        return []
    titles = " and ".join(f"“{p.title}”" for p in liked)
    what = "a paper" if len(liked) == 1 else "papers"
    return [
        Reason("like", f"close to {what} you liked: {titles}", terms=tuple(p.title for p in liked))
    ]


def meaning_reason(keyword: str = "") -> list[Reason]:
    """Close in meaning to the profile; `keyword`: to this keyword above all (its title)."""
    if keyword:
        return [Reason("meaning", f"close in meaning to your keyword “{keyword}”", (keyword,))]
    return [Reason("meaning", "close in meaning to your keywords")]


def upvote_reason(upvotes: int | None) -> list[Reason]:
    if not upvotes:
        return []
    return [Reason("upvotes", f"{upvotes} upvotes on Hugging Face")]
