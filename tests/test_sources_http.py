"""Fetching through a real local HTTP server: retries, conditional GET, faults, clear errors."""

from __future__ import annotations

import asyncio
import email.utils
import os
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from digest.config import SourceConfig
from digest.errors import FetchError, ParseError
from digest.sources import (
    USER_AGENT,
    SourceResult,
    Validators,
    fetch_all,
    fetch_source,
    make_client,
)
from digest.sources.hf_api import api_url
from digest.sources.http import RETRY_AFTER_CAP, _retry_after
from tests.support.httpserver import HTTPTestServer, Reply

FIXTURES = Path(__file__).parent / "fixtures"
ARXIV_RSS = FIXTURES / "arxiv_rss_cs_AI_2026-04-27_distill.xml"
HF_JSON = FIXTURES / "hf_api_daily_papers_2026-08-03_newsassistant.json"
HF_PAGE = FIXTURES / "hf-pages" / "papers_2026-08-03_newsassistant.html"
RSS = "application/rss+xml; charset=utf-8"
LAST_MODIFIED = "Mon, 27 Apr 2026 04:00:00 GMT"


def fetch(
    url: str,
    kind: str = "feed",
    validators: Validators | None = None,
    *,
    name: str = "arxiv-ai",
    timeout: float = 5.0,
    retries: int = 2,
    backoff: float = 0.0,
) -> SourceResult:
    source = SourceConfig(kind, url, name, timeout=timeout)

    async def go() -> SourceResult:
        async with make_client() as client:
            return await fetch_source(source, client, validators, retries=retries, backoff=backoff)

    return asyncio.run(go())


def one_line(error: Exception | None) -> str:
    assert error is not None
    text = str(error)
    assert "\n" not in text
    return text


# --- the fixture itself --------------------------------------------------------------------


def test_http_server_serves_scripts_and_records(http_server: HTTPTestServer) -> None:
    http_server.serve("/a", b"hello", content_type="text/plain")
    http_server.script("/b", [Reply(503), Reply(200, "ok")])
    http_server.redirect("/old", "/a")

    with httpx.Client() as client:
        assert client.get(http_server.url("/a?x=1")).text == "hello"
        assert client.get(http_server.url("/b")).status_code == 503
        assert client.get(http_server.url("/b")).text == "ok"
        assert client.get(http_server.url("/b")).text == "ok"  # the last reply repeats
        assert client.get(http_server.url("/old"), follow_redirects=True).text == "hello"
        missing = client.get(http_server.url("/nope"))
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert http_server.count("/b") == 3
    first = http_server.requests[0]
    assert (first.method, first.path, first.query) == ("GET", "/a", "x=1")
    assert "user-agent" in first.headers


def test_http_server_answers_304_for_matching_validators(http_server: HTTPTestServer) -> None:
    http_server.serve("/f", b"x", etag='"v1"', last_modified=LAST_MODIFIED)
    with httpx.Client() as client:
        assert (
            client.get(http_server.url("/f"), headers={"If-None-Match": '"v1"'}).status_code == 304
        )
        assert (
            client.get(http_server.url("/f"), headers={"If-None-Match": '"v0"'}).status_code == 200
        )
        ims = {"If-Modified-Since": LAST_MODIFIED}
        assert client.get(http_server.url("/f"), headers=ims).status_code == 304
        older = {"If-Modified-Since": "Sun, 26 Apr 2026 04:00:00 GMT"}
        assert client.get(http_server.url("/f"), headers=older).status_code == 200


# --- requests ------------------------------------------------------------------------------


def test_fetch_sends_user_agent_and_accept(http_server: HTTPTestServer) -> None:
    url = http_server.serve_file("/rss", ARXIV_RSS, content_type=RSS)
    result = fetch(url)
    assert result.error is None and len(result.papers) == 3
    headers = http_server.requests[0].headers
    assert headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("paper-digest/") and "+http" in USER_AGENT
    assert "application/rss+xml" in headers["accept"]
    assert "if-none-match" not in headers and "if-modified-since" not in headers


