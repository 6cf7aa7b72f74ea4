"""Issue 25, whole run: a page, an API response and a feed full of hostile text (lone
surrogates, NUL, bidi overrides, zero-width characters, 10,000-character words, a
100,000-character title, invalid UTF-8) through `send_now` into aiosmtpd on 127.0.0.1. The run
is green, every good paper arrives, and the mail as received is clean.

Before issue 25, one lone surrogate ended the run with "internal error: UnicodeEncodeError"
in store.record_papers and nobody got a digest.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from digest.config import load_config
from digest.run import RunOptions, send_now
from digest.store import Store
from digest.text import WORD_CHARS
from tests.support import hostile
from tests.support.helpers import write_config
from tests.support.httpserver import HTTPTestServer
from tests.support.run import deps

NOW = datetime(2026, 6, 12, 7, 0, tzinfo=UTC)
RFC_LINE_BYTES = 998
WIRE_BODY_LINE = 78  # the message module's promise for every body line


def test_a_hostile_day_through_every_source_is_a_green_run_and_a_clean_mail(
    tmp_path: Path, http_server: HTTPTestServer, smtp_server
) -> None:  # type: ignore[no-untyped-def]
    config = load_config(
        write_config(
            tmp_path / "digest.toml",
            sources=hostile.serve_all(http_server),
            subscribers=[
                {
                    "email": "ada@example.org",
                    "name": "Ada Lovelace",
                    "keywords": {"surrogate": 2, "bidi": 2, "word": 1, "kept": 1, "good": 1},
                    "max_papers": 30,
                    "min_score": 0,
                }
            ],
            delivery={"method": "smtp", "host": "127.0.0.1", "port": 25, "security": "none"},
        )
    )
    report = send_now(
        config,
        RunOptions(keep_papers=True, fetch_backoff=0),
        deps(NOW, mailer=smtp_server.mailer()),
    )

    # The run is green: every source read, the digest sent.
    assert report.exit_code == 0, report.summary()
    assert [(s.name, s.status) for s in report.sources] == [
        ("hostile-page", "ok"),
        ("hostile-api", "ok"),
        ("hostile-feed", "ok"),
    ]
    expected = list(dict.fromkeys(hostile.PAGE_IDS + hostile.API_IDS + hostile.FEED_IDS))
    with Store.open(config.digest.state) as store:
        assert store.count_papers() == len(expected)  # every usable entry recorded
    [received] = smtp_server.messages
    [sub] = report.subscribers
    sent_ids = [r.paper.id for r in sub.papers]
    assert set(sent_ids) <= set(expected) and len(sent_ids) >= 10

    # The mail as received: clean subject, text and HTML; lines within limits.
    message = received.message
    text_part, html_part = message.iter_parts()
    text, html = text_part.get_content(), html_part.get_content()
    problems = hostile.text_problems(str(message["Subject"]), "subject")
    problems += hostile.text_problems(str(message["To"]), "to")
    problems += hostile.text_problems(text, "text", max_line=WORD_CHARS + 8)
    problems += hostile.text_problems(_without_preheader_padding(html), "html")
    tree = LexborHTMLParser(html)
    visible = " ".join(n.text() for n in tree.css("h2.title, p, td, li"))
    problems += hostile.text_problems(visible, "html text")
    assert not problems, problems
    lines = received.data.split(b"\r\n")
    assert max(len(line) for line in lines) <= RFC_LINE_BYTES
    body = received.data.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert max(len(line) for line in body) <= WIRE_BODY_LINE
    # Words are bounded, not only lines: the 10,000-character word arrives cut, with "…".
    assert "W" * WORD_CHARS not in text and "W" * (WORD_CHARS - 1) + "…" in text
    # Text real papers hold arrives as it was (NFC): Persian with its ZWNJ, emoji, CJK.
    assert "می\u200cخواهم" in text and "👩\u200d🔬" in text and "注意力" in text


def _without_preheader_padding(html: str) -> str:
    """The template's own preheader padding (&#847;&zwnj;&nbsp;, as entities or characters) is
    markup, not text from a source; everything else must be clean."""
    return re.sub("(?:(?:&#847;|\u034f)(?:&zwnj;|\u200c)(?:&nbsp;|\xa0))+", "", html)
