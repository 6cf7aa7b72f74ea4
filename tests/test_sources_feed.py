"""RSS/Atom feeds beyond the captured files: quirks, empty days, broken and cut-short feeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.config import SourceConfig
from digest.errors import ParseError
from digest.models import Paper
from digest.sources import merge_papers
from digest.sources.feed import parse_feed

FIXTURES = Path(__file__).parent / "fixtures"
SOURCE = SourceConfig("feed", "https://rss.arxiv.org/rss/cs.LG", "arxiv-lg")


def parse(xml: str | bytes, source: SourceConfig = SOURCE) -> tuple[list[Paper], list[str]]:
    return parse_feed(xml.encode("utf-8") if isinstance(xml, str) else xml, source)


def rss(items: str, *, arxiv: bool = True) -> str:
    ns = (
        ' xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        if arxiv
        else ""
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"{ns}><channel>'
        f"<title>t</title><link>https://example.org/</link><description>d</description>"
        f"{items}</channel></rss>"
    )


def arxiv_item(arxiv_id: str, category: str, announce: str, *more_categories: str) -> str:
    cats = "".join(f"<category>{c}</category>" for c in (category, *more_categories))
    return f"""<item>
      <title>A Cross-Listed Paper</title>
      <link>https://arxiv.org/abs/{arxiv_id}</link>
      <description>arXiv:{arxiv_id}v2 Announce Type: {announce}
Abstract: We study   things.
  Across lines.</description>
      <guid isPermaLink="false">oai:arXiv.org:{arxiv_id}v2</guid>
      {cats}
      <pubDate>Mon, 27 Apr 2026 00:00:00 -0400</pubDate>
      <arxiv:announce_type>{announce}</arxiv:announce_type>
      <dc:creator>Ann Lee, Bo Chen</dc:creator>
    </item>"""


ATOM_ENTRY = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title>arXiv Query</title>
  <id>https://arxiv.org/api/x</id>
  <entry>
    <id>http://arxiv.org/abs/hep-th/9901001v2</id>
    <title>Hard-Wrapped Title Over
  Two Lines</title>
    <summary>  A summary that arXiv
wrapped at seventy-odd
  columns &amp; more.
</summary>
    <published>1999-01-04T12:00:00Z</published>
    <author><name>Ed Witten</name></author>
    <link href="http://arxiv.org/abs/hep-th/9901001v2" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/hep-th/9901001v2" rel="related" type="application/pdf"/>
    <arxiv:primary_category term="hep-th"/>
    <category term="hep-th"/>
    <category term="gr-qc"/>
  </entry>
</feed>"""


def test_cross_listed_arxiv_rss_merges_into_one_record() -> None:
    lg_source = SourceConfig("feed", "https://rss.arxiv.org/rss/cs.LG", "arxiv-lg")
    ai_source = SourceConfig("feed", "https://rss.arxiv.org/rss/cs.AI", "arxiv-ai")
    lg, _ = parse(rss(arxiv_item("2604.30001", "cs.LG", "cross", "stat.ML")), lg_source)
    ai, _ = parse(rss(arxiv_item("2604.30001", "cs.AI", "new", "cs.LG")), ai_source)
    assert lg[0].announce_type == "cross" and ai[0].announce_type == "new"
    (merged,) = merge_papers([*lg, *ai])
    assert merged.id == "2604.30001"
    assert merged.categories == ["cs.LG", "stat.ML", "cs.AI"]
    assert merged.sources == ["arxiv-lg", "arxiv-ai"]
    assert merged.announce_type == "new"
    assert merged.abstract == "We study things. Across lines."
    assert merged.authors == ["Ann Lee", "Bo Chen"]


def test_real_arxiv_rss_listed_again_as_cross_list_merges() -> None:
    body = (FIXTURES / "arxiv_rss_cs_AI_2026-04-27_distill.xml").read_bytes()
    # The same three papers as another category's feed would list them: cross-listed.
    cross = body.replace(b"Announce Type: new", b"Announce Type: cross").replace(
        b"<arxiv:announce_type>new<", b"<arxiv:announce_type>cross<"
    )
    cross = cross.replace(b"<category>cs.AI</category>", b"<category>stat.ML</category>")
    other, _ = parse(cross, SourceConfig("feed", "https://rss.arxiv.org/rss/stat.ML", "stat"))
    ai, _ = parse(body, SourceConfig("feed", "https://rss.arxiv.org/rss/cs.AI", "ai"))
    assert [p.announce_type for p in other] == ["cross"] * 3
    merged = merge_papers([*other, *ai])
    assert [p.id for p in merged] == ["2604.21935", "2604.21936", "2604.21937"]
    first = merged[0]
    assert first.categories == ["stat.ML", "cs.LG", "cs.AI"]
    assert first.sources == ["stat", "ai"]
    assert first.announce_type == "new"
    assert first.authors == ["Michael Cooper", "Samuel Cooper"]


def test_atom_hard_wrapped_text_and_old_style_id() -> None:
    (paper,), warnings = parse(ATOM_ENTRY)
    assert warnings == []
    assert paper.id == "hep-th/9901001"
    assert paper.title == "Hard-Wrapped Title Over Two Lines"
    assert paper.abstract == "A summary that arXiv wrapped at seventy-odd columns & more."
    assert paper.authors == ["Ed Witten"]
    assert paper.categories == ["hep-th", "gr-qc"]
    assert paper.arxiv_url == "https://arxiv.org/abs/hep-th/9901001"
    assert paper.pdf_url == "https://arxiv.org/pdf/hep-th/9901001"
    assert paper.published == "1999-01-04T12:00:00Z"


