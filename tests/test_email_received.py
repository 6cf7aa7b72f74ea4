"""The digest as a reader's mail server receives it: a whole `send_now` run into aiosmtpd on
127.0.0.1, the page read from a file, and the received bytes parsed back."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from digest.config import load_config
from digest.run import RunOptions, send_now
from tests.support.digests import FORBIDDEN, hostile_items
from tests.support.helpers import hf_items, hf_page, write_config
from tests.support.run import deps

NOW = datetime(2026, 6, 12, 7, 0, tzinfo=UTC)
GMAIL_CLIP_BYTES = 102 * 1024
KEYWORDS = {"language model": 3, "agent": 2, "reasoning": 1, "attention": 1}


def run_day(tmp_path: Path, smtp_server, items, *, max_papers: int, keywords=KEYWORDS):  # type: ignore[no-untyped-def]
    page = tmp_path / "papers.html"
    page.write_text(hf_page(items), encoding="utf-8")
    config = load_config(
        write_config(
            tmp_path / "digest.toml",
            sources=[{"type": "hf-papers", "url": str(page)}],
            subscribers=[
                {
                    "email": "ada@example.org",
                    "name": "Ada Lovelace",
                    "keywords": keywords,
                    "max_papers": max_papers,
                    "min_score": 0,  # every matching paper, so the digest is as long as asked
                },
            ],  # fmt: skip
            delivery={"method": "smtp", "host": "127.0.0.1", "port": 25, "security": "none"},
        )
    )
    report = send_now(config, RunOptions(keep_papers=True), deps(NOW, mailer=smtp_server.mailer()))
    assert report.exit_code == 0, report.summary()
    [received] = smtp_server.messages
    [sub] = report.subscribers
    return received, [r.paper for r in sub.papers]


def parts(received):  # type: ignore[no-untyped-def]
    message = received.message
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    return text, html


def test_a_real_day_as_received(tmp_path: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    received, papers = run_day(tmp_path, smtp_server, hf_items(), max_papers=15)
    assert len(papers) == 15
    text_part, html_part = parts(received)
    text, html = text_part.get_content(), html_part.get_content()
    tree = LexborHTMLParser(html)

    # Every paper is linked in both parts, in rank order.
    titles = tree.css("h2.title a")
    assert [a.attributes["href"] for a in titles] == [p.url for p in papers]
    for p in papers:
        assert p.url in text and f"https://arxiv.org/abs/{p.id}" in text
        assert f"https://arxiv.org/abs/{p.id}" in html

    # The preheader comes first in the body, names the topics, and is hidden.
    body = tree.body
    assert body is not None and body.child is not None
    first = next(n for n in body.iter() if n.tag != "-text")
    assert "preheader" in (first.attributes.get("class") or "")
    assert first.text().startswith("Today: ")
    # The subject names the top paper and the count.
    assert received.message["Subject"].endswith(" + 14 more · Fri 12 Jun")
    assert received.message["Subject"].startswith(papers[0].title[:30])

    # Matched terms are highlighted, and each highlight is one of the profile's terms (as the
    # ranker stems them: "agent" matches "agents").
    import snowballstemmer

    stem = snowballstemmer.stemmer("english").stemWord
    marks = [m.text().casefold() for m in tree.css("mark")]
    assert marks
    keys = {stem(w) for k in KEYWORDS for w in k.casefold().split()}  # phrases: partial credit
    assert all(stem(m.split()[0]) in keys for m in marks), [
        m for m in marks if stem(m.split()[0]) not in keys
    ]
    assert "Why: " in text and tree.css("p.why")
    # Trending today: the day's most upvoted papers this reader did not get.
    trending = [a.attributes["href"] for a in tree.css("td.trend a")]
    assert trending and not set(trending) & {p.url for p in papers}
    assert "TRENDING TODAY" in text
    # The footer says why and how to leave, in both parts.
    flat = " ".join(text.split())
    assert "Ranked by: language model (3), agent (2), " in flat  # equal weights: any order
    assert "reasoning (1)" in flat and "attention (1)" in flat
    assert "mailto:digest@example.org?subject=unsubscribe" in html


def test_thirty_hostile_papers_as_received(tmp_path: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    items = hostile_items(30)
    received, papers = run_day(
        tmp_path, smtp_server, items, max_papers=30, keywords={"Hostile": 1, "attention": 1}
    )
    assert len(papers) == 30
    text_part, html_part = parts(received)
    text, html = text_part.get_content(), html_part.get_content()
    # Under Gmail's clip, decoded and as sent (quoted-printable).
    assert len(html.encode("utf-8")) < GMAIL_CLIP_BYTES
    encoded = html_part.get_payload(decode=False)
    assert isinstance(encoded, str) and len(encoded.encode("ascii")) < GMAIL_CLIP_BYTES
    assert len(received.data) < 2 * GMAIL_CLIP_BYTES
    # No control or bidi character in either part, nor in the headers.
    for part in (text, html, received.message["Subject"], received.message["To"]):
        assert not FORBIDDEN & set(str(part)), repr(FORBIDDEN & set(str(part)))
    assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", received.data)
    # Every paper is there and linked in both parts; titles capped, LaTeX readable.
    tree = LexborHTMLParser(html)
    titles = tree.css("h2.title a")
    assert [a.attributes["href"] for a in titles] == [p.url for p in papers]
    assert all(len(a.text()) <= 300 for a in titles)
    assert any("𝒪(n²) attention with α-decay" in a.text() for a in titles)
    for p in papers:
        assert p.url in text
    assert all(m.text().casefold() in ("hostile", "attention") for m in tree.css("mark"))
