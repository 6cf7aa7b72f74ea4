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
    # What the HF data adds, when the source has it (the email shows them):
    ai_summary: str = ""  # HF's one-sentence AI summary
    organization: str = ""  # the submitting organisation's display name
    comments: int | None = None  # HF numComments
    stars: int | None = None  # GitHub stars of the code repository


@dataclass(frozen=True)
class Reason:
    """One reason a paper is in a digest, as the ranking found it (the email and `explain`
    show these; the email highlights `terms` in the field named by `where`)."""

    kind: str  # "term" | "author" | "like" | "meaning" | "upvotes"
    text: str  # short, for people: "title: LLM agents", "close to a paper you liked"
    terms: tuple[str, ...] = ()  # the exact spellings found in the paper's text, to highlight
    where: str = ""  # "title" | "abstract" | "authors" | ""


@dataclass
class RankedPaper:
    paper: Paper
    score: float
    matched: list[str]  # the profile terms that matched, strongest first
    followed_authors: list[str] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    # The parts of the score ("lexical", "semantic", "likes", ...), for preview --json / explain.
    score_parts: dict[str, float] = field(default_factory=dict)


@dataclass
class PaperLinks:
    """The reader's per-paper links to the web side (empty when [web] is not configured)."""

    more: str = ""  # "more like this": a signed link to a confirm page
    less: str = ""  # "less like this"


@dataclass
class DigestLinks:
    """Signed links to the web side for one digest (all empty when [web] is not configured)."""

    view: str = ""  # the digest in a browser
    profile: str = ""  # the reader's profile page ("": the footer says who changes interests)
    papers: dict[str, PaperLinks] = field(default_factory=dict)  # by paper id


@dataclass
class DigestContent:
    """What one subscriber gets on one digest date: the input of rendering."""

    subscriber_email: str
    subscriber_name: str
    digest_date: date
    papers: list[RankedPaper]
    candidates_count: int  # new papers considered before the cut
    unsubscribe_mailto: str = ""
    unsubscribe_url: str = ""  # https one-click (the web side's signed link when [web] is set)
    # The reader's profile, strongest first: empty means no keywords (ranked by upvotes only).
    profile: list[tuple[str, float]] = field(default_factory=list)
    # The day's most upvoted new papers this reader did not get ("trending today").
    trending: list[Paper] = field(default_factory=list)
    links: DigestLinks = field(default_factory=DigestLinks)
    weekly: bool = False  # the reader's weekly digest: the week's papers, worded so


@dataclass
class RenderedDigest:
    subject: str
    text: str
    html: str
    preheader: str = ""
