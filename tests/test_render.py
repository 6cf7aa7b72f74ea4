"""Rendering: subject, preheader, lead-in and list, each paper (meta, authors, summary, reasons
and highlights, abstract, buttons), trending, footer, plain text, hostile data, size, the
Renderer's caches and pickling, and template overrides."""

from __future__ import annotations

import dataclasses
import pickle
import re
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from digest.models import DigestLinks, Paper, PaperLinks, RenderedDigest
from digest.render import (
    HTML_BUDGET_BYTES,
    Renderer,
    TemplateSourceError,
    render_digest,
    trim,
)
from tests.support.digests import (
    FORBIDDEN,
    LONG_WORD,
    hostile_papers,
    load_papers,
    make_content,
    more_papers,
)

GMAIL_CLIP_BYTES = 102 * 1024
MAILTO = "mailto:digest-admin@example.org?subject=unsubscribe"


def tree(html: str) -> LexborHTMLParser:
    return LexborHTMLParser(html)


def hrefs(html: str) -> list[str]:
    return [a.attributes.get("href") or "" for a in tree(html).css("a")]


def text_of(html: str, selector: str) -> list[str]:
    return [n.text() for n in tree(html).css(selector)]


@pytest.fixture(scope="module")
def papers() -> list[Paper]:
    return load_papers()


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture(scope="module")
def rendered(papers: list[Paper], renderer: Renderer) -> RenderedDigest:
    return renderer.render(make_content(papers[:12], candidates=30, trending=papers[20:25]))


# --- subject, preheader, lead-in -------------------------------------------------------------


def test_subject_names_the_top_paper_and_the_count(papers: list[Paper], renderer: Renderer) -> None:
    subject = renderer.render(make_content(papers[:12])).subject
    assert subject.startswith(papers[0].title[:40])
    assert subject.endswith(" + 11 more · Fri 12 Jun")
    assert len(subject) < 110
    one = renderer.render(make_content(papers[:1])).subject
    assert one == f"{trim(papers[0].title, 70)} · Fri 12 Jun"
    assert one.startswith("On the Limits of LLM Adaptability") and "…" in one
    assert (
        renderer.render(make_content([])).subject == "Paper digest: nothing new today · Fri 12 Jun"
    )


def test_preheader_names_topics_and_comes_first_hidden(rendered: RenderedDigest) -> None:
    assert rendered.preheader.startswith("Today: ")
    assert "language model" in rendered.preheader or "agents" in rendered.preheader
    assert "12 new papers" not in rendered.preheader
    assert len(rendered.preheader) <= 110
    body = tree(rendered.html).body
    assert body is not None
    first = body.css_first("div")
    assert first is not None and "preheader" in (first.attributes.get("class") or "")
    assert "display:none" in (first.attributes.get("style") or "").replace(" ", "")
    assert first.text().startswith(rendered.preheader)


def test_lead_in_says_what_today_holds_and_lists_the_titles(
    rendered: RenderedDigest, papers: list[Paper]
) -> None:
    lead = text_of(rendered.html, "p.lead")[0]
    assert re.match(r"12 new papers for you today: \d+ on [\w ]+", lead), lead
    toc = tree(rendered.html).css("td.toc a")
    assert [a.text() for a in toc][:2] == [f"1. {trim(p.title, 90)}" for p in papers[:1]] + [
        f"2. {trim(papers[1].title, 90)}"
    ]
    anchors = {n.attributes.get("id") for n in tree(rendered.html).css("td.paper")}
    for a in toc:  # each entry of the list links to its paper
        assert (a.attributes.get("href") or "").removeprefix("#") in anchors
    assert lead in " ".join(rendered.text.split())


def test_no_keywords_says_most_upvoted_and_how_to_set_a_profile(
    papers: list[Paper], renderer: Renderer
) -> None:
    content = make_content(papers[:5], profile=[], matched=[], reasons=False)
    for part in content.papers:
        part.matched = []
    out = renderer.render(content)
    for text in (" ".join(tree(out.html).text().split()), " ".join(out.text.split())):
        assert "The 5 most upvoted new papers on Hugging Face today." in text
        assert "You have no keywords yet" in text
        assert "send your keywords" in text
        assert "Ranked by: upvotes" in text
        assert "for you today" not in text
    assert out.preheader.startswith("Most upvoted today: ")