def test_conditional_get_round_trip_gives_304(http_server: HTTPTestServer) -> None:
    url = http_server.serve_file(
        "/rss", ARXIV_RSS, content_type=RSS, etag='"abc"', last_modified=LAST_MODIFIED
    )
    first = fetch(url)
    assert first.error is None and len(first.papers) == 3 and not first.not_modified
    assert first.validators == Validators(etag='"abc"', last_modified=LAST_MODIFIED)

    second = fetch(url, validators=first.validators)
    assert second.error is None
    assert second.not_modified is True
    assert second.papers == []
    assert second.validators == first.validators
    sent = http_server.requests[-1].headers
    assert sent["if-none-match"] == '"abc"'
    assert sent["if-modified-since"] == LAST_MODIFIED


def test_conditional_get_with_last_modified_only(http_server: HTTPTestServer) -> None:
    url = http_server.serve_file("/rss", ARXIV_RSS, content_type=RSS, last_modified=LAST_MODIFIED)
    first = fetch(url)
    assert first.validators == Validators(etag=None, last_modified=LAST_MODIFIED)
    second = fetch(url, validators=first.validators)
    assert second.not_modified and second.papers == []


def test_changed_content_is_fetched_again(http_server: HTTPTestServer) -> None:
    url = http_server.serve_file("/rss", ARXIV_RSS, content_type=RSS, etag='"new"')
    result = fetch(url, validators=Validators(etag='"old"'))
    assert not result.not_modified and len(result.papers) == 3
    assert result.validators == Validators(etag='"new"')


def test_redirects_are_followed(http_server: HTTPTestServer) -> None:
    http_server.serve_file("/feeds/cs.AI", ARXIV_RSS, content_type=RSS)
    url = http_server.redirect("/rss/cs.AI", "/feeds/cs.AI", status=301)
    result = fetch(url)
    assert result.error is None and len(result.papers) == 3


# --- retries -------------------------------------------------------------------------------


def test_503_then_200_is_retried(http_server: HTTPTestServer) -> None:
    body = ARXIV_RSS.read_bytes()
    url = http_server.script(
        "/rss", [Reply(503, "busy"), Reply(502), Reply(200, body, content_type=RSS)]
    )
    result = fetch(url, retries=3)
    assert result.error is None and len(result.papers) == 3
    assert http_server.count("/rss") == 3


def test_persistent_503_is_a_fetch_error_after_the_retries(http_server: HTTPTestServer) -> None:
    url = http_server.serve("/rss", "down", status=503)
    result = fetch(url, retries=2)
    assert isinstance(result.error, FetchError)
    assert result.error.source == "arxiv-ai"
    message = one_line(result.error)
    assert message.startswith("arxiv-ai: HTTP 503")
    assert url in message
    assert result.error.fix
    assert result.papers == [] and result.validators is None
    assert http_server.count("/rss") == 3  # 1 + 2 retries


def test_429_honours_retry_after_seconds(http_server: HTTPTestServer) -> None:
    body = ARXIV_RSS.read_bytes()
    url = http_server.script(
        "/rss",
        [Reply(429, headers={"Retry-After": "1"}), Reply(200, body, content_type=RSS)],
    )
    started = time.monotonic()
    result = fetch(url, backoff=0)
    elapsed = time.monotonic() - started
    assert result.error is None and len(result.papers) == 3
    assert elapsed >= 0.9  # waited as asked although backoff is 0
    assert http_server.count("/rss") == 2


def test_429_honours_retry_after_http_date(http_server: HTTPTestServer) -> None:
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    body = ARXIV_RSS.read_bytes()
    url = http_server.script(
        "/rss", [Reply(429, headers={"Retry-After": past}), Reply(200, body, content_type=RSS)]
    )
    started = time.monotonic()
    result = fetch(url)
    assert result.error is None and len(result.papers) == 3
    assert time.monotonic() - started < 2


def test_retry_after_beyond_the_cap_stops_retrying(http_server: HTTPTestServer) -> None:
    url = http_server.serve("/rss", "slow down", status=429, headers={"Retry-After": "3600"})
    started = time.monotonic()
    result = fetch(url, retries=3)
    assert time.monotonic() - started < 2
    assert isinstance(result.error, FetchError)
    message = one_line(result.error)
    assert "HTTP 429" in message and "retry after 3600 s" in message
    assert http_server.count("/rss") == 1


def test_retry_after_parsing() -> None:
    assert _retry_after("7") == 7.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (_retry_after(future) or 0) <= 31
    assert _retry_after(email.utils.formatdate(time.time() - 30, usegmt=True)) == 0.0
    assert RETRY_AFTER_CAP >= 60


