"""What the templates see: a paper cleaned once per run (`CleanPaper`) and one digest entry
(`Entry`: the cleaned paper plus this reader's reasons, highlights and links). Plain values, no
decisions left for the templates."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from markupsafe import Markup

from digest.ids import arxiv_abs_url, arxiv_pdf_url, is_arxiv_id
from digest.models import Paper, PaperLinks, RankedPaper
from digest.render.clean import (
    TITLE_CHARS,
    clean,
    cut_at_sentence,
    first_sentence,
    safe_url,
    trim,
)
from digest.render.highlight import mark_terms

MAX_AUTHORS = 4  # then "et al."
ABSTRACT_CHARS = 300  # the abstract is cut near here, at a sentence end
LIST_TITLE_CHARS = 90  # titles in the numbered list at the top
TRENDING_LINE_CHARS = 140
WHY_CHARS = 64  # the "Why:" line: one line on a phone
WHY_TERMS = 3
LIKED_TITLE_CHARS = 32
_HIGHLIGHTED = ("title", "abstract")


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class CleanPaper:
    """A paper's strings cleaned once: no control/bidi characters, LaTeX readable, sizes capped,
    URLs checked."""

    id: str
    title: str
    short_title: str  # for the numbered list and the subject
    abstract: str
    summary: str  # HF's one-sentence AI summary
    authors: tuple[str, ...]
    organization: str
    url: str  # the title's link
    links: tuple[Link, ...]  # the buttons: arXiv, PDF, code (the page itself when it is not HF)
    upvotes: int | None
    comments: int | None
    stars: int | None

    @property
    def one_line(self) -> str:
        """One line about the paper (trending today): the AI summary, else the first sentence."""
        return trim(self.summary, TRENDING_LINE_CHARS) or first_sentence(
            self.abstract, TRENDING_LINE_CHARS
        )


def paper_key(p: Paper) -> tuple[object, ...]:
    """What a CleanPaper depends on (the same id may come with other data in another run)."""
    return (
        p.id, p.title, p.abstract, p.ai_summary, tuple(p.authors), p.organization, p.url,
        p.arxiv_url, p.pdf_url, p.code_url, p.upvotes, p.comments, p.stars,
    )  # fmt: skip


def clean_paper(p: Paper) -> CleanPaper:
    title = clean(p.title, TITLE_CHARS) or clean(p.id, TITLE_CHARS)
    arxiv_id = p.id if is_arxiv_id(p.id) else ""
    arxiv = safe_url(p.arxiv_url) or (arxiv_abs_url(arxiv_id) if arxiv_id else "")
    pdf = safe_url(p.pdf_url) or (arxiv_pdf_url(arxiv_id) if arxiv_id else "")
    code = safe_url(p.code_url)
    page = safe_url(p.url)
    links: list[Link] = []
    url = page or arxiv or pdf
    if page and page not in (arxiv, pdf):
        host = (urlsplit(page).hostname or "").lower()
        if not host.endswith("huggingface.co"):
            links.append(Link("Paper page", page))
    if arxiv:
        links.append(Link("arXiv", arxiv))
    if pdf:
        links.append(Link("PDF", pdf))
    if code:
        links.append(Link("Code", code))
    return CleanPaper(
        id=p.id,
        title=title,
        short_title=trim(title, LIST_TITLE_CHARS),
        abstract=clean(p.abstract),
        summary=clean(p.ai_summary, 400),
        authors=tuple(a for a in (clean(name, 120) for name in p.authors[:200]) if a),
        organization=clean(p.organization, 80),
        url=url,
        links=tuple(links),
        upvotes=p.upvotes,
        comments=p.comments,
        stars=p.stars,
    )


@dataclass(frozen=True)
class Why:
    """Why one paper is in one digest: the reason line and the terms to mark, per field."""

    line: str  # "title: LLM agents · abstract: reasoning · close to a paper you liked"
    title_terms: tuple[str, ...]
    abstract_terms: tuple[str, ...]
    followed: frozenset[str]  # casefolded names of followed authors
    exact: bool = False  # the terms are spellings the ranking found: mark whole words only


def why(ranked: RankedPaper, paper: CleanPaper) -> Why:
    """From the ranking's reasons; without them (an older ranker), from `matched`."""
    followed = frozenset(clean(a, 120).casefold() for a in ranked.followed_authors)
    if ranked.reasons:
        terms: dict[str, list[str]] = {"title": [], "abstract": []}
        for reason in ranked.reasons:
            if reason.where in _HIGHLIGHTED:
                terms[reason.where] += [clean(t, 120) for t in reason.terms]
        return Why(
            why_line(ranked),
            tuple(terms["title"]),
            tuple(terms["abstract"]),
            followed,
            exact=True,
        )
    parts: list[str] = []
    seen: set[str] = set()
    title, abstract = paper.title.casefold(), paper.abstract.casefold()
    matched = [clean(t, 120) for t in ranked.matched]
    for term in matched:
        key = term.casefold()
        if not term or key in seen or key in followed or key.removeprefix("author: ") in followed:
            continue
        seen.add(key)
        where = "title" if key in title else "abstract" if key in abstract else ""
        parts.append(f"{where}: {term}" if where else term)
    for author in ranked.followed_authors:
        label = f"author: {clean(author, 120)}"
        if label.casefold() not in seen:
            seen.add(label.casefold())
            parts.append(label)
    terms_ = tuple(t for t in matched if t and t.casefold() not in followed)
    return Why(" · ".join(parts), terms_, terms_, followed)


