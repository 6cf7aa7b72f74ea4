"""Rendering: subject, preheader, HTML (inlined CSS, links, escaping, size) and plain text."""

from __future__ import annotations

import importlib.resources
import json
import re
from datetime import date
from pathlib import Path

import pytest
from jinja2 import UndefinedError
from selectolax.lexbor import LexborHTMLParser

from digest.models import DigestContent, Paper, RankedPaper, RenderedDigest
from digest.render import (
    ABSTRACT_CHARS,
    HTML_BUDGET_BYTES,
    environment,
    render_digest,
    trim,
)

FIXTURE = Path(__file__).parent / "fixtures" / "hf_api_daily_papers_2026-06-12_sotawhat.json"
GMAIL_CLIP_BYTES = 102 * 1024
DAY = date(2026, 6, 12)


def load_papers() -> list[Paper]:
    """The 30 papers of a real HF daily_papers response, as the hf-api source would give them."""
    items = json.loads(FIXTURE.read_text(encoding="utf-8"))
    papers = []
    for item in items:
        p = item["paper"]
        papers.append(
            Paper(
                id=p["id"],
                title=p["title"],
                abstract=p["summary"],
                authors=[a["name"] for a in p["authors"]],
                upvotes=p.get("upvotes"),
                code_url=p.get("githubRepo") or "",
                url=f"https://huggingface.co/papers/{p['id']}",
                arxiv_url=f"https://arxiv.org/abs/{p['id']}",
                sources=["hf-api"],
            )
        )
    return papers


def make_content(
    papers: list[Paper],
    *,
    name: str = "Ada",
    candidates: int | None = None,
    unsubscribe_url: str = "",
    unsubscribe_mailto: str = "digest-admin@example.org",
    matched: list[str] | None = None,
    followed: list[str] | None = None,
) -> DigestContent:
    ranked = [
        RankedPaper(
            paper=p,
            score=10.0 - i,
            matched=list(matched if matched is not None else ["LLM", "agents"]),
            followed_authors=list(followed or []),
        )
        for i, p in enumerate(papers)
    ]
    return DigestContent(
        subscriber_email="ada@example.org",
        subscriber_name=name,
        digest_date=DAY,
        papers=ranked,
        candidates_count=len(papers) if candidates is None else candidates,
        unsubscribe_mailto=unsubscribe_mailto,
        unsubscribe_url=unsubscribe_url,
    )


def hrefs(html: str) -> list[str]:
    tree = LexborHTMLParser(html)
    return [a.attributes.get("href") or "" for a in tree.css("a")]


@pytest.fixture(scope="module")
def papers() -> list[Paper]:
    return load_papers()


@pytest.fixture(scope="module")
def rendered(papers: list[Paper]) -> RenderedDigest:
    return render_digest(make_content(papers[:12], candidates=30))


# --- subject and preheader -------------------------------------------------------------------


def test_subject_carries_date_and_count(papers: list[Paper]) -> None:
    assert render_digest(make_content(papers[:12])).subject == (
        "Paper digest 2026-06-12: 12 new papers"
    )
    assert render_digest(make_content(papers[:1])).subject == "Paper digest 2026-06-12: 1 new paper"
    assert render_digest(make_content([])).subject == "Paper digest 2026-06-12: nothing new today"


def test_preheader_is_hidden_and_first_in_body(
    rendered: RenderedDigest, papers: list[Paper]
) -> None:
    assert rendered.preheader.startswith(f"12 new papers: {papers[0].title[:30]}")
    assert len(rendered.preheader) <= 120
    body = LexborHTMLParser(rendered.html).body
    assert body is not None
    first = body.css_first("div")
    assert first is not None and "preheader" in (first.attributes.get("class") or "")
    style = (first.attributes.get("style") or "").replace(" ", "")
    assert "display:none" in style
    assert first.text().startswith(rendered.preheader)


# --- HTML ------------------------------------------------------------------------------------


def test_html_has_every_link_of_every_paper(rendered: RenderedDigest, papers: list[Paper]) -> None:
    links = hrefs(rendered.html)
    for p in papers[:12]:
        assert f"https://huggingface.co/papers/{p.id}" in links
        assert f"https://arxiv.org/abs/{p.id}" in links
        assert f"https://arxiv.org/pdf/{p.id}" in links
        if p.code_url:
            assert p.code_url in links
    # Titles link to the HF page, in rank order.
    tree = LexborHTMLParser(rendered.html)
    titles = tree.css("h2.title a")
    assert [a.text() for a in titles] == [p.title for p in papers[:12]]
    assert [a.attributes["href"] for a in titles] == [p.url for p in papers[:12]]