def test_a_weekly_digest_says_it_is_the_weekly_one(papers: list[Paper], renderer: Renderer) -> None:
    weekly = dataclasses.replace(make_content(papers[:12], candidates=30), weekly=True)
    out = renderer.render(weekly)
    assert out.subject.startswith(f"Your weekly digest: {papers[0].title[:30]}")
    assert out.subject.endswith(" + 11 more · Fri 12 Jun")
    assert out.preheader.startswith("This week: ")
    lead = text_of(out.html, "p.lead")[0]
    assert re.match(r"Your weekly digest: 12 new papers for you this week, \d+ on [\w ]+", lead)
    assert lead in " ".join(out.text.split())
    for text in (" ".join(tree(out.html).text().split()), " ".join(out.text.split())):
        assert "subscribed to the weekly Paper digest." in text and "today:" not in text
    assert text_of(out.html, "td.brand")[0].startswith("Weekly paper digest · Fri 12 Jun")
    # the daily wording is untouched
    daily = renderer.render(make_content(papers[:12], candidates=30))
    assert "weekly" not in daily.subject + daily.preheader + daily.text
    assert "subscribed to the daily Paper digest." in " ".join(daily.text.split())
    # nothing new, and no keywords: said for the week
    empty = renderer.render(dataclasses.replace(make_content([], candidates=40), weekly=True))
    assert empty.subject == "Paper digest: nothing new this week · Fri 12 Jun"
    assert text_of(empty.html, "p.lead")[0] == (
        "Your weekly digest: nothing new this week; none of the 40 new papers matched your "
        "interests."
    )
    plain = make_content(papers[:5], profile=[], matched=[], reasons=False)
    for part in plain.papers:
        part.matched = []
    bare = renderer.render(dataclasses.replace(plain, weekly=True))
    assert text_of(bare.html, "p.lead")[0].startswith(
        "Your weekly digest: the 5 most upvoted new papers on Hugging Face this week."
    )
    assert bare.preheader.startswith("Most upvoted this week: ")


# --- each paper ------------------------------------------------------------------------------


def test_every_link_of_every_paper(rendered: RenderedDigest, papers: list[Paper]) -> None:
    links = hrefs(rendered.html)
    titles = tree(rendered.html).css("h2.title a")
    assert [a.attributes["href"] for a in titles] == [p.url for p in papers[:12]]
    assert [a.text() for a in titles] == [p.title for p in papers[:12]]
    for p in papers[:12]:
        assert f"https://arxiv.org/abs/{p.id}" in links
        assert f"https://arxiv.org/pdf/{p.id}" in links
        if p.code_url:
            assert p.code_url in links
    labels = {a.text() for a in tree(rendered.html).css("a.btn")}
    assert {"arXiv", "PDF"} <= labels


def test_meta_line_authors_and_summary(renderer: Renderer) -> None:
    day = more_papers()
    starred = next(p for p in day if p.stars and p.code_url and len(p.authors) > 6)
    starred.organization = "University of Oxford"
    starred.comments = 3
    followed = starred.authors[8]
    html = renderer.render(make_content([starred], followed=[followed])).html
    meta = text_of(html, "p.meta")[0]
    assert meta == f"University of Oxford · ▲ {starred.upvotes} · 3 comments · ★ {starred.stars}"
    authors = tree(html).css_first("p.authors")
    assert authors is not None
    assert authors.text() == ", ".join(starred.authors[:4] + [followed]) + " et al."
    assert [b.text() for b in authors.css("b")] == [followed]  # followed authors in bold
    assert starred.code_url in hrefs(html)


def test_ai_summary_is_shown_in_both_parts(papers: list[Paper], renderer: Renderer) -> None:
    p = next(p for p in papers if p.ai_summary)
    out = renderer.render(make_content([p]))
    assert text_of(out.html, "p.summary") == [p.ai_summary]
    assert f"In short: {p.ai_summary}"[:60] in " ".join(out.text.split())