def why_line(ranked: RankedPaper) -> str:
    """One short line (it fits a phone's width): the keywords found, each once, then what
    else spoke for the paper: "LLM agents, benchmark · like “WebChallenger: A Reliable…”"."""
    found: list[str] = []
    more: list[str] = []
    for reason in ranked.reasons:
        if reason.kind == "term":
            for label in clean(reason.text, 120).split(": ", 1)[-1].split(", "):
                if label and label.casefold() not in {f.casefold() for f in found}:
                    found.append(label)
        elif reason.kind == "like" and reason.terms:
            more.append(f"like “{trim(clean(reason.terms[0], 120), LIKED_TITLE_CHARS)}”")
        elif reason.kind == "meaning" and not found:
            more.append("close in meaning to your keywords")
        elif reason.kind == "author":
            more.append(f"by {trim(clean(reason.terms[0] if reason.terms else '', 60), 30)}")
        elif reason.kind == "upvotes":
            more.append(trim(clean(reason.text, 60), 30))
    parts = [", ".join(found[:WHY_TERMS])] if found else []
    parts += list(dict.fromkeys(more))
    return trim(" · ".join(parts), WHY_CHARS)


@dataclass(frozen=True)
class Author:
    name: str
    followed: bool


@dataclass(frozen=True)
class Level:
    """How much of each paper the HTML shows; lower levels fit long digests under the clip."""

    abstract_chars: int
    summary: bool
    authors: int
    buttons: bool = True


LEVELS = (
    Level(ABSTRACT_CHARS, True, MAX_AUTHORS),
    Level(180, True, MAX_AUTHORS),
    Level(0, True, 3),
    Level(0, False, 2),
    Level(0, False, 0, buttons=False),  # past 30 papers: title, meta and reasons only
)


@dataclass
class Entry:
    """One paper of one digest, as paper.html.j2 and paper.txt.j2 see it."""

    id: str
    title: str
    title_html: Markup
    url: str
    page: str  # the title's link when no button has it (the plain text lists it as "Page:")
    meta: list[str]  # "University of Oxford", "▲ 42", "3 comments", "★ 120"
    authors: list[Author]
    et_al: bool
    summary: str
    why: str
    abstract: str  # as cut for this level (plain)
    abstract_html: Markup
    abstract_cut: bool
    links: list[Link]
    more_like_this: str
    less_like_this: str


def entry(paper: CleanPaper, reasons: Why, links: PaperLinks, level: Level) -> Entry:
    abstract, cut = (
        cut_at_sentence(paper.abstract, level.abstract_chars)
        if level.abstract_chars
        else ("", bool(paper.abstract))
    )
    meta = [paper.organization] if paper.organization else []
    if paper.upvotes is not None:
        meta.append(f"▲ {paper.upvotes}")
    if paper.comments:
        meta.append(f"{paper.comments} comment{'' if paper.comments == 1 else 's'}")
    if paper.stars:
        meta.append(f"★ {paper.stars}")
    shown = list(paper.authors[: level.authors])
    if reasons.followed and level.authors:  # a followed author is always shown, even 9th
        shown += [a for a in paper.authors[level.authors :] if a.casefold() in reasons.followed]
    return Entry(
        id=paper.id,
        title=paper.title,
        title_html=mark_terms(paper.title, reasons.title_terms, exact=reasons.exact),
        url=paper.url,
        page="" if any(link.url == paper.url for link in paper.links) else paper.url,
        meta=meta,
        authors=[Author(a, a.casefold() in reasons.followed) for a in shown],
        et_al=len(paper.authors) > len(shown) > 0,
        summary=paper.summary if level.summary else "",
        why=reasons.line,
        abstract=abstract,
        abstract_html=mark_terms(abstract, reasons.abstract_terms, exact=reasons.exact),
        abstract_cut=cut,
        links=list(paper.links) if level.buttons else [],
        more_like_this=safe_url(links.more),
        less_like_this=safe_url(links.less),
    )