def test_404_is_not_retried(http_server: HTTPTestServer) -> None:
    url = http_server.url("/missing.xml")
    result = fetch(url, retries=3)
    assert isinstance(result.error, FetchError)
    assert one_line(result.error) == (
        f"arxiv-ai: HTTP 404 Not Found for {url} (fix: check the url)"
    )
    assert http_server.count("/missing.xml") == 1


def test_timeout_is_a_quick_fetch_error(http_server: HTTPTestServer) -> None:
    url = http_server.serve("/slow", ARXIV_RSS.read_bytes(), content_type=RSS, delay=3)
    started = time.monotonic()
    result = fetch(url, timeout=0.2, retries=1)
    elapsed = time.monotonic() - started
    assert isinstance(result.error, FetchError)
    assert "timed out" in one_line(result.error) and url in str(result.error)
    assert elapsed < 1.5
    assert http_server.count("/slow") == 2  # one retry


def test_connection_refused(http_server: HTTPTestServer) -> None:
    url = http_server.refused_url("/rss")
    result = fetch(url, retries=1)
    assert isinstance(result.error, FetchError)
    message = one_line(result.error)
    assert message.startswith("arxiv-ai: cannot connect to 127.0.0.1:")
    assert "check the url" in message


def test_body_cut_short_by_the_server_is_retried_then_fails(http_server: HTTPTestServer) -> None:
    url = http_server.serve("/rss", ARXIV_RSS.read_bytes(), content_type=RSS, truncate=500)
    result = fetch(url, retries=1)
    assert isinstance(result.error, FetchError)
    assert "connection broke" in one_line(result.error)
    assert http_server.count("/rss") == 2


def test_body_cut_short_once_then_complete(http_server: HTTPTestServer) -> None:
    body = ARXIV_RSS.read_bytes()
    url = http_server.script(
        "/rss",
        [Reply(200, body, content_type=RSS, truncate=100), Reply(200, body, content_type=RSS)],
    )
    result = fetch(url)
    assert result.error is None and len(result.papers) == 3


# --- wrong content -------------------------------------------------------------------------


def test_html_error_page_instead_of_a_feed(http_server: HTTPTestServer) -> None:
    page = (
        "<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>"
        "<body><h1>We are down for maintenance</h1></body></html>"
    )
    url = http_server.serve("/rss", page, content_type="text/html")
    result = fetch(url)
    assert isinstance(result.error, ParseError)
    assert one_line(result.error) == (
        f"arxiv-ai: {url} returned an HTML page ('Service Unavailable'), not an RSS/Atom feed "
        "(fix: check the url points at an RSS or Atom feed)"
    )
    assert result.validators is None


def test_empty_body_is_a_parse_error(http_server: HTTPTestServer) -> None:
    url = http_server.serve("/rss", b"", content_type=RSS)
    result = fetch(url)
    assert isinstance(result.error, ParseError)
    assert "is empty" in one_line(result.error)


def test_binary_garbage_is_a_parse_error(http_server: HTTPTestServer) -> None:
    garbage = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + os.urandom(512)
    url = http_server.serve("/rss", garbage, content_type="application/octet-stream")
    result = fetch(url)
    assert isinstance(result.error, ParseError)
    assert "not a readable feed" in one_line(result.error)


def test_truncated_feed_document_keeps_complete_entries(http_server: HTTPTestServer) -> None:
    body = ARXIV_RSS.read_bytes()
    cut = body.index(b"<item>", body.index(b"</item>")) + 300  # inside the second item
    url = http_server.serve("/rss", body[:cut], content_type=RSS)
    result = fetch(url)
    assert result.error is None
    assert [p.id for p in result.papers] == ["2604.21935"]
    assert len(result.warnings) == 1 and "cut short" in result.warnings[0]


def test_hf_api_through_http(http_server: HTTPTestServer) -> None:
    url = http_server.serve_file("/api/daily_papers", HF_JSON, etag='W/"1"')
    result = fetch(url, "hf-api", name="hf")
    assert result.error is None and len(result.papers) == 3
    assert result.validators == Validators(etag='W/"1"')
    assert http_server.requests[0].query == ""  # limit=100 only for huggingface.co
    assert "application/json" in http_server.requests[0].headers["accept"]
    again = fetch(url, "hf-api", result.validators, name="hf")
    assert again.not_modified and again.papers == []


