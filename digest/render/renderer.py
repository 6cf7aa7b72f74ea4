"""The Renderer: a DigestContent -> subject, preheader, plain text and HTML.

Built once per run (and once per worker process: it pickles as its settings and rebuilds), it
loads the templates and inlines their CSS once, cleans each paper's strings once, and caches
each paper's HTML and text by (paper, reasons, highlights, links, level), so a digest costs
little more than joining cached pieces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from digest.models import DigestContent, Paper, PaperLinks, RankedPaper, RenderedDigest
from digest.render import words
from digest.render.clean import clean, safe_url
from digest.render.templating import make_environment
from digest.render.views import (
    LEVELS,
    CleanPaper,
    Entry,
    Level,
    Why,
    clean_paper,
    entry,
    paper_key,
    why,
)

# Gmail clips messages whose HTML is larger than about 102 KB. Stay under it as UTF-8, and as
# sent: quoted-printable ("=" becomes "=3D", non-ASCII bytes triple) or base64 (4/3).
HTML_BUDGET_BYTES = 92_000
WIRE_BUDGET_BYTES = 95_000
TRENDING_MAX = 5
CACHE_ENTRIES = 5_000  # per cache, cleared when full: a few hundred papers × a few reason sets

# Stands for a paper's number in its cached fragments; filled in per digest. Control characters
# never survive cleaning, so page data cannot contain it (and these two are not whitespace).
NUMBER = "\x02\x03"
_EMPTY_LINKS = PaperLinks()


class Renderer:
    """Renders digests with the shipped templates, or those of `templates_dir` over them."""

    def __init__(self, templates_dir: Path | str | None = None) -> None:
        self.templates_dir = Path(templates_dir) if templates_dir is not None else None
        env = make_environment(self.templates_dir)
        # Loading a template inlines its CSS: done here, once.
        self._digest_html = env.get_template("digest.html.j2")
        self._digest_text = env.get_template("digest.txt.j2")
        self._paper_html = env.get_template("paper.html.j2")
        self._paper_text = env.get_template("paper.txt.j2")
        self._papers: dict[tuple[object, ...], CleanPaper] = {}
        self._html: dict[tuple[object, ...], str] = {}
        self._text: dict[tuple[object, ...], str] = {}
        self._whys: dict[tuple[object, ...], Why] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its settings: a worker process builds its own templates and caches.
        return (Renderer, (self.templates_dir,))

    # --- public ------------------------------------------------------------------------------

    def render(self, content: DigestContent) -> RenderedDigest:
        papers = [self.clean(r.paper) for r in content.papers]
        reasons = [self._why(r, p) for r, p in zip(content.papers, papers, strict=True)]
        titles = [p.title for p in papers]
        ranked = bool(content.profile) or any(r.matched or r.reasons for r in content.papers)
        topics = words.topic_counts([_topic(r) for r in content.papers])
        weekly = content.weekly
        subject = words.subject(titles, content.digest_date, weekly=weekly)
        preheader = words.preheader(titles, topics, ranked=ranked, weekly=weekly)
        chosen = {p.id for p in papers}
        trending = [self.clean(p) for p in content.trending if p.id not in chosen][:TRENDING_MAX]
        address = content.unsubscribe_mailto
        mailto = mailto_unsubscribe(address) if address else ""
        unsubscribe = safe_url(content.unsubscribe_url) or mailto
        base = {
            "subject": subject,
            "preheader": preheader,
            "day": words.day_label(content.digest_date),
            "date": content.digest_date.isoformat(),
            "name": clean(content.subscriber_name, 80),
            "email": content.subscriber_email,
            "count": len(papers),
            "candidates": content.candidates_count,
            "ranked": ranked,
            "lead": words.lead_in(
                len(papers),
                topics,
                ranked=ranked,
                candidates=content.candidates_count,
                weekly=weekly,
            ),
            "weekly": weekly,
            "toc": [(n, p.short_title) for n, p in enumerate(papers, 1)],
            "trending": [t for t in trending if t.url],
            "profile_line": words.profile_line([(clean(t, 80), w) for t, w in content.profile]),
            "unsubscribe": unsubscribe,
            "unsubscribe_mailto": mailto if mailto != unsubscribe else "",
            "view": safe_url(content.links.view),
            "profile": safe_url(content.links.profile),
        }
        links = [content.links.papers.get(r.paper.id, _EMPTY_LINKS) for r in content.papers]
        parts = list(zip(papers, reasons, links, strict=True))
        views: dict[tuple[object, ...], Entry] = {}  # a paper's, from its text to its HTML

        text_papers = [
            (n, _number(self._paper_fragment(p, w, ln, LEVELS[0], views, text=True), n, text=True))
            for n, (p, w, ln) in enumerate(parts, 1)
        ]
        text = self._digest_text.render(base, papers=text_papers)

        html = ""
        for level in LEVELS:
            html_papers = [
                (
                    n,
                    Markup(
                        _number(
                            self._paper_fragment(p, w, ln, level, views, text=False), n, text=False
                        )
                    ),
                )
                for n, (p, w, ln) in enumerate(parts, 1)
            ]
            html = _squeeze(self._digest_html.render(base, papers=html_papers))
            if _fits(html):
                break
        return RenderedDigest(subject=subject, text=text, html=html, preheader=preheader)

    def clean(self, paper: Paper) -> CleanPaper:
        """The paper's strings cleaned (once per run per paper)."""
        key = paper_key(paper)
        cleaned = self._papers.get(key)
        if cleaned is None:
            if len(self._papers) >= CACHE_ENTRIES:
                self._papers.clear()
            cleaned = self._papers[key] = clean_paper(paper)
        return cleaned

    # --- pieces ------------------------------------------------------------------------------

    def _why(self, ranked: RankedPaper, paper: CleanPaper) -> Why:
        # Readers with the same profile get the same reasons: clean them once.
        key = (paper, tuple(ranked.reasons), tuple(ranked.matched), tuple(ranked.followed_authors))
        found = self._whys.get(key)
        if found is None:
            if len(self._whys) >= CACHE_ENTRIES:
                self._whys.clear()
            found = self._whys[key] = why(ranked, paper)
        return found

    def _paper_fragment(
        self,
        paper: CleanPaper,
        reasons: Why,
        links: PaperLinks,
        level: Level,
        views: dict[tuple[object, ...], Entry],
        *,
        text: bool,
    ) -> str:
        """The paper's cached fragment; `views` holds the digest's paper views, so a paper's
        view is built once for its text and HTML fragments."""
        key = (paper, reasons, links.more, links.less, level)
        cache = self._text if text else self._html
        fragment = cache.get(key)
        if fragment is None:
            if len(cache) >= CACHE_ENTRIES:
                cache.clear()
            view = views.get(key)
            if view is None:
                view = views[key] = entry(paper, reasons, links, level)
            template = self._paper_text if text else self._paper_html
            rendered = template.render(p=view, number=NUMBER)
            fragment = cache[key] = rendered.rstrip("\n") if text else _squeeze(rendered)
        return fragment


