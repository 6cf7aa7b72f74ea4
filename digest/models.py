"""Plain data passed between the stages. No behaviour beyond small derived values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass
class Paper:
    """One paper, keyed by its arXiv id without version (or its normalised link)."""

    id: str
    title: str
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    url: str = ""  # the paper's page: https://huggingface.co/papers/<id> for HF papers
    arxiv_url: str = ""  # https://arxiv.org/abs/<id> when on arXiv
    pdf_url: str = ""
    code_url: str = ""
    upvotes: int | None = None  # HF only
    published: str = ""  # ISO date or datetime as the source gave it
    categories: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # source names that listed it
    # arXiv RSS announce type of this listing ("new", "cross", "replace", ...), "" when unknown
    announce_type: str = ""


@dataclass
class RankedPaper:
    paper: Paper
    score: float
    matched: list[str]  # the profile terms that matched, strongest first
    followed_authors: list[str] = field(default_factory=list)


@dataclass
class DigestContent:
    """What one subscriber gets on one digest date: the input of rendering."""

    subscriber_email: str
    subscriber_name: str
    digest_date: date
    papers: list[RankedPaper]
    candidates_count: int  # new papers considered before the cut
    unsubscribe_mailto: str = ""
    unsubscribe_url: str = ""


@dataclass
class RenderedDigest:
    subject: str
    text: str
    html: str
    preheader: str = ""