def test_html_escaped_descriptions_become_plain_text() -> None:
    item = """<item><title>Caf&#233; &amp;amp; &lt;b&gt;Bold&lt;/b&gt; Title</title>
      <link>https://example.org/posts/42/#comments</link>
      <description>&lt;p&gt;First &amp;amp; &lt;i&gt;second&lt;/i&gt;.&lt;/p&gt;&lt;p&gt;Next
      paragraph &amp;lt;3 &amp;nbsp;end.&lt;/p&gt;</description></item>"""
    (paper,), _ = parse(rss(item, arxiv=False))
    assert paper.title == "Café & Bold Title"
    assert paper.abstract == "First & second. Next paragraph <3 end."
    # not on arXiv: keyed on the normalised link
    assert paper.id == "https://example.org/posts/42"
    assert paper.url == "https://example.org/posts/42/#comments"
    assert paper.arxiv_url == "" and paper.pdf_url == ""


def test_non_arxiv_links_normalise_to_one_key() -> None:
    items = "".join(
        f"<item><title>Same post</title><link>{link}</link></item>"
        for link in (
            "HTTPS://Example.ORG/Post/1/",
            "https://example.org/Post/1#top",
            "https://example.org/Post/1",
        )
    )
    papers, _ = parse(rss(items, arxiv=False))
    assert {p.id for p in papers} == {"https://example.org/Post/1"}
    assert len(merge_papers(papers)) == 1


def test_arxiv_id_found_in_link_when_guid_is_opaque() -> None:
    item = """<item><title>T</title><guid isPermaLink="false">abc-123</guid>
      <link>https://papers.example/abs/2604.12345v3</link></item>"""
    (paper,), _ = parse(rss(item, arxiv=False))
    assert paper.id == "2604.12345"
    assert paper.url == "https://papers.example/abs/2604.12345v3"


@pytest.mark.parametrize(
    "empty",
    [
        rss(""),
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>',
    ],
)
def test_a_feed_without_items_is_an_empty_day(empty: str) -> None:
    assert parse(empty) == ([], [])


def test_entries_without_id_or_title_are_skipped_with_a_warning() -> None:
    items = (
        arxiv_item("2604.30001", "cs.LG", "new")
        + "<item><description>no title, no link</description></item>"
        + "<item><link>https://arxiv.org/abs/2604.30002</link></item>"
    )
    papers, warnings = parse(rss(items))
    assert [p.id for p in papers] == ["2604.30001"]
    assert len(warnings) == 1
    assert warnings[0].startswith("arxiv-lg: skipped 2 of 3 entries without an id or a title")
    assert "2604.30002 has no title" in warnings[0]


def test_no_usable_entry_is_a_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse(rss("<item><description>nothing</description></item>"))
    assert caught.value.source == "arxiv-lg"
    assert "none of the 1 entries" in str(caught.value)


def test_not_well_formed_but_complete_feed_is_read_leniently() -> None:
    item = "<item><title>R&D at scale</title><link>https://arxiv.org/abs/2604.30003</link></item>"
    papers, warnings = parse(rss(item, arxiv=False))
    assert [(p.id, p.title) for p in papers] == [("2604.30003", "R&D at scale")]
    assert len(warnings) == 1 and "not well-formed" in warnings[0]


def test_not_well_formed_feed_is_read_leniently() -> None:
    item = (
        "<item><title>Caf&eacute; talk</title><link>https://arxiv.org/abs/2604.30005</link></item>"
    )
    papers, warnings = parse(rss(item, arxiv=False))
    assert [(p.id, p.title) for p in papers] == [("2604.30005", "Café talk")]
    assert len(warnings) == 1 and "read leniently" in warnings[0]


def test_feed_cut_before_its_first_complete_entry_is_an_error() -> None:
    body = (FIXTURES / "arxiv_rss_cs_AI_2026-04-27_distill.xml").read_bytes()
    cut = body[: body.index(b"</item>") - 50]
    with pytest.raises(ParseError) as caught:
        parse(cut)
    assert "cut short before its first complete entry" in str(caught.value)


def test_feed_cut_after_complete_entries_keeps_them() -> None:
    body = (FIXTURES / "thirdparty_rss_takara_tldr_hf_daily_2026-04-30_brevio.xml").read_bytes()
    tenth_end = 0
    for _ in range(10):
        tenth_end = body.index(b"</item>", tenth_end) + len(b"</item>")
    papers, warnings = parse(body[: tenth_end + 120])  # into the 11th item
    assert len(papers) == 10
    assert "read its 10 complete entries" in warnings[0]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "is empty, not a feed"),
        (b"   \n", "is empty, not a feed"),
        (b'{"items": []}', "not a readable feed (not well-formed XML"),
        (b"<html><body><p>Hello</p></body></html>", "returned an HTML page, not an RSS/Atom feed"),
        (b"<?xml version='1.0'?><note><to>x</to></note>", "not a readable feed (not RSS or Atom)"),
        (bytes(range(256)) * 4, "not a readable feed"),
    ],
)
def test_not_a_feed(body: bytes, expected: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(body)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("arxiv-lg: https://rss.arxiv.org/rss/cs.LG ")
    assert expected in message
    assert caught.value.fix


def test_feed_with_several_authors_elements() -> None:
    item = """<item><title>T</title><link>https://arxiv.org/abs/2604.30004</link>
      <dc:creator>Ann Lee</dc:creator><dc:creator>Bo Chen</dc:creator></item>"""
    (paper,), _ = parse(rss(item))
    assert paper.authors == ["Ann Lee", "Bo Chen"]