def test_html_shows_authors_reasons_upvotes_and_trimmed_abstract(papers: list[Paper]) -> None:
    many_authors = next(p for p in papers if len(p.authors) > 6)
    content = make_content([many_authors], matched=["LLM", "graph neural network"])
    content.papers[0].followed_authors = [many_authors.authors[1]]
    html = render_digest(content).html
    tree = LexborHTMLParser(html)

    authors = tree.css_first("span.authors")
    assert authors is not None
    assert authors.text() == ", ".join(many_authors.authors[:6]) + " et al."
    bold = authors.css_first("b")
    assert bold is not None and bold.text() == many_authors.authors[1]

    pills = [s.text() for s in tree.css("span.pill")]
    assert pills == ["LLM", "graph neural network", f"author: {many_authors.authors[1]}"]

    links = tree.css_first("p.links")
    assert links is not None
    upvotes = many_authors.upvotes
    assert f"▲ {upvotes} upvote" in links.text()

    abstract = tree.css_first("p.abstract")
    assert abstract is not None
    text = abstract.text()
    assert len(text) <= ABSTRACT_CHARS
    assert text.endswith("…")
    assert " ".join(many_authors.abstract.split()).startswith(text[:-1])


def test_css_is_inlined_and_dark_mode_kept(rendered: RenderedDigest) -> None:
    tree = LexborHTMLParser(rendered.html)
    for selector in ("td.paper", "h2.title a", "span.pill", "p.meta", "p.links", "td.footer"):
        for node in tree.css(selector):
            assert node.attributes.get("style"), f"{selector} has no inlined style"
    container = tree.css_first("table.container")
    assert container is not None
    assert container.attributes.get("width") == "600"
    assert "width:600px" in (container.attributes.get("style") or "").replace(" ", "")

    metas = {m.attributes.get("name"): m.attributes.get("content") for m in tree.css("meta")}
    assert metas["color-scheme"] == "light dark"
    assert metas["supported-color-schemes"] == "light dark"
    styles = " ".join(s.text() for s in tree.css("style"))
    assert "@media (prefers-color-scheme: dark)" in styles
    # Only the at-rules stay in <style>; the ordinary rules went into style="" attributes.
    assert re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", styles).strip() == ""


def test_html_of_sixty_long_papers_stays_under_gmail_clipping(papers: list[Paper]) -> None:
    sixty = [papers[i % len(papers)] for i in range(60)]
    html = render_digest(make_content(sixty)).html
    size = len(html.encode("utf-8"))
    assert size <= HTML_BUDGET_BYTES < GMAIL_CLIP_BYTES
    tree = LexborHTMLParser(html)
    assert len(tree.css("td.paper")) == 60
    assert len(tree.css("h2.title a")) == 60


def test_huge_abstracts_are_trimmed_harder(papers: list[Paper]) -> None:
    long_text = " ".join(["representation learning with transformers"] * 200)  # ~8,600 chars
    sixty = [
        Paper(
            id=f"2606.{10000 + i}",
            title=f"A paper about everything, part {i} " + "with a long title " * 5,
            abstract=long_text,
            authors=[f"Author Number{j} Surname" for j in range(30)],
            url=f"https://huggingface.co/papers/2606.{10000 + i}",
            arxiv_url=f"https://arxiv.org/abs/2606.{10000 + i}",
            code_url=f"https://github.com/some-organisation/some-repository-{i}",
            upvotes=i,
        )
        for i in range(60)
    ]
    rendered = render_digest(make_content(sixty, matched=["transformers", "representation"]))
    assert len(rendered.html.encode("utf-8")) <= HTML_BUDGET_BYTES
    assert len(LexborHTMLParser(rendered.html).css("h2.title a")) == 60
    # The plain text part is not held to the HTML budget: it keeps the usual abstract length.
    assert long_text[:400] in " ".join(rendered.text.split())


def test_fifty_papers_keep_most_of_their_abstracts(papers: list[Paper]) -> None:
    fifty = [papers[i % len(papers)] for i in range(50)]
    html = render_digest(make_content(fifty)).html
    assert len(html.encode("utf-8")) <= HTML_BUDGET_BYTES
    tree = LexborHTMLParser(html)
    lengths = [len(p.text()) for p in tree.css("p.abstract")]
    assert len(lengths) == 50
    assert min(lengths) > 300  # trimmed harder than ~600 characters, but not dropped


def test_hostile_page_data_is_escaped() -> None:
    title = '<script>alert("x")</script> Tom & Jerry\'s "model"'
    url = 'https://example.org/paper?a=1&b="2"'
    hostile = Paper(
        id="example.org/paper",
        title=title,
        abstract="<img src=x onerror=alert(1)> a < b && c > d",
        authors=["<b>Mallory</b>", "Eve & Co"],
        url=url,
        code_url="javascript:alert(1)",
        pdf_url="https://example.org/paper.pdf",
        upvotes=None,
    )
    rendered = render_digest(make_content([hostile], matched=["<i>term</i>"]))
    html = rendered.html
    tree = LexborHTMLParser(html)
    assert tree.css("script") == []
    assert tree.css("img") == []
    assert tree.css("i") == []
    link = tree.css_first("h2.title a")
    assert link is not None
    assert link.text() == title
    assert link.attributes["href"] == url
    assert not any(h.lower().startswith("javascript:") for h in hrefs(html))
    assert "javascript:" not in rendered.text
    assert "<script>" not in html
    authors = tree.css_first("span.authors")
    assert authors is not None and authors.text() == "<b>Mallory</b>, Eve & Co"
    assert tree.css_first("span.pill").text() == "<i>term</i>"  # type: ignore[union-attr]
    # Not on arXiv: no arXiv link is invented, the page and the PDF are linked.
    assert not any("arxiv.org" in h for h in hrefs(html))
    assert "https://example.org/paper.pdf" in hrefs(html)
    assert "upvote" not in html
    # The plain text part is not HTML: it carries the title as it is.
    assert title in rendered.text


