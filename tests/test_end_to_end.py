"""Whole runs over several days: real HTTP server, real SMTP server, a real SQLite file or
PostgreSQL database (each test runs on both).

What every subscriber receives is read back from the SMTP server and parsed.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from selectolax.lexbor import LexborHTMLParser

from digest.config import load_config
from digest.run import Mode, RunOptions, send_now
from digest.store import Store
from digest.store.copy import TABLES
from tests.support.helpers import hf_items, hf_page, write_config
from tests.support.run import deps

DAY1 = datetime(2026, 6, 12, 7, 0, tzinfo=UTC)
HF = "https://huggingface.co/papers/"


def paper_ids(message) -> list[str]:
    html = message.get_body(preferencelist=("html",)).get_content()
    tree = LexborHTMLParser(html)
    ids = []
    for a in tree.css("h2.title a[href]"):  # the digest's papers (not "trending today")
        href = a.attributes["href"] or ""
        if href.startswith(HF) and href[len(HF) :] not in ids:
            ids.append(href[len(HF) :])
    return ids


def received_by(smtp_server) -> dict[str, list[list[str]]]:
    """recipient -> the paper ids of each digest they received, in order."""
    out: dict[str, list[list[str]]] = {}
    for received in smtp_server.messages:
        for rcpt in received.rcpt_tos:
            out.setdefault(rcpt, []).append(paper_ids(received.message))
    return out


def snapshot(state) -> object:
    """The whole state: a SQLite file's bytes, or every row of every table."""
    if state.path is not None:
        return state.path.read_bytes()
    with Store.open(state) as store:
        return {
            table: sorted(map(repr, store.db.execute(f"SELECT * FROM {table}").fetchall()))
            for table in (*TABLES, "meta", "schema_migrations")
        }


@pytest.fixture
def world(tmp_path, http_server, smtp_server, state_url):
    """A config with two subscribers, the HF page on the local HTTP server, SMTP on the local
    SMTP server, the state on each backend; `day(n, items)` serves a page and runs send-now for
    day n."""
    items = hf_items()
    config = load_config(
        write_config(
            tmp_path / "digest.toml",
            sources=[{"type": "hf-papers", "url": http_server.url("/papers")}],
            subscribers=[
                {"email": "all@example.org", "name": "All", "max_papers": 50},
                {
                    "email": "kw@example.org",
                    "keywords": {"agent": 2, "reasoning": 1, "language model": 2},
                    "max_papers": 50,
                },
            ],
            delivery={"method": "smtp", "host": "127.0.0.1", "port": 25, "security": "none"},
            digest={"state": state_url},
        )
    )

    class World:
        def __init__(self):
            self.config = config
            self.items = items
            self.mailer = smtp_server.mailer(retries=2)

        def serve(self, body: str) -> None:
            http_server.serve("/papers", body, content_type="text/html; charset=utf-8")

        def day(self, n: int, body: str, **options):
            self.serve(body)
            now = DAY1 + timedelta(days=n - 1)
            return send_now(
                config, RunOptions(**options, fetch_backoff=0), deps(now, mailer=self.mailer)
            )

    return World()


def test_each_new_paper_reaches_each_subscriber_exactly_once(world, smtp_server):
    items = world.items
    page = lambda part: hf_page(part, "2026-06-12")  # noqa: E731

    # Day 1: papers 0-11.
    r1 = world.day(1, page(items[0:12]))
    assert r1.exit_code == 0 and r1.new_papers == 12
    assert [s.status for s in r1.subscribers] == ["sent", "sent"]

    # Day 2: papers 6-19, overlapping day 1: only 12-19 are new.
    r2 = world.day(2, page(items[6:20]))
    assert r2.exit_code == 0 and r2.new_papers == 8

    # Day 2 again (same date): nothing is sent twice.
    again = world.day(2, page(items[6:20]))
    assert again.exit_code == 0
    assert [s.status for s in again.subscribers] == ["already-sent", "already-sent"]

    # Day 3: the page is broken (structure changed): exit 1, nothing recorded or sent.
    before = len(smtp_server.messages)
    r3 = world.day(3, "<html><body><h1>We'll be right back</h1></body></html>")
    assert r3.exit_code == 1
    assert r3.sources[0].status == "failed" and "hf-papers" in str(r3.sources[0].error)
    assert r3.new_papers == 0
    assert len(smtp_server.messages) == before

    # Day 4: the page is back with papers 20-29: all of them arrive.
    r4 = world.day(4, page(items[18:30]))
    assert r4.exit_code == 0 and r4.new_papers == 10

    got = received_by(smtp_server)
    everything = [i["paper"]["id"] for i in items]
    all_ids = [pid for digest in got["all@example.org"] for pid in digest]
    assert Counter(all_ids) == Counter(everything)  # each paper once, none lost
    assert [len(d) for d in got["all@example.org"]] == [12, 8, 10]

    kw_ids = [pid for digest in got["kw@example.org"] for pid in digest]
    assert kw_ids and len(kw_ids) == len(set(kw_ids))
    assert set(kw_ids) < set(everything)