def mailto_unsubscribe(address: str) -> str:
    """mailto:ADDR?subject=unsubscribe, URL-encoded."""
    return f"mailto:{quote(address, safe='@+')}?subject=unsubscribe"


def _topic(ranked: RankedPaper) -> str:
    """A paper's main topic for the lead-in: its strongest matched profile term."""
    for term in ranked.matched:
        term = clean(term, 60)
        if term and not term.casefold().startswith("author: "):
            return term
    return ""


def _number(fragment: str, n: int, *, text: bool) -> str:
    if text:  # "3. " keeps the width of "12." so the hanging indent stays aligned
        fragment = fragment.replace(NUMBER + ".", f"{n}." if n >= 10 else f"{n}. ")
    return fragment.replace(NUMBER, str(n))


def _fits(html: str) -> bool:
    """Under the budget as UTF-8 and, estimated, as the message's transfer encoding."""
    data = html.encode("utf-8")
    if len(data) > HTML_BUDGET_BYTES:
        return False
    non_ascii = len(data) - len(html.encode("ascii", "ignore"))
    quoted = len(data) + 2 * (html.count("=") + non_ascii) + 3 * len(data) // 76
    base64 = (len(data) + 2) // 3 * 4 * 78 // 76
    return min(quoted, base64) <= WIRE_BUDGET_BYTES


def _squeeze(html: str) -> str:
    """Template line breaks and indentation are only bytes on the wire."""
    return "\n".join(line.strip() for line in html.splitlines() if line.strip()) + "\n"
