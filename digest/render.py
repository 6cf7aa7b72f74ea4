"""Render a DigestContent into subject, plain text and HTML.

    def render_digest(content: DigestContent) -> RenderedDigest

The layout lives in templates/ (shipped as the package ``digest.templates``):
``digest.txt.j2`` (plain text), ``digest.html.j2`` (HTML) and ``digest.css.j2`` (the
stylesheet the HTML includes; css-inline then moves it into style="" attributes and keeps only
the dark-mode @media block in a <style> tag). This module prepares plain values for them: the
templates make no decisions beyond layout.

Everything taken from a page (titles, authors, abstracts, URLs) is escaped by jinja2's
autoescaping in the HTML; URLs that are not http(s) are dropped. The HTML is kept under Gmail's
102 KB clipping limit by trimming abstracts harder when a digest is long.
"""

from __future__ import annotations

import functools
import re
import textwrap
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import css_inline
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from digest.models import DigestContent, RankedPaper, RenderedDigest
from digest.sources.ids import arxiv_abs_url, arxiv_pdf_url, is_arxiv_id
from digest.sources.text import collapse

TEMPLATE_PACKAGE = "digest.templates"
HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"

# Gmail clips messages whose HTML is larger than about 102 KB. Stay well under it, with room
# for the quoted-printable transfer encoding (each "=" becomes "=3D", plus soft line breaks).
HTML_BUDGET_BYTES = 85_000
ABSTRACT_CHARS = 600  # abstracts are trimmed to this many characters, at a word boundary
MAX_AUTHORS = 6  # then "et al."
# When even a digest without abstracts is over the budget: fewer authors, then none.
COMPACT_AUTHORS = (3, 0)
PREHEADER_CHARS = 110
TEXT_WIDTH = 72

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Author:
    name: str
    followed: bool = False


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass
class PaperView:
    """One paper as the templates see it: clean strings, safe URLs, no decisions left."""

    number: int
    title: str
    url: str  # the title's link; "" when the paper has no usable URL
    authors: list[Author]
    et_al: bool
    reasons: list[str]  # why it matched: the terms, then "author: X" for followed authors
    abstract: str  # trimmed for the HTML
    text_abstract: str  # trimmed for the plain text part (never trimmed harder for size)
    links: list[Link] = field(default_factory=list)
    upvotes: int | None = None
    id: str = ""  # the paper's key, to find its web links (content.links.papers)

    @property
    def more_links(self) -> list[Link]:
        """The links besides the title's own (the HTML links the title already)."""
        return [link for link in self.links if link.url != self.url]


# --- environment (built once) ----------------------------------------------------------------


