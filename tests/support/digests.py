"""Digest contents for the rendering, message and screenshot tests: real papers from the HF
fixture, and hostile ones (10 KB titles, 300-character words, control and bidi characters)."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from digest.models import DigestContent, DigestLinks, Paper, RankedPaper, Reason
from digest.sources.hf_items import papers_from_items
from tests.support.helpers import hf_items

DAY = date(2026, 6, 12)  # a Friday
LONG_WORD = "Supercalifragilistic" * 15  # 300 characters, no break opportunity
# C0 controls, DEL, C1, and every bidi embedding/override/isolate the issue names.
CONTROL = "\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85\x9b"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
FORBIDDEN = set(CONTROL + BIDI)
HOSTILE_FIELDS = ("title", "abstract", "authors")


def load_papers() -> list[Paper]:
    """The 30 papers of a real HF daily_papers response, parsed by the hf-api source (with AI
    summaries, organisations and comment counts)."""
    papers, problems = papers_from_items(hf_items(), "hf-api")
    assert not problems
    return papers


def more_papers() -> list[Paper]:
    """Papers of another real day (GitHub stars, code links)."""
    items = hf_items("hf_api_daily_papers_date-2026-08-19_newsletter-chinese.json")
    return papers_from_items(items, "hf-api")[0]


def rank(
    papers: list[Paper],
    *,
    matched: list[str] | None = None,
    followed: list[str] | None = None,
    reasons: bool = True,
) -> list[RankedPaper]:
    """RankedPapers as the ranker gives them: with reasons naming the terms found in the title
    or abstract (exact spellings), or (reasons=False) only `matched`, as an older ranker."""
    terms = matched if matched is not None else ["language model", "agents", "reasoning"]
    ranked = []
    for i, p in enumerate(papers):
        why: list[Reason] = []
        for where, text in (("title", p.title), ("abstract", p.abstract)):
            found = [_spelling(text, t) for t in terms if t.casefold() in text.casefold()]
            if found:
                why.append(Reason("term", f"{where}: {', '.join(terms_ for terms_ in found)}",
                                  terms=tuple(found), where=where))  # fmt: skip
        ranked.append(
            RankedPaper(
                paper=p,
                score=10.0 - i,
                matched=[t for t in terms if t.casefold() in (p.title + p.abstract).casefold()]
                or list(terms[:1]),
                followed_authors=list(followed or []),
                reasons=why if reasons else [],
            )
        )
    return ranked


def _spelling(text: str, term: str) -> str:
    at = text.casefold().index(term.casefold())
    return text[at : at + len(term)]


def make_content(
    papers: list[Paper],
    *,
    name: str = "Ada",
    candidates: int | None = None,
    unsubscribe_url: str = "",
    unsubscribe_mailto: str = "digest-admin@example.org",
    matched: list[str] | None = None,
    followed: list[str] | None = None,
    reasons: bool = True,
    profile: list[tuple[str, float]] | None = None,
    trending: list[Paper] | None = None,
    links: DigestLinks | None = None,
) -> DigestContent:
    return DigestContent(
        subscriber_email="ada@example.org",
        subscriber_name=name,
        digest_date=DAY,
        papers=rank(papers, matched=matched, followed=followed, reasons=reasons),
        candidates_count=len(papers) if candidates is None else candidates,
        unsubscribe_mailto=unsubscribe_mailto,
        unsubscribe_url=unsubscribe_url,
        profile=profile
        if profile is not None
        else [("language model", 3.0), ("agents", 2.0), ("reasoning", 1.0)],
        trending=trending or [],
        links=links or DigestLinks(),
    )


def hostile_items(n: int = 30) -> list[dict[str, Any]]:
    """HF API items whose text is hostile: 10 KB titles, 300-character words, control and bidi
    characters, LaTeX, HTML; ids and links stay real so every paper can be found again."""
    base = hf_items() + hf_items("hf_api_daily_papers_date-2026-08-19_newsletter-chinese.json")
    items = []
    for i in range(n):
        item = copy.deepcopy(base[i % len(base)])
        paper = item["paper"]
        paper["id"] = f"2611.{10000 + i}"
        kind = i % 4
        if kind == 0:
            paper["title"] = f"Hostile {i}: {LONG_WORD} " + "very long title " * 640  # ~10 KB
        elif kind == 1:
            paper["title"] = f"Hostile {i}: {BIDI}evil{CONTROL} <b>bold</b> & \u202eoverride"
        elif kind == 2:
            paper["title"] = f"Hostile {i}: $\\mathcal{{O}}(n^2)$ attention with \\alpha-decay"
        else:
            paper["title"] = f"Hostile {i}: {LONG_WORD}"
        paper["summary"] = f"{CONTROL}{BIDI}" + LONG_WORD + " " + paper["summary"] * 8
        authors = paper.get("authors") or [{"name": "A. Author"}]
        authors[0]["name"] = f"Mallory{BIDI}\u202e{CONTROL}"
        paper["authors"] = authors
        if paper.get("ai_summary"):
            paper["ai_summary"] = LONG_WORD + BIDI + " " + paper["ai_summary"]
        item["title"] = paper["title"]
        items.append(item)
    return items


def hostile_papers(n: int = 30) -> list[Paper]:
    return papers_from_items(hostile_items(n), "hf-api")[0]