def test_a_failed_send_rolls_into_the_next_digest(world, smtp_server):
    items = world.items
    world.day(1, hf_page(items[0:10]))
    smtp_server.handler.refuse("all@example.org", "451 4.7.1 try again later")
    r2 = world.day(2, hf_page(items[10:15]))
    assert r2.exit_code == 1
    statuses = {s.email: s.status for s in r2.subscribers}
    assert statuses["all@example.org"] == "pending"
    smtp_server.handler.clear_faults()

    r3 = world.day(3, hf_page(items[15:20]))
    assert r3.exit_code == 0
    got = received_by(smtp_server)["all@example.org"]
    assert [len(d) for d in got] == [10, 10]  # day 2's 5 papers rolled into day 3's digest
    ids = [i["paper"]["id"] for i in items[10:20]]
    assert sorted(got[1]) == sorted(ids)
    with Store.open(world.config.digest.state) as store:
        assert store.get_digest("all@example.org", "2026-06-13").status == "superseded"
        assert store.get_digest("all@example.org", "2026-06-14").status == "sent"


def test_force_sends_the_same_date_again_with_a_new_message_id(world, smtp_server):
    world.day(1, hf_page(world.items[0:5]))
    first = smtp_server.messages[0].message["Message-ID"]
    r = world.day(1, hf_page(world.items[0:5]), force=True, only=("all@example.org",))
    assert [s.status for s in r.subscribers] == ["sent"]
    resent = smtp_server.messages[-1]
    assert resent.rcpt_tos == ["all@example.org"]
    assert len(paper_ids(resent.message)) == 5
    assert resent.message["Message-ID"] != first


def test_the_mail_as_received(world, smtp_server):
    world.day(1, hf_page(world.items[0:3]))
    by_rcpt = {m.rcpt_tos[0]: m.message for m in smtp_server.messages}
    message = by_rcpt["all@example.org"]
    assert message["From"] == "Paper Digest <digest@example.org>"
    assert message["To"] == "All <all@example.org>"
    assert message["Subject"].endswith(" + 2 more · Fri 12 Jun")
    assert message["Date"] and message["Message-ID"].endswith("@example.org>")
    assert message["List-Unsubscribe"] == "<mailto:digest@example.org?subject=unsubscribe>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    first = world.items[0]["paper"]
    assert first["title"].split()[0] in text.get_content()
    assert f"https://arxiv.org/abs/{first['id']}" in text.get_content()
    assert f"{HF}{first['id']}" in html.get_content()
    assert "unsubscribe" in text.get_content().lower()


def test_dry_run_and_preview_leave_the_state_alone(world, smtp_server, tmp_path):
    world.day(1, hf_page(world.items[0:5]))
    state = world.config.digest.state
    before = snapshot(state)
    r = world.day(2, hf_page(world.items[5:9]), mode=Mode.DRY_RUN)
    assert [s.status for s in r.subscribers][0] == "dry-run"
    assert r.subscribers[0].paper_count == 4
    assert len(smtp_server.messages) == 2  # day 1 only
    assert snapshot(state) == before
    # The real run afterwards still sends those 4 papers.
    r2 = world.day(2, hf_page(world.items[5:9]))
    assert r2.subscribers[0].paper_count == 4


def test_a_new_subscriber_gets_only_the_lookback(world, smtp_server, tmp_path):
    world.day(1, hf_page(world.items[0:5]))
    # Ten days later, with a new page, a new subscriber joins.
    text = (tmp_path / "digest.toml").read_text()
    text += '[[subscriber]]\nemail = "new@example.org"\nmax_papers = 50\n'
    (tmp_path / "digest.toml").write_text(text)
    world.config = load_config(tmp_path / "digest.toml")
    world.serve(hf_page(world.items[5:8]))
    r = send_now(
        world.config,
        RunOptions(only=("new@example.org",), fetch_backoff=0),
        deps(DAY1 + timedelta(days=10), mailer=world.mailer),
    )
    assert r.subscribers[0].status == "sent"
    assert r.subscribers[0].paper_count == 3  # not the 5 from ten days ago
    assert r.subscribers[0].digest_date == str(date(2026, 6, 22))
