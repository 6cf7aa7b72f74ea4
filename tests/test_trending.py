""" "Trending today" names only papers the reader was never sent.

Five days of the HF page, each listing the papers of the days before too (popular papers stay on
the page for days, with more upvotes), sent into aiosmtpd by `send_now`; each mail's trending
section is read back from its HTML.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from digest.config import load_config
from digest.run import RunOptions, send_now
from digest.store import Store
from tests.support.helpers import hf_items, hf_page, write_config
from tests.support.mail import parse_wire
from tests.support.run import deps

TRENDING = 5  # entries, as the README says

READERS = [
    # No keywords: the day's most upvoted new papers, exactly those a trending list would show.
    {"email": "ada@example.org", "max_papers": 3},
    {"email": "bob@example.org", "keywords": ["language model", "agent", "reasoning"]},
    {"email": "cy@example.org", "keywords": ["video", "diffusion"], "max_papers": 2},
]


def day_pages() -> Iterator[list[dict[str, Any]]]:
    """Day d lists the papers of days 0..d: six new ones a day; older ones gain upvotes, so
    what readers got earlier keeps the top of the page."""
    items = copy.deepcopy(hf_items())
    for day in range(5):
        for age, item in enumerate(reversed(items[: 6 * (day + 1)])):
            item["paper"]["upvotes"] = 10 + 7 * age + len(item["paper"]["id"]) % 5
        yield copy.deepcopy(items[: 6 * (day + 1)])


def trending_of(data: bytes) -> list[str]:
    message = parse_wire(data)
    html = message.get_body(("html",))
    assert html is not None
    tree = LexborHTMLParser(html.get_content())
    return [a.attributes["href"].rsplit("/", 1)[-1] for a in tree.css("td.trend a")]


def test_trending_never_names_a_paper_the_reader_was_sent(tmp_path, smtp_server):
    page = tmp_path / "papers.html"
    config = load_config(
        write_config(
            tmp_path / "digest.toml",
            sources=[{"type": "hf-papers", "url": str(page)}],
            subscribers=[r | {"timezone": "UTC", "send_at": "07:00"} for r in READERS],
            delivery={
                "method": "smtp",
                "host": smtp_server.host,
                "port": smtp_server.port,
                "security": "none",
            },
            digest={"send_empty": True},
        )
    )
    sent: dict[str, set[str]] = {r["email"]: set() for r in READERS}
    repeats_before = 0  # what the old rule (most upvoted, not in this digest) would repeat
    start = datetime(2026, 6, 15, 7, 0, tzinfo=UTC)
    for day, items in enumerate(day_pages()):
        page.write_text(hf_page(items), encoding="utf-8")
        now = start + timedelta(days=day)
        before = len(smtp_server.messages)
        report = send_now(config, RunOptions(), deps(now, mailer=smtp_server.mailer()))
        assert {s.status for s in report.subscribers} == {"sent"}, report.subscribers
        by_upvotes = [i["paper"]["id"] for i in sorted(items, key=lambda i: -i["paper"]["upvotes"])]
        with Store.open(config.digest.state) as store:
            for message in smtp_server.messages[before:]:
                [email] = message.rcpt_tos
                digest = store.get_digest(email, now.date())
                assert digest is not None
                now_sent = set(digest.paper_ids)
                trending = trending_of(message.data)
                assert not set(trending) & (sent[email] | now_sent), (day, email, trending)
                # Five whenever the page has five the reader was never sent.
                others = [p for p in by_upvotes if p not in sent[email] | now_sent]
                assert trending == others[:TRENDING], (day, email)
                old = [p for p in by_upvotes if p not in now_sent][:TRENDING]
                repeats_before += len(set(old) & sent[email])
                if day:  # from the second day on, the page always has five more
                    assert len(trending) == TRENDING
                sent[email] |= now_sent
    assert repeats_before >= 10  # the old rule would have repeated many of them