def test_reason_line_and_highlights_where_the_ranking_found_them(renderer: Renderer) -> None:
    paper = Paper(
        id="2606.00001",
        title="LLM Agents that reason",
        abstract="We study reasoning in llm agents. Agents & tools <b>matter</b>.",
        url="https://huggingface.co/papers/2606.00001",
    )
    out = renderer.render(make_content([paper], matched=["LLM agents", "reasoning", "<b>"]))
    html = tree(out.html)
    # One line, each term once (changed on purpose: it said each field's spellings in turn).
    assert text_of(out.html, "p.why") == ["Why: LLM Agents, reasoning, <b>"]
    assert [m.text() for m in html.css("h2.title mark")] == ["LLM Agents"]
    assert [m.text() for m in html.css("p.abstract mark")] == ["reasoning", "llm agents", "<b>"]
    # Escaped, never a tag: the abstract's "<b>" is text inside a mark.
    assert html.css("p.abstract b") == []
    assert "&lt;b&gt;" in out.html
    assert "Why: LLM Agents, reasoning, <b>" in out.text


def test_highlight_only_in_the_field_the_reason_names(renderer: Renderer) -> None:
    paper = Paper(id="2606.00002", title="Graph agents", abstract="No match here about agents.")
    content = make_content([paper], matched=["graph"])
    out = renderer.render(content)
    assert [m.text() for m in tree(out.html).css("h2.title mark")] == ["Graph"]
    assert tree(out.html).css("p.abstract mark") == []


def test_without_reasons_matched_terms_are_highlighted(renderer: Renderer) -> None:
    paper = Paper(id="2606.00003", title="Agents at scale", abstract="An agent and its agents.")
    out = renderer.render(make_content([paper], matched=["agent"], reasons=False))
    assert text_of(out.html, "p.why") == ["Why: title: agent"]
    assert [m.text() for m in tree(out.html).css("mark")] == ["Agents", "agent", "agents"]


def test_abstract_cut_at_a_sentence_with_more(papers: list[Paper], renderer: Renderer) -> None:
    long = next(p for p in papers if len(p.abstract) > 900)
    html = renderer.render(make_content([long])).html
    node = tree(html).css_first("p.abstract")
    assert node is not None
    more = node.css_first("a.more")
    assert more is not None and more.attributes["href"] == long.url
    shown = node.text().removesuffix(" more")
    assert 120 <= len(shown) <= 360, shown
    assert shown.endswith((".", "…"))
    assert " ".join(long.abstract.split()).startswith(shown.rstrip("…"))


def test_feedback_and_view_links_only_when_given(papers: list[Paper], renderer: Renderer) -> None:
    plain = renderer.render(make_content(papers[:2])).html
    assert "More like this" not in plain and "View in browser" not in plain
    links = DigestLinks(
        view="https://digest.example.org/view/abc",
        papers={
            papers[0].id: PaperLinks(
                more="https://d.example.org/m/1", less="https://d.example.org/l/1"
            )
        },
    )
    out = renderer.render(make_content(papers[:2], links=links))
    assert "https://digest.example.org/view/abc" in hrefs(out.html)
    feedback = tree(out.html).css("p.feedback a")
    assert [(a.text(), a.attributes["href"]) for a in feedback] == [
        ("More like this", "https://d.example.org/m/1"),
        ("Less like this", "https://d.example.org/l/1"),
    ]
    assert (
        "https://d.example.org/m/1" in out.text
        and "https://digest.example.org/view/abc" in out.text
    )


# --- trending and footer ---------------------------------------------------------------------


def test_trending_today_lists_papers_the_reader_did_not_get(
    papers: list[Paper], renderer: Renderer
) -> None:
    out = renderer.render(make_content(papers[:3], trending=papers[2:6]))
    links = tree(out.html).css("td.trend a")
    assert [a.attributes["href"] for a in links] == [p.url for p in papers[3:6]]  # not #3: got it
    assert "TRENDING TODAY" in out.text
    for p in papers[3:6]:
        assert p.url in out.text
    assert "TRENDING" not in renderer.render(make_content(papers[:3])).html


def test_footer_reason_profile_and_unsubscribe(rendered: RenderedDigest) -> None:
    footer = tree(rendered.html).css_first("td.footer")
    assert footer is not None
    words = " ".join(footer.text().split())
    assert "because ada@example.org is subscribed" in words
    assert "Ranked by: language model (3), agents (2), reasoning (1)." in words
    assert "To change your keywords, ask whoever runs this digest." in words
    assert MAILTO in [a.attributes.get("href") for a in footer.css("a")]
    assert "font-size:13px" in (footer.attributes.get("style") or "")
    assert f"Unsubscribe: {MAILTO}" in rendered.text
    assert "Ranked by: language model (3), agents (2), reasoning (1)." in " ".join(
        rendered.text.split()
    )