@functools.cache
def environment() -> Environment:
    """The jinja2 environment for the email templates, loaded from the installed package."""
    env = Environment(
        loader=PackageLoader(TEMPLATE_PACKAGE, ""),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2", "html"),
            disabled_extensions=("txt.j2", "css.j2", "txt"),
            default=True,
            default_for_string=True,
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["wrap"] = wrap
    return env


@functools.cache
def _inliner() -> css_inline.CSSInliner:
    # keep_at_rules: the dark-mode @media block stays in a <style> tag (it cannot be inlined).
    return css_inline.CSSInliner(keep_at_rules=True, minify_css=True, load_remote_stylesheets=False)


# --- public API ------------------------------------------------------------------------------


def render_digest(content: DigestContent) -> RenderedDigest:
    """Subject, plain text and HTML (CSS inlined, under the clipping limit) for one digest."""
    subject = make_subject(content)
    preheader = make_preheader(content)
    unsubscribe = unsubscribe_link(content.unsubscribe_url, content.unsubscribe_mailto)
    mailto = mailto_unsubscribe(content.unsubscribe_mailto) if content.unsubscribe_mailto else ""
    base = {
        "subject": subject,
        "preheader": preheader,
        "name": collapse(content.subscriber_name),
        "email": content.subscriber_email,
        "date": content.digest_date.isoformat(),
        "count": len(content.papers),
        "candidates": content.candidates_count,
        "unsubscribe": unsubscribe,
        # The mailto alternative, shown besides a web unsubscribe link.
        "unsubscribe_mailto": mailto if mailto != unsubscribe else "",
        "links": content.links,  # signed web links (view, more / less like this), if any
    }
    env = environment()

    text_papers = paper_views(content.papers, ABSTRACT_CHARS)
    text = env.get_template(TEXT_TEMPLATE).render(base, papers=text_papers)

    html = _fit_html(env, base, content.papers)
    return RenderedDigest(subject=subject, text=text, html=html, preheader=preheader)


def make_subject(content: DigestContent) -> str:
    day = content.digest_date.isoformat()
    n = len(content.papers)
    if n == 0:
        return f"Paper digest {day}: nothing new today"
    return f"Paper digest {day}: {n} new {'paper' if n == 1 else 'papers'}"


def make_preheader(content: DigestContent) -> str:
    """The inbox preview line: "12 new papers: Title A, Title B…"."""
    n = len(content.papers)
    if n == 0:
        return "Nothing new today."
    head = f"{n} new {'paper' if n == 1 else 'papers'}: "
    titles = ", ".join(collapse(r.paper.title) for r in content.papers)
    return head + trim(titles, max(PREHEADER_CHARS - len(head), 20))


def unsubscribe_link(url: str, mailto_address: str) -> str:
    """The link a reader follows to unsubscribe: the web URL if set, else a mailto: link."""
    if url:
        return url
    return mailto_unsubscribe(mailto_address) if mailto_address else ""


def mailto_unsubscribe(address: str) -> str:
    """mailto:ADDR?subject=unsubscribe, URL-encoded."""
    return f"mailto:{quote(address, safe='@+')}?subject=unsubscribe"


# --- view model ------------------------------------------------------------------------------


def paper_views(
    papers: list[RankedPaper],
    abstract_limit: int = ABSTRACT_CHARS,
    *,
    text_limit: int = ABSTRACT_CHARS,
    max_authors: int = MAX_AUTHORS,
) -> list[PaperView]:
    return [
        paper_view(i, r, abstract_limit, text_limit=text_limit, max_authors=max_authors)
        for i, r in enumerate(papers, 1)
    ]


def paper_view(
    number: int,
    ranked: RankedPaper,
    abstract_limit: int = ABSTRACT_CHARS,
    *,
    text_limit: int = ABSTRACT_CHARS,
    max_authors: int = MAX_AUTHORS,
) -> PaperView:
    p = ranked.paper
    arxiv_id = p.id if is_arxiv_id(p.id) else ""
    arxiv = safe_url(p.arxiv_url) or (arxiv_abs_url(arxiv_id) if arxiv_id else "")
    pdf = safe_url(p.pdf_url) or (arxiv_pdf_url(arxiv_id) if arxiv_id else "")
    code = safe_url(p.code_url)
    page = safe_url(p.url)

    links: list[Link] = []
    if page and page not in (arxiv, pdf):
        host = (urlsplit(page).hostname or "").lower()
        label = "Hugging Face" if host.endswith("huggingface.co") else "Paper page"
        links.append(Link(label, page))
    if arxiv:
        links.append(Link("arXiv", arxiv))
    if pdf:
        links.append(Link("PDF", pdf))
    if code:
        links.append(Link("Code", code))

    followed = {collapse(a).casefold() for a in ranked.followed_authors}
    names = [collapse(a) for a in p.authors if collapse(a)]
    authors = [Author(n, n.casefold() in followed) for n in names[:max_authors]]

    abstract = collapse(p.abstract)
    return PaperView(
        number=number,
        title=collapse(p.title) or p.id,
        url=page or arxiv or pdf,
        authors=authors,
        et_al=len(names) > max_authors > 0,
        reasons=reasons(ranked),
        abstract=trim(abstract, abstract_limit),
        text_abstract=trim(abstract, text_limit),
        links=links,
        upvotes=p.upvotes,
        id=p.id,
    )


def reasons(ranked: RankedPaper) -> list[str]:
    """Why a paper is in the digest: the matched terms, then "author: X" per followed author."""
    out: list[str] = []
    seen: set[str] = set()
    authors = {collapse(a).casefold() for a in ranked.followed_authors}
    for term in ranked.matched:
        term = collapse(term)
        key = term.casefold()
        # A ranker may also list a followed author among the terms; show it once, as author.
        if not term or key in seen or key in authors or key.removeprefix("author: ") in authors:
            continue
        seen.add(key)
        out.append(term)
    for author in ranked.followed_authors:
        label = f"author: {collapse(author)}"
        if label.casefold() not in seen:
            seen.add(label.casefold())
            out.append(label)
    return out


# --- small helpers ---------------------------------------------------------------------------


def trim(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters at a word boundary, ending in "…"."""
    text = collapse(text)
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + "…"


def safe_url(url: str) -> str:
    """An http(s) URL fit for an href and a text line, or "" (javascript: and the like)."""
    url = url.strip()
    if not url or _CONTROL.search(url):
        return ""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return ""
    return url.replace(" ", "%20")


def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "", first: str | None = None) -> str:
    """textwrap.fill as a template filter: `{{ s | wrap(72, "   ") }}`."""
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _fit_html(env: Environment, base: dict[str, object], papers: list[RankedPaper]) -> str:
    """The HTML with abstracts as long as the size budget allows (up to ABSTRACT_CHARS)."""
    html = _render_html(env, base, paper_views(papers))
    if _size(html) <= HTML_BUDGET_BYTES:
        return html  # the usual case: one render
    bare = _render_html(env, base, paper_views(papers, 0))
    room = HTML_BUDGET_BYTES - _size(bare)
    with_abstract = sum(1 for r in papers if r.paper.abstract.strip()) or 1
    # Bytes per abstract, less its <p style=...> markup, with a margin for escaping (&amp;).
    limit = min(ABSTRACT_CHARS - 1, int((room / with_abstract - 120) / 1.1))
    while limit >= 60:
        html = _render_html(env, base, paper_views(papers, limit))
        if _size(html) <= HTML_BUDGET_BYTES:
            return html
        limit = int(limit * 0.85)
    for max_authors in COMPACT_AUTHORS:
        if _size(bare) <= HTML_BUDGET_BYTES:
            break
        bare = _render_html(env, base, paper_views(papers, 0, max_authors=max_authors))
    return bare


def _size(html: str) -> int:
    return len(html.encode("utf-8"))


def _render_html(env: Environment, base: dict[str, object], papers: list[PaperView]) -> str:
    html = env.get_template(HTML_TEMPLATE).render(base, papers=papers)
    # Template indentation is only bytes on the wire; a newline still separates words.
    html = re.sub(r"\n[ \t]+", "\n", html)
    return _inliner().inline(html).rstrip("\n") + "\n"