def test_hf_api_empty_day(http_server: HTTPTestServer) -> None:
    result = fetch(http_server.serve("/api", "[]", content_type="application/json"), "hf-api")
    assert result.error is None and result.papers == [] and result.warnings == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<!doctype html><html><body>Sign in</body></html>", "returned an HTML page, not JSON"),
        ('[{"paper": {"id": "2606.00467", "title": "x"', "returned broken JSON, not JSON"),
        ('{"error": "Invalid date"}', "a JSON dict, not a list of papers: Invalid date"),
        ("", "returned an empty response"),
        ('[{"paper": {"title": "no id"}}, {"numComments": 3}]', "none of the 2 items"),
    ],
)
def test_hf_api_bad_responses(http_server: HTTPTestServer, body: str, expected: str) -> None:
    url = http_server.serve("/api", body, content_type="application/json")
    result = fetch(url, "hf-api", name="hf")
    assert isinstance(result.error, ParseError)
    assert expected in one_line(result.error)
    assert str(result.error).startswith(f"hf: {url}")


def test_hf_api_url_asks_for_100_papers() -> None:
    base = "https://huggingface.co/api/daily_papers"
    assert api_url(base) == base + "?limit=100"
    assert api_url(base + "?date=2026-08-19") == base + "?date=2026-08-19&limit=100"
    assert api_url(base + "?limit=3") == base + "?limit=3"
    assert api_url("http://127.0.0.1:8000/api/daily_papers") == (
        "http://127.0.0.1:8000/api/daily_papers"
    )
    assert api_url("/tmp/papers.json") == "/tmp/papers.json"


# --- local files ---------------------------------------------------------------------------


def test_local_paths_and_file_urls(tmp_path: Path) -> None:
    copy = tmp_path / "my feed.xml"
    copy.write_bytes(ARXIV_RSS.read_bytes())
    assert len(fetch(str(copy)).papers) == 3
    assert len(fetch(copy.as_uri()).papers) == 3  # file:///.../my%20feed.xml


def test_missing_local_file(tmp_path: Path) -> None:
    result = fetch(str(tmp_path / "nope.xml"))
    assert isinstance(result.error, FetchError)
    assert "not found" in one_line(result.error) and "nope.xml" in str(result.error)


def test_empty_local_file(tmp_path: Path) -> None:
    blank = tmp_path / "blank"
    blank.write_bytes(b"")
    for kind, expected in (
        ("feed", "is empty, not a feed"),
        ("hf-api", "returned an empty response, not JSON"),
        ("hf-papers", "is empty, not a Daily Papers page"),
    ):
        result = fetch(str(blank), kind)
        assert isinstance(result.error, ParseError), kind
        assert one_line(result.error).startswith(f"arxiv-ai: {blank} "), kind
        assert expected in str(result.error), kind


def test_unsupported_scheme() -> None:
    result = fetch("ftp://example.org/feed.xml")
    assert isinstance(result.error, FetchError)
    assert "unsupported url scheme 'ftp'" in one_line(result.error)


# --- many sources --------------------------------------------------------------------------


def test_fetch_all_is_concurrent_ordered_and_isolates_failures(
    http_server: HTTPTestServer,
) -> None:
    http_server.serve_file("/rss", ARXIV_RSS, content_type=RSS, delay=0.6)
    http_server.serve_file("/api", HF_JSON, delay=0.6, etag='"e"')
    http_server.serve_file("/papers", HF_PAGE, delay=0.6)
    sources = [
        SourceConfig("feed", http_server.url("/rss"), "rss"),
        SourceConfig("hf-api", http_server.url("/api"), "api"),
        SourceConfig("feed", http_server.url("/gone"), "gone"),
        SourceConfig("hf-papers", http_server.url("/papers"), "page"),
    ]
    validators: Mapping[str, Validators] = {"api": Validators(etag='"e"')}

    async def go() -> list[SourceResult]:
        async with make_client() as client:
            return await fetch_all(sources, client, validators, retries=0, backoff=0)

    started = time.monotonic()
    results = asyncio.run(go())
    assert time.monotonic() - started < 1.5  # 3 x 0.6 s in parallel, not in series
    assert [r.source.name for r in results] == ["rss", "api", "gone", "page"]
    assert len(results[0].papers) == 3 and results[0].papers[0].sources == ["rss"]
    assert results[1].not_modified and results[1].papers == []
    assert http_server.requests_for("/api")[0].headers["if-none-match"] == '"e"'
    assert isinstance(results[2].error, FetchError) and results[2].error.source == "gone"
    assert len(results[3].papers) == 3 and results[3].error is None