def test_web_unsubscribe_preferred_mailto_kept(papers: list[Paper], renderer: Renderer) -> None:
    url = "https://example.org/unsubscribe?u=ada%40example.org&t=abc"
    out = renderer.render(make_content(papers[:2], unsubscribe_url=url))
    assert url in hrefs(out.html) and MAILTO in hrefs(out.html)
    assert f"Unsubscribe: {url}" in out.text and f"or by email: {MAILTO}" in out.text


def test_empty_digest_says_nothing_new(renderer: Renderer) -> None:
    out = renderer.render(make_content([], candidates=7))
    assert "none of the 7 new papers matched" in out.text
    assert "Nothing new today" in tree(out.html).text()
    assert out.preheader == "Nothing new today."


# --- layout and CSS --------------------------------------------------------------------------


def test_phone_first_layout_with_css_inlined(rendered: RenderedDigest) -> None:
    html = tree(rendered.html)
    container = html.css_first("table.container")
    assert container is not None
    style = (container.attributes.get("style") or "").replace(" ", "")
    assert "width:100%" in style and "max-width:600px" in style
    assert '<!--[if mso]><table role="presentation" width="600"' in rendered.html
    for td in html.css("td"):  # Outlook drops inherited fonts: every cell names its font
        assert "font-family" in (td.attributes.get("style") or ""), td.attributes
    for selector in ("h2.title", "p.abstract", "a.toc-link"):
        for node in html.css(selector):
            assert "overflow-wrap:anywhere" in (node.attributes.get("style") or ""), selector
    for selector in ("h2.title", "p.abstract", "p.authors", "p.summary"):
        assert all(n.attributes.get("dir") == "auto" for n in html.css(selector)), selector
    styles = [s.text() for s in html.css("style")]
    assert len(styles) == 2  # narrow screens and dark mode, apart
    assert "max-width: 480px" in styles[0] and "prefers-color-scheme" not in styles[0]
    assert "prefers-color-scheme: dark" in styles[1]
    metas = {m.attributes.get("name"): m.attributes.get("content") for m in html.css("meta")}
    assert metas["color-scheme"] == "light dark" and metas["viewport"].startswith("width=device")
    buttons = html.css("a.btn")
    assert buttons and all("padding:9px 14px" in (b.attributes.get("style") or "") for b in buttons)


# --- hostile data and size -------------------------------------------------------------------


def test_hostile_text_is_cleaned_capped_and_escaped(renderer: Renderer) -> None:
    papers = hostile_papers(8)
    out = renderer.render(make_content(papers, matched=["attention", "evil"]))
    for part in (out.html, out.text, out.subject, out.preheader):
        assert not FORBIDDEN & set(part)
    titles = text_of(out.html, "h2.title a")
    assert len(titles) == 8
    assert all(len(t) <= 300 for t in titles)
    assert titles[1] == "Hostile 1: evil <b>bold</b> & override"
    assert titles[2] == "Hostile 2: 𝒪(n²) attention with α-decay"
    assert tree(out.html).css("h2.title b") == []  # the title's <b> is text
    assert LONG_WORD in out.html  # kept whole; the layout breaks it (screenshot tests)
    assert "Mallory" in out.text and "evil <b>bold</b> & override" in out.text


@pytest.mark.parametrize("kind", ["real", "hostile"])
def test_thirty_papers_stay_under_gmail_clipping(kind: str, renderer: Renderer) -> None:
    base = load_papers() if kind == "real" else hostile_papers(30)
    thirty = [base[i % len(base)] for i in range(30)]
    out = renderer.render(make_content(thirty, trending=load_papers()[:5]))
    size = len(out.html.encode("utf-8"))
    assert size <= HTML_BUDGET_BYTES < GMAIL_CLIP_BYTES
    assert len(tree(out.html).css("h2.title a")) == 30
    assert len(tree(out.html).css("td.toc a")) == 30