def test_greeting_and_intro(papers: list[Paper]) -> None:
    named = render_digest(make_content(papers[:3], name="Ada", candidates=30))
    assert named.text.startswith("Hi Ada,")
    assert "3 new papers for you on 2026-06-12, the best of 30 new ones." in named.text
    assert "Hi Ada," in LexborHTMLParser(named.html).text()
    anonymous = render_digest(make_content(papers[:1], name=""))
    assert anonymous.text.startswith("Hello,")
    assert "1 new paper for you on 2026-06-12." in anonymous.text


def test_empty_digest_says_nothing_new(papers: list[Paper]) -> None:
    rendered = render_digest(make_content([], candidates=7))
    assert rendered.subject.endswith("nothing new today")
    assert "Nothing new today" in rendered.text
    assert "none of the 7 new papers matched" in rendered.text
    html_text = LexborHTMLParser(rendered.html).text()
    assert "Nothing new today" in html_text
    assert "mailto:digest-admin@example.org?subject=unsubscribe" in hrefs(rendered.html)
    assert rendered.preheader == "Nothing new today."


# --- unsubscribe -----------------------------------------------------------------------------


def test_unsubscribe_mailto_in_both_parts(rendered: RenderedDigest) -> None:
    mailto = "mailto:digest-admin@example.org?subject=unsubscribe"
    assert mailto in hrefs(rendered.html)
    assert f"Unsubscribe: {mailto}" in rendered.text
    assert "ada@example.org" in rendered.text  # why they get this mail


def test_unsubscribe_url_preferred_mailto_kept_as_alternative(papers: list[Paper]) -> None:
    url = "https://example.org/unsubscribe?u=ada%40example.org&t=abc"
    rendered = render_digest(make_content(papers[:2], unsubscribe_url=url))
    links = hrefs(rendered.html)
    assert url in links
    assert "mailto:digest-admin@example.org?subject=unsubscribe" in links
    assert f"Unsubscribe: {url}" in rendered.text


def test_unsubscribe_mailto_is_url_encoded(papers: list[Paper]) -> None:
    content = make_content(papers[:1], unsubscribe_mailto="list admin&x@example.org")
    rendered = render_digest(content)
    assert "mailto:list%20admin%26x@example.org?subject=unsubscribe" in hrefs(rendered.html)


# --- plain text ------------------------------------------------------------------------------


def test_text_part_is_readable_in_a_terminal(rendered: RenderedDigest, papers: list[Paper]) -> None:
    text = rendered.text
    lines = text.splitlines()
    for line in lines:
        if "://" not in line:  # a URL line may be as long as its URL
            assert len(line) <= 72, line
    p = papers[1]
    assert re.search(r"^2\.\s+" + re.escape(p.title.split()[0]), text, re.MULTILINE)
    assert "Why: LLM, agents" in text
    assert f"Upvotes: {p.upvotes}" in text
    for url in (p.url, f"https://arxiv.org/abs/{p.id}", f"https://arxiv.org/pdf/{p.id}"):
        assert any(line.strip().endswith(url) for line in lines), url
    if p.code_url:
        assert re.search(r"^\s+Code:\s+" + re.escape(p.code_url) + "$", text, re.MULTILINE)
    # The first words of each abstract are there, re-wrapped.
    flat = " ".join(text.split())
    for q in papers[:12]:
        assert " ".join(q.abstract.split()[:12]) in flat
    assert "<a " not in text and "&amp;" not in text


# --- helpers and environment -----------------------------------------------------------------


def test_trim_cuts_at_a_word_boundary() -> None:
    text = "alpha beta gamma delta epsilon zeta eta theta"
    assert trim(text, 100) == text
    out = trim(text, 20)
    assert out == "alpha beta gamma…"
    assert len(out) <= 20
    assert trim("  spaced \n out  ", 50) == "spaced out"
    assert trim(text, 0) == ""
    assert len(trim("x" * 1000, 600)) == 600  # no space at all: a hard cut


def test_environment_is_built_once_from_the_package() -> None:
    env = environment()
    assert env is environment()
    template = env.get_template("digest.html.j2")
    root = importlib.resources.files("digest.templates")
    assert template.filename is not None
    assert Path(template.filename).parent == Path(str(root))
    assert env.get_template("digest.txt.j2").filename is not None
    with pytest.raises(UndefinedError):
        env.get_template("digest.txt.j2").render()
