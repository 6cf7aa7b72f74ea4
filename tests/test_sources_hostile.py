"""Hostile text through the real local HTTP server and the real parsers (issue 25): every
paper comes out valid, good entries are kept, one bad entry never fails its source; redirects
follow the policy of digest.sources.redirects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import fields

import pytest

from digest.config import SourceConfig
from digest.errors import FetchError, ParseError
from digest.models import Paper
from digest.sources import SourceResult, fetch_source, make_client
from digest.sources.redirects import MAX_REDIRECTS, is_local_host, redirect_refusal
from digest.sources.valid import (
    ABSTRACT_CHARS,
    MAX_AUTHORS,
    SUMMARY_CHARS,
    TITLE_CHARS,
    UnusableEntry,
    valid_paper,
)
from digest.text import NAME_CHARS, WORD_CHARS
from tests.support import hostile
from tests.support.httpserver import HTTPTestServer


def fetch(url: str, kind: str, name: str = "src") -> SourceResult:
    source = SourceConfig(kind, url, name, timeout=5.0)

    async def go() -> SourceResult:
        async with make_client() as client:
            return await fetch_source(source, client, retries=0, backoff=0)

    return asyncio.run(go())


def assert_valid(paper: Paper) -> None:
    """Every text field of the paper is clean output and within its bound."""
    for field in fields(Paper):
        value = getattr(paper, field.name)
        values = value if isinstance(value, list) else [value]
        for text in values:
            if isinstance(text, str):
                assert not hostile.text_problems(text, f"{paper.id} {field.name}")
                text.encode("utf-8")
                if field.name not in ("id", "url", "arxiv_url", "pdf_url", "code_url"):
                    assert all(len(word) <= WORD_CHARS for word in text.split()), field.name
    assert len(paper.title) <= TITLE_CHARS and len(paper.abstract) <= ABSTRACT_CHARS
    assert len(paper.ai_summary) <= SUMMARY_CHARS
    assert all(len(a) <= NAME_CHARS for a in paper.authors)
    assert paper == valid_paper(paper)  # already valid: a second pass changes nothing


@pytest.mark.parametrize(
    ("kind", "path", "body", "ids"),
    [
        ("hf-papers", "/papers", hostile.page_body, hostile.PAGE_IDS),
        ("hf-api", "/api/daily_papers", hostile.api_body, hostile.API_IDS),
        ("feed", "/feed.xml", hostile.feed_body, hostile.FEED_IDS),
    ],
)
def test_hostile_text_becomes_valid_papers_and_good_entries_are_kept(
    http_server: HTTPTestServer, kind: str, path: str, body, ids: list[str]
) -> None:
    url = http_server.serve(path, body(), content_type="text/html; charset=utf-8")
    result = fetch(url, kind)
    assert result.error is None, result.error
    assert [p.id for p in result.papers] == ids  # every usable entry, in order
    for paper in result.papers:
        assert_valid(paper)
    by_title = {p.title.split()[0]: p for p in result.papers}
    # A surrogate is one U+FFFD; the huge word is cut; text real papers hold is kept, in NFC.
    assert "Surrogate \ufffd and \ufffd" in by_title["Surrogate"].title
    assert len(by_title["Word"].title.split()[1]) == WORD_CHARS
    kept = next(p for p in result.papers if "خواهم" in p.title)
    assert hostile.KEPT_NFC in kept.title
    assert "\ufffd\ufffd\ufffd(" in by_title["Bad"].title  # invalid UTF-8, read as U+FFFD
    if kind == "feed":  # a reference to a surrogate inside the description's HTML
        assert by_title["Surrogate"].abstract == "Ref \ufffd in HTML"
        assert by_title["Another"].abstract == "With markup & an entity."
    for warning in result.warnings:
        assert not hostile.text_problems(warning, "warning")


def test_a_feed_names_what_it_repaired_and_what_it_skipped(http_server: HTTPTestServer) -> None:
    url = http_server.serve("/feed.xml", hostile.feed_body(), content_type="application/rss+xml")
    result = fetch(url, "feed", "hostile-feed")
    repaired, skipped = result.warnings
    assert "invalid UTF-8 sequence(s)" in repaired and "control character(s)" in repaired
    assert "reference(s) to characters XML forbids" in repaired
    # The entry whose link is not a URL and the one whose title is only invisible characters.
    assert "skipped 2 of 10 entries" in skipped and "2611.30009 has no title" in skipped


def test_invalid_utf8_in_a_feed_does_not_turn_the_rest_into_windows_1252(
    http_server: HTTPTestServer,
) -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>Café résumé</title><link>https://arxiv.org/abs/2611.40001</link></item>"
        "<item><title>Broken BYTES here</title><link>https://arxiv.org/abs/2611.40002</link>"
        "</item></channel></rss>"
    ).encode()
    url = http_server.serve("/f", body.replace(b"BYTES", b"\xe9\xff"), content_type="text/xml")
    result = fetch(url, "feed")
    assert [p.title for p in result.papers] == ["Café résumé", "Broken \ufffd\ufffd here"]


def test_a_feed_in_another_encoding_loses_no_entry_to_a_surrogate_reference(
    http_server: HTTPTestServer,
) -> None:
    body = (
        '<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>Caf\xe9 one</title><link>https://arxiv.org/abs/2611.40003</link></item>"
        "<item><title>Bad &#xD800; &#55296; &#99999999999999999999; two</title>"
        "<link>https://arxiv.org/abs/2611.40004</link></item></channel></rss>"
    ).encode("latin-1")
    result = fetch(http_server.serve("/latin", body, content_type="text/xml"), "feed")
    assert result.error is None, result.error
    assert [p.title for p in result.papers] == ["Café one", "Bad \ufffd \ufffd \ufffd two"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("hf-papers", "not a Daily Papers page"), ("hf-api", "not JSON"), ("feed", "not text")],
)
def test_a_body_that_is_not_text_at_all_is_a_parse_error(
    http_server: HTTPTestServer, kind: str, expected: str
) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
    result = fetch(http_server.serve("/x", png, content_type="image/png"), kind)
    assert isinstance(result.error, ParseError)
    assert "binary data (a PNG image)" in str(result.error) and expected in str(result.error)


def test_absurd_json_values_cost_one_field_not_the_response(http_server: HTTPTestServer) -> None:
    items = hostile.ITEMS[:3]
    text = json.dumps(items)
    # A 5,000-digit count (Python refuses to read 4,300 digits) and a negative one.
    text = text.replace('"upvotes": ', '"upvotes": ' + "9" * 5000 + ', "x": ', 1)
    text = text.replace('"numComments": ', '"numComments": -', 1)
    result = fetch(http_server.serve("/api", text, content_type="application/json"), "hf-api")
    assert result.error is None, result.error
    assert len(result.papers) == 3 and result.papers[0].upvotes is None
    assert all(p.comments is None or p.comments >= 0 for p in result.papers)


def test_json_nested_too_deeply_is_a_parse_error(http_server: HTTPTestServer) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    result = fetch(http_server.serve("/deep", deep, content_type="application/json"), "hf-api")
    assert isinstance(result.error, ParseError) and "nested too deeply" in str(result.error)


def test_messages_that_quote_a_server_are_valid_text(http_server: HTTPTestServer) -> None:
    page = "<!DOCTYPE html><html><head><title>Evil\u202e\ud800\x1b title</title></head></html>"
    url = http_server.serve(
        "/page", page.encode("utf-8", "surrogatepass"), content_type="text/html"
    )
    result = fetch(url, "feed")
    assert isinstance(result.error, ParseError)
    assert "returned an HTML page" in str(result.error)
    assert not hostile.text_problems(str(result.error), "error")


def test_valid_paper_applies_every_bound() -> None:
    paper = valid_paper(
        Paper(
            id=" 2611.00001 ",
            title="t" * 5 + " x" * 5000,
            abstract="a " * 20_000,
            authors=[f"Author {i}" for i in range(5000)] + [""],
            url="javascript:alert(1)",
            pdf_url="https://arxiv.org/pdf/2611.00001",
            upvotes=-1,
            comments=10**20,
            stars=True,  # a bool is not a count
            categories=[f"cs.{i}" for i in range(500)],
        )
    )
    assert paper.id == "2611.00001" and len(paper.title) <= TITLE_CHARS
    assert len(paper.abstract) <= ABSTRACT_CHARS and len(paper.authors) == MAX_AUTHORS
    assert paper.url == "" and paper.pdf_url == "https://arxiv.org/pdf/2611.00001"
    assert (paper.upvotes, paper.comments, paper.stars) == (None, None, None)
    assert len(paper.categories) == 50
    with pytest.raises(UnusableEntry, match="has no title"):
        valid_paper(Paper(id="2611.00002", title="\u200b\u202e\x00"))
    with pytest.raises(UnusableEntry, match="no usable id"):
        valid_paper(Paper(id="\ufeff", title="A title"))


# --- redirects ---------------------------------------------------------------------------------


@pytest.fixture
def other_server() -> Iterator[HTTPTestServer]:
    """A second local HTTP server: another loopback port, another service."""
    server = HTTPTestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>A</title>'
    b"<link>https://arxiv.org/abs/2611.50001</link></item></channel></rss>"
)


def test_a_redirect_to_another_loopback_port_is_refused(
    http_server: HTTPTestServer, other_server: HTTPTestServer
) -> None:
    target = other_server.serve("/secret", FEED, content_type="application/rss+xml")
    url = http_server.redirect("/feed", target)
    result = fetch(url, "feed", "moved")
    assert isinstance(result.error, FetchError) and not result.papers
    message = str(result.error)
    assert message.startswith(f"moved: refused to follow the redirect from {url} to {target}")
    assert f"127.0.0.1:{other_server.port}" in message and "not the configured" in message
    assert other_server.count("/secret") == 0  # never asked


def test_a_redirect_on_the_configured_server_is_followed_to_the_bound(
    http_server: HTTPTestServer,
) -> None:
    http_server.serve("/feed-0", FEED, content_type="application/rss+xml")
    for hop in range(1, MAX_REDIRECTS + 2):
        http_server.redirect(f"/feed-{hop}", f"/feed-{hop - 1}")  # relative Locations
    result = fetch(http_server.url(f"/feed-{MAX_REDIRECTS}"), "feed")
    assert result.error is None and [p.id for p in result.papers] == ["2611.50001"]
    too_deep = fetch(http_server.url(f"/feed-{MAX_REDIRECTS + 1}"), "feed")
    assert isinstance(too_deep.error, FetchError) and "too many redirects" in str(too_deep.error)


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://127.0.0.1/x", "http://[bad/", "data:,x"]
)
def test_a_redirect_to_another_scheme_or_no_url_is_refused(
    http_server: HTTPTestServer, location: str
) -> None:
    url = http_server.redirect("/feed", location)
    result = fetch(url, "feed")
    assert isinstance(result.error, FetchError), result.error
    assert "redirect" in str(result.error)
    assert http_server.count("/feed") == 1  # refused at once, not retried as a hiccup


@pytest.mark.parametrize(
    ("configured", "current", "target", "refused"),
    [
        ("https://a.org/f", "https://a.org/f", "https://b.org/g", None),
        ("http://a.org/f", "http://a.org/f", "https://a.org/f", None),
        ("https://a.org/f", "https://a.org/f", "http://a.org/f", "from https down"),
        ("https://a.org/f", "https://a.org/f", "http://127.0.0.1/", "local or private"),
        ("https://a.org/f", "https://b.org/g", "http://localhost:8000/", "local or private"),
        ("https://a.org/f", "https://a.org/f", "http://2130706433/", "local or private"),
        ("https://a.org/f", "https://a.org/f", "http://0x7f.1/", "local or private"),
        ("https://a.org/f", "https://a.org/f", "http://[::ffff:10.0.0.1]/", "local or private"),
        ("https://a.org/f", "https://a.org/f", "http://169.254.169.254/meta", "local or private"),
        ("https://a.org/f", "https://a.org/f", "http://intranet/", "local or private"),
        ("https://a.org/f", "https://a.org/f", "http://db.internal/", "local or private"),
        ("http://127.0.0.1:80/f", "http://127.0.0.1/f", "http://127.0.0.1/g", None),
        ("http://127.0.0.1:8000/f", "http://127.0.0.1:8000/f", "http://127.0.0.1:8001/", "local"),
        ("http://192.168.1.5/f", "http://192.168.1.5/f", "http://192.168.1.6/f", "local"),
        ("https://a.org/f", "https://a.org/f", "javascript:alert(1)", "not http(s)"),
    ],
)
def test_redirect_policy(configured: str, current: str, target: str, refused: str | None) -> None:
    reason = redirect_refusal(configured, current, target)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def test_local_hosts() -> None:
    for host in ("localhost", "a.localhost", "printer.local", "127.0.0.1", "::1", "10.1.2.3"):
        assert is_local_host(host), host
    for host in ("huggingface.co", "export.arxiv.org", "8.8.8.8", "2606:4700::1111"):
        assert not is_local_host(host), host