def test_sixty_long_papers_still_fit(renderer: Renderer) -> None:
    long_text = " ".join(["representation learning with transformers."] * 200)
    sixty = [
        Paper(
            id=f"2606.{10000 + i}",
            title=f"A paper about everything, part {i} " + "with a long title " * 5,
            abstract=long_text,
            ai_summary="A one-sentence summary that is not very short at all, " * 3,
            authors=[f"Author Number{j} Surname" for j in range(30)],
            url=f"https://huggingface.co/papers/2606.{10000 + i}",
            code_url=f"https://github.com/some-organisation/some-repository-{i}",
            upvotes=i,
        )
        for i in range(60)
    ]
    out = renderer.render(make_content(sixty, matched=["transformers"]))
    assert len(out.html.encode("utf-8")) <= HTML_BUDGET_BYTES
    assert len(tree(out.html).css("h2.title a")) == 60
    # The plain text part is not held to the HTML budget.
    assert "In short: A one-sentence summary" in out.text


# --- plain text ------------------------------------------------------------------------------


def test_text_part_same_order_wrapped_no_entities(
    rendered: RenderedDigest, papers: list[Paper]
) -> None:
    text = rendered.text
    for line in text.splitlines():
        if "://" not in line:
            assert len(line) <= 72, line
    flat = " ".join(text.split())
    order = [
        "Hi Ada,",
        "12 new papers for you today",
        f"1. {papers[0].title[:30]}",
        f"12. {papers[11].title[:20]}",
        "TRENDING TODAY",
        "You get this email because",
        "Unsubscribe:",
    ]
    positions = [flat.index(" ".join(s.split())) for s in order]
    assert positions == sorted(positions)
    p = papers[1]
    for url in (p.url, f"https://arxiv.org/abs/{p.id}", f"https://arxiv.org/pdf/{p.id}"):
        assert any(line.strip().endswith(url) for line in text.splitlines()), url
    assert "Why: " in text and "<a " not in text and "&amp;" not in text and "&#" not in text


# --- the Renderer ----------------------------------------------------------------------------


def test_cached_fragments_get_each_digests_numbers(papers: list[Paper]) -> None:
    renderer = Renderer()
    first = renderer.render(make_content(papers[:12]))
    again = renderer.render(make_content(list(reversed(papers[:12]))))
    titles = text_of(again.html, "h2.title")
    assert titles[0].startswith("1. " + papers[11].title[:20])
    assert titles[11].startswith("12. " + papers[0].title[:20])
    assert re.search(r"^12\. " + re.escape(papers[0].title.split()[0]), again.text, re.M)
    assert renderer.render(make_content(papers[:12])) == first  # cached == fresh
    assert Renderer().render(make_content(papers[:12])) == first


def test_renderer_pickles_as_its_settings(papers: list[Paper], tmp_path: Path) -> None:
    renderer = Renderer(tmp_path)
    renderer.render(make_content(papers[:2]))
    copy = pickle.loads(pickle.dumps(renderer))
    assert copy.templates_dir == tmp_path
    assert len(pickle.dumps(renderer)) < 500  # settings, not templates or caches
    assert copy.render(make_content(papers[:2])) == renderer.render(make_content(papers[:2]))


def test_render_digest_shares_one_renderer(papers: list[Paper]) -> None:
    assert render_digest(make_content(papers[:2])) == Renderer().render(make_content(papers[:2]))


def test_a_templates_folder_overrides_the_shipped_ones(papers: list[Paper], tmp_path: Path) -> None:
    (tmp_path / "paper.html.j2").write_text(
        '<p class="title">#{{ number }} <a href="{{ p.url }}">{{ p.title_html }}</a></p>\n'
    )
    (tmp_path / "digest.css").write_text(".title { color: #ff0000; }\n")
    out = Renderer(tmp_path).render(make_content(papers[:2]))
    node = tree(out.html).css_first("p.title")
    assert node is not None and node.text().startswith("#1 ")
    assert node.attributes.get("style") == "color:#ff0000"  # the folder's CSS, inlined
    assert "Paper digest" in out.html  # digest.html.j2 still the shipped one
    assert out.text == Renderer().render(make_content(papers[:2])).text


def test_a_template_with_a_tag_between_rows_is_refused(tmp_path: Path) -> None:
    shipped = (Path(__file__).parent.parent / "templates" / "digest.html.j2").read_text()
    broken = shipped.replace('<tr><td class="footer">', '{{ "x" }}<tr><td class="footer">')
    (tmp_path / "digest.html.j2").write_text(broken)
    with pytest.raises(TemplateSourceError, match="digest.html.j2"):
        Renderer(tmp_path)
