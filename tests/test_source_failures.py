"""A misbehaving source through a whole run: the healthy sources still go out, the run exits 1
naming the source, nothing from the bad source is recorded, and the next good run delivers it.
Also: any mix of sources in `preview --json`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import load_config
from digest.run import RunOptions, send_now
from digest.store import Store
from tests.support.helpers import FIXTURES, hf_items, hf_page, write_config
from tests.support.httpserver import Reply
from tests.support.run import deps

NOW = datetime(2026, 6, 12, 7, 0, tzinfo=UTC)
ARXIV_RSS = (FIXTURES / "arxiv_rss_cs_LG_2026-04-27_distill.xml").read_bytes()
ARXIV_IDS = {"2604.21952", "2604.21953", "2604.21956"}


def broken_page_without_div() -> str:
    page = hf_page(hf_items()[:3])
    page = re.sub(
        r'<div class="SVELTE_HYDRATER contents" data-target="DailyPapers"[^>]*>', "<div>", page
    )
    return re.sub(r"<article.*?</article>", "", page, flags=re.S)


def broken_json_without_cards() -> str:
    page = hf_page(hf_items()[:3]).replace(
        "&quot;dailyPapers&quot;:[", "&quot;dailyPapers&quot;:[[", 1
    )
    return re.sub(r"<article.*?</article>", "", page, flags=re.S)


FEED_FAULTS = {
    "503 every time": [Reply(503, "<html><body>Service Unavailable</body></html>")],
    "404": [Reply(404, "<html><body>Not Found</body></html>")],
    "an HTML error page with 200": [
        Reply(
            200, "<!DOCTYPE html><html><body><h1>Oops</h1></body></html>", content_type="text/html"
        )
    ],
    "a truncated feed": [Reply(200, ARXIV_RSS[:400], content_type="application/rss+xml")],
    "an empty body": [Reply(200, b"", content_type="application/rss+xml")],
    "binary garbage": [Reply(200, bytes(range(256)) * 20, content_type="application/rss+xml")],
    "a timeout": [Reply(200, ARXIV_RSS, content_type="application/rss+xml", delay=3)],
}

PAGE_FAULTS = {
    "the DailyPapers div removed": broken_page_without_div(),
    "broken JSON in data-props, no cards": broken_json_without_cards(),
    "an empty page": "",
    "binary garbage": (bytes(range(256)) * 20).decode("latin-1"),
}


@pytest.fixture
def two_sources(tmp_path, http_server, smtp_server):
    config = load_config(
        write_config(
            tmp_path / "digest.toml",
            sources=[
                {"type": "hf-papers", "url": http_server.url("/papers")},
                {
                    "type": "feed",
                    "url": http_server.url("/rss/cs.LG"),
                    "name": "arxiv-lg",
                    "timeout": 1,
                },
            ],
            subscribers=[{"email": "ada@example.org", "max_papers": 50}],
            delivery={"method": "smtp", "host": "127.0.0.1", "port": 25, "security": "none"},
        )
    )
    mailer = smtp_server.mailer(retries=1)

    def run(day: int):
        return send_now(
            config,
            RunOptions(fetch_backoff=0, fetch_retries=1),
            deps(NOW + timedelta(days=day), mailer=mailer),
        )

    return config, run


def sent_ids(smtp_server) -> list[str]:
    ids = []
    for received in smtp_server.messages:
        text = received.message.get_body(preferencelist=("plain",)).get_content()
        ids += re.findall(r"https://arxiv\.org/abs/(\d{4}\.\d{4,5})", text)
    return ids


@pytest.mark.parametrize("fault", list(FEED_FAULTS))
def test_a_failing_feed_does_not_stop_the_page_and_loses_nothing(
    fault, two_sources, http_server, smtp_server
):
    config, run = two_sources
    http_server.serve("/papers", hf_page(hf_items()[:5]), content_type="text/html")
    http_server.script("/rss/cs.LG", FEED_FAULTS[fault])

    report = run(0)
    assert report.exit_code == 1
    (failed,) = [s for s in report.sources if s.status == "failed"]
    assert failed.name == "arxiv-lg"
    message = str(failed.error)
    assert "\n" not in message and "arxiv-lg" in message
    # The page's papers went out; nothing of the feed was recorded.
    assert sorted(sent_ids(smtp_server)) == sorted(i["paper"]["id"] for i in hf_items()[:5])
    with Store.open(config.digest.state) as store:
        assert not store.get_papers(ARXIV_IDS)
        assert store.source_state("arxiv-lg").last_error

    # The next good run delivers the feed's papers.
    http_server.serve("/rss/cs.LG", ARXIV_RSS, content_type="application/rss+xml")
    again = run(1)
    assert again.exit_code == 0, [str(s.error) for s in again.sources]
    assert set(sent_ids(smtp_server)) >= ARXIV_IDS
    assert len(sent_ids(smtp_server)) == len(set(sent_ids(smtp_server)))


@pytest.mark.parametrize("fault", list(PAGE_FAULTS))
def test_a_broken_page_is_an_error_never_an_empty_day(fault, two_sources, http_server, smtp_server):
    config, run = two_sources
    http_server.serve("/papers", PAGE_FAULTS[fault], content_type="text/html")
    http_server.serve("/rss/cs.LG", ARXIV_RSS, content_type="application/rss+xml")

    report = run(0)
    assert report.exit_code == 1
    (failed,) = [s for s in report.sources if s.status == "failed"]
    assert failed.name == "hf-papers" and "hf-papers" in str(failed.error)
    assert set(sent_ids(smtp_server)) == ARXIV_IDS  # the healthy feed still went out

    http_server.serve("/papers", hf_page(hf_items()[:5]), content_type="text/html")
    assert run(1).exit_code == 0
    assert {i["paper"]["id"] for i in hf_items()[:5]} <= set(sent_ids(smtp_server))


def test_cards_only_page_still_delivers_and_warns(two_sources, http_server, smtp_server):
    _, run = two_sources
    page = hf_page(hf_items()[:4])
    page = re.sub(r'data-props="[^"]*"', 'data-props="{}"', page, count=0)
    http_server.serve("/papers", page, content_type="text/html")
    http_server.serve("/rss/cs.LG", ARXIV_RSS, content_type="application/rss+xml")
    report = run(0)
    hf = next(s for s in report.sources if s.name == "hf-papers")
    assert hf.status == "ok" and hf.papers == 4
    assert hf.warnings and "changed" in hf.warnings[0]


def test_an_unchanged_feed_costs_a_304_and_sends_nothing_twice(
    two_sources, http_server, smtp_server
):
    _, run = two_sources
    http_server.serve("/papers", hf_page(hf_items()[:2]), content_type="text/html", etag='"p1"')
    http_server.serve("/rss/cs.LG", ARXIV_RSS, content_type="application/rss+xml", etag='"r1"')
    assert run(0).exit_code == 0
    second = run(1)
    assert {s.status for s in second.sources} == {"not-modified"}
    assert [s.status for s in second.subscribers] == ["nothing-new"]
    assert len(smtp_server.messages) == 1
    assert http_server.requests_for("/rss/cs.LG")[-1].headers["if-none-match"] == '"r1"'


def test_preview_json_with_every_kind_of_source(tmp_path, http_server):
    http_server.serve("/papers", hf_page(hf_items()[:10]), content_type="text/html")
    api = json.dumps(hf_items("hf_api_daily_papers_date-2026-08-19_newsletter-chinese.json"))
    http_server.serve("/api/daily_papers", api, content_type="application/json")
    http_server.serve("/rss/cs.LG", ARXIV_RSS, content_type="application/rss+xml")
    for name in (
        "arxiv_api_query_atom_2026-04-30_brevio.xml",
        "thirdparty_rss_takara_tldr_hf_daily_2026-04-30_brevio.xml",
    ):
        http_server.serve(
            f"/{name}", (FIXTURES / name).read_bytes(), content_type="application/xml"
        )
    config = write_config(
        tmp_path / "digest.toml",
        sources=[
            {"type": "hf-papers", "url": http_server.url("/papers")},
            {"type": "hf-api", "url": http_server.url("/api/daily_papers")},
            {"type": "feed", "url": http_server.url("/rss/cs.LG"), "name": "lg"},
            {
                "type": "feed",
                "url": http_server.url("/arxiv_api_query_atom_2026-04-30_brevio.xml"),
                "name": "atom",
            },
            {
                "type": "feed",
                "url": http_server.url(
                    "/thirdparty_rss_takara_tldr_hf_daily_2026-04-30_brevio.xml"
                ),
                "name": "takara",
            },
        ],
        subscribers=[
            {"email": "all@example.org", "max_papers": 500},
            {"email": "kw@example.org", "keywords": {"agent": 2, "reinforcement learning": 1}},
        ],
    )
    result = CliRunner().invoke(cli, ["preview", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    everyone, kw = doc["subscribers"]
    ids = [p["id"] for p in everyone["papers"]]
    assert len(ids) == len(set(ids)) == 10 + 26 + 3 + 66  # 4 atom/takara papers merged
    assert all(p["matched"] for p in kw["papers"])
    assert not (tmp_path / "state.sqlite3").exists()
