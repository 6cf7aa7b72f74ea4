"""The HF Daily Papers page when it changes or breaks: cards fallback, warnings, errors.

Pages are built with tests/fixtures/make_hf_page.py from real items, then broken on purpose,
and fetched through the real local HTTP server.
"""

from __future__ import annotations

import asyncio
import html
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from digest.config import SourceConfig
from digest.errors import PageChangedError, ParseError
from digest.sources import SourceResult, fetch_source, make_client
from tests.support.httpserver import HTTPTestServer

FIXTURES = Path(__file__).parent / "fixtures"
ITEMS = json.loads(
    (FIXTURES / "hf_api_daily_papers_date-2026-08-19_newsletter-chinese.json").read_text("utf-8")
)
HTML = "text/html; charset=utf-8"
PROPS = re.compile(r'(data-target="DailyPapers" data-props=")([^"]*)(")')


def _load_page_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_hf_page", FIXTURES / "make_hf_page.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_hf_page = _load_page_builder()


def page(items: list[dict[str, Any]] = ITEMS) -> str:
    return str(make_hf_page.build(items, "2026-08-19"))


def with_props(page_html: str, raw_json: str) -> str:
    """The page with the DailyPapers data-props replaced by `raw_json` (escaped as HF does)."""
    escaped = html.escape(raw_json, quote=True)
    new, count = PROPS.subn(lambda m: m.group(1) + escaped + m.group(3), page_html)
    assert count == 1
    return new


def without_cards(page_html: str) -> str:
    return re.sub(r"<article\b.*?</article>", "", page_html, flags=re.DOTALL)


def fetch_page(http_server: HTTPTestServer, body: str) -> SourceResult:
    url = http_server.serve("/papers", body, content_type=HTML)

    async def go() -> SourceResult:
        async with make_client() as client:
            source = SourceConfig("hf-papers", url, "hf-papers", timeout=5)
            return await fetch_source(source, client, retries=0, backoff=0)

    return asyncio.run(go())


def test_the_built_page_reads_from_the_json(http_server: HTTPTestServer) -> None:
    result = fetch_page(http_server, page())
    assert result.error is None and result.warnings == []
    assert len(result.papers) == 26
    first = result.papers[0]
    assert first.id == "2608.17271" and first.abstract and first.authors
    assert first.url == "https://huggingface.co/papers/2608.17271"


def test_cards_only_when_the_dailypapers_div_is_gone(http_server: HTTPTestServer) -> None:
    body = page().replace('data-target="DailyPapers"', 'data-target="DailyPapersV2"')
    result = fetch_page(http_server, body)
    assert result.error is None
    assert [p.id for p in result.papers] == [item["paper"]["id"] for item in ITEMS]
    first = result.papers[0]
    assert first.title == "ASI-Bench: At the Dawn of Artificial Superintelligence"
    assert first.upvotes == 38  # from div.leading-none, not the "Submitted by" badge
    assert first.abstract == "" and first.authors == []
    assert first.url == "https://huggingface.co/papers/2608.17271"
    assert first.arxiv_url == "https://arxiv.org/abs/2608.17271"
    assert first.sources == ["hf-papers"]
    assert len(result.warnings) == 1
    warning = result.warnings[0]
    assert warning.startswith("hf-papers: the Daily Papers page changed")
    assert 'no div[data-target="DailyPapers"] element' in warning
    assert "cards only" in warning


def test_card_titles_are_unescaped_and_collapsed(http_server: HTTPTestServer) -> None:
    items = [
        {
            "paper": {
                "id": "2608.00001",
                "title": "Q&A <models>\n  at   scale",
                "summary": "s",
                "upvotes": 1234,
            }
        },
    ]
    result = fetch_page(http_server, with_props(page(items), "{"))
    assert [(p.id, p.title, p.upvotes) for p in result.papers] == [
        ("2608.00001", "Q&A <models> at scale", 1234)
    ]


def test_broken_json_with_cards_gives_papers_and_a_warning(http_server: HTTPTestServer) -> None:
    good = json.dumps({"dailyPapers": ITEMS})
    result = fetch_page(http_server, with_props(page(), good[: len(good) // 2]))
    assert result.error is None
    assert len(result.papers) == 26
    assert len(result.warnings) == 1
    assert "data-props is not valid JSON" in result.warnings[0]


@pytest.mark.parametrize(
    ("props", "problem"),
    [
        ('{"dailyPapers": [', "data-props is not valid JSON"),
        ("", "data-props attribute is missing or empty"),
        ('{"papers": []}', "has no dailyPapers list"),
        ('{"dailyPapers": [{"paper": {"title": "no id"}}]}', "none of its 1 dailyPapers items"),
        ("[1, 2]", "is a JSON list, not an object"),
    ],
)
def test_bad_json_without_cards_is_page_changed(
    http_server: HTTPTestServer, props: str, problem: str
) -> None:
    result = fetch_page(http_server, without_cards(with_props(page(), props)))
    assert isinstance(result.error, PageChangedError)
    assert isinstance(result.error, ParseError)
    assert result.papers == []
    message = str(result.error)
    assert "\n" not in message
    assert message.startswith(f"hf-papers: no papers on {http_server.url('/papers')}: ")
    assert problem in message
    assert "no paper cards" in message
    assert result.error.fix == "the page structure changed; check the url or report it"


def test_page_with_neither_data_nor_cards_is_page_changed(http_server: HTTPTestServer) -> None:
    body = without_cards(page()).replace('data-target="DailyPapers"', 'data-target="Nope"')
    result = fetch_page(http_server, body)
    assert isinstance(result.error, PageChangedError)
    assert str(result.error) == (
        f"hf-papers: no papers on {http_server.url('/papers')}: "
        'no div[data-target="DailyPapers"] element and no paper cards '
        "(fix: the page structure changed; check the url or report it)"
    )


def test_an_unrelated_html_page_is_page_changed(http_server: HTTPTestServer) -> None:
    body = "<!doctype html><html><head><title>Login</title></head><body>Sign in</body></html>"
    result = fetch_page(http_server, body)
    assert isinstance(result.error, PageChangedError)


def test_some_bad_items_are_skipped_with_a_warning(http_server: HTTPTestServer) -> None:
    items = [*ITEMS[:2], {"paper": {"title": "lost its id", "summary": ""}}]
    body = with_props(page(ITEMS[:2]), json.dumps({"dailyPapers": items}))
    result = fetch_page(http_server, body)
    assert result.error is None
    assert len(result.papers) == 2
    assert len(result.warnings) == 1 and "skipped 1 of 3" in result.warnings[0]


def test_only_required_fields(http_server: HTTPTestServer) -> None:
    items = [{"paper": {"id": "2608.00002v2", "title": " T ", "summary": "An\n abstract."}}]
    result = fetch_page(http_server, page(items))
    assert result.error is None and result.warnings == []
    (p,) = result.papers
    assert (p.id, p.title, p.abstract, p.authors, p.upvotes, p.code_url, p.published) == (
        "2608.00002",
        "T",
        "An abstract.",
        [],
        None,  # the JSON has no upvotes; the JSON wins over the card's "0"
        "",
        "",
    )
