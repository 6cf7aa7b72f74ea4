"""Weekly and paused readers, whole runs: real SMTP server (aiosmtpd), HF pages built from
captured items in a local file, a SQLite state, the clock passed in (nothing is patched).

A weekly reader gets one mail a week on their local weekday, at its send instant across DST;
each paper once, none lost between weeks (a paper first seen after a week's cut is in the next
week's). A paused reader gets nothing up to and including the date, then the papers since.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from selectolax.lexbor import LexborHTMLParser

from digest.config import load_config
from digest.daemon import Daemon
from digest.run import RunOptions, send_now
from digest.status import render_schedule
from digest.store import Store
from tests.support.helpers import hf_items, hf_page, write_config
from tests.support.run import deps

HF = "https://huggingface.co/papers/"
FILES = [
    "hf_api_daily_papers_2026-06-12_sotawhat.json",
    "hf_api_daily_papers_date-2026-08-19_newsletter-chinese.json",
    "hf_api_daily_papers_date-2024-05-27_newsletter-chinese.json",
    "hf_api_daily_papers_2026-07-31_allnewsai.json",
    "hf_api_daily_papers_2026-08-03_newsassistant.json",
]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def captured_items() -> list[dict[str, Any]]:
    """Every captured HF item (77 papers), each once."""
    seen: dict[str, dict[str, Any]] = {}
    for name in FILES:
        for item in hf_items(name):
            seen.setdefault(item["paper"]["id"], item)
    return list(seen.values())


def paper_ids(message) -> list[str]:
    """The digest's papers (not "trending today"), in order."""
    html = message.get_body(preferencelist=("html",)).get_content()
    ids: list[str] = []
    for a in LexborHTMLParser(html).css("h2.title a[href]"):
        href = a.attributes["href"] or ""
        if href.startswith(HF) and href[len(HF) :] not in ids:
            ids.append(href[len(HF) :])
    return ids


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class World:
    """A config, the page the hf-papers source reads, and what each reader received."""

    def __init__(self, tmp_path: Path, smtp_server) -> None:
        self.tmp_path = tmp_path
        self.smtp = smtp_server
        self.mailer = smtp_server.mailer(retries=1)
        self.page = tmp_path / "papers.html"
        self.pool = captured_items()
        self.served: list[tuple[datetime, list[str]]] = []  # when each paper was first listed
        self.listed: list[dict[str, Any]] = []

    def configure(self, subscribers: list[dict[str, Any]], **digest: Any):
        path = write_config(
            self.tmp_path / "digest.toml",
            sources=[{"type": "hf-papers", "url": "papers.html"}],
            subscribers=subscribers,
            delivery={
                "method": "smtp",
                "host": self.smtp.host,
                "port": self.smtp.port,
                "security": "none",
            },
            digest=digest,
        )
        return load_config(path)

    def serve_new(self, n: int, now: datetime) -> None:
        """The page lists `n` papers it never listed before, and keeps the last few (a paper
        stays on the page for a while: it is not new again)."""
        new, self.pool = self.pool[:n], self.pool[n:]
        self.listed = (self.listed + new)[-6:]
        self.page.write_text(hf_page(self.listed), encoding="utf-8")
        if new:
            self.served.append((now, [i["paper"]["id"] for i in new]))

    def mails(self, email: str) -> list[tuple[str, list[str]]]:
        """(subject, paper ids) of each mail this reader received, in order."""
        return [
            (str(r.message["Subject"]), paper_ids(r.message))
            for r in self.smtp.messages
            if email in r.rcpt_tos
        ]

    def first_seen_between(self, after: datetime, upto: datetime) -> set[str]:
        return {pid for at, ids in self.served if after < at <= upto for pid in ids}


@pytest.fixture
def world(tmp_path, smtp_server) -> World:
    return World(tmp_path, smtp_server)


def digests_of(config, email: str) -> dict[str, Any]:
    with Store.open(config.digest.state) as store:
        return {d.digest_date: d for d in store.digests() if d.subscriber == email}


# --- a weekly reader across DST, driven through the daemon ------------------------------------

WES = {  # Mondays 07:30 in Berlin: 05:30 UTC in summer time, 06:30 UTC from 25 October
    "email": "wes@example.org",
    "timezone": "Europe/Berlin",
    "send_at": "07:30",
    "frequency": "weekly",
    "weekday": "mon",
    "max_papers": 100,
}
CAP = {  # Mondays 07:00 in Los Angeles: 14:00 UTC, 15:00 UTC from 1 November; at most 4
    "email": "cap@example.org",
    "timezone": "America/Los_Angeles",
    "send_at": "07:00",
    "frequency": "weekly",
    "weekday": "Monday",
    "max_papers": 4,
    "min_score": 0.0,
    "keywords": {"language model": 2, "agent": 1, "reasoning": 1},
}


def test_a_weekly_reader_gets_one_mail_a_week_with_every_paper_once_across_dst(world):
    """Four weeks of the daemon (a tick at each wake-up it asks for, a fetch twice a day
    bringing new papers), over Berlin's and Los Angeles' autumn changes."""
    config = world.configure([WES, CAP])
    clock = Clock(utc("2026-10-13 09:00"))  # a Tuesday: the weekly schedules begin now
    daemon = Daemon(
        config, deps(clock=clock, mailer=world.mailer), run_options=RunOptions(fetch_backoff=0)
    )
    daemon.attach()
    arrived: dict[str, list[datetime]] = {"wes@example.org": [], "cap@example.org": []}
    fetches = [
        utc("2026-10-13 10:00") + timedelta(days=day, hours=hours)
        for day in range(22)  # new papers up to Tuesday 3 November
        for hours in (0, 10)
    ]
    end = utc("2026-11-09 23:00")

    async def weeks() -> None:
        while True:
            wake = min(daemon.next_wakeups(clock.now).values())
            fetch = next((t for t in fetches if t > clock.now), end)
            clock.now = min(wake, fetch)
            if clock.now >= end:
                return
            if clock.now == fetch:
                world.serve_new(2 if fetch.hour == 10 else 1, clock.now)
                await daemon.fetch_ahead("cadence")
            if clock.now == wake:
                before = len(world.smtp.messages)
                await daemon.tick("send time")
                for received in world.smtp.messages[before:]:
                    for rcpt in received.rcpt_tos:
                        arrived[rcpt].append(clock.now)

    asyncio.run(weeks())
    # one mail a week, on the reader's Monday, at its send instant before and after DST
    assert arrived["wes@example.org"] == [
        utc("2026-10-19 05:30"),
        utc("2026-10-26 06:30"),  # Berlin changed on Sunday 25 October
        utc("2026-11-02 06:30"),
        utc("2026-11-09 06:30"),
    ]
    assert arrived["cap@example.org"] == [
        utc("2026-10-19 14:00"),
        utc("2026-10-26 14:00"),
        utc("2026-11-02 15:00"),  # Los Angeles changed on Sunday 1 November
        utc("2026-11-09 15:00"),
    ]
    assert sorted(digests_of(config, "wes@example.org")) == [
        "2026-10-19", "2026-10-26", "2026-11-02", "2026-11-09"
    ]  # fmt: skip
    # wes (no cap): each week's digest is every paper first seen since the last one's cut
    mails = world.mails("wes@example.org")
    cuts = [utc("2026-10-13 09:00"), *arrived["wes@example.org"]]
    for (subject, ids), after, upto in zip(mails, cuts[:-1], cuts[1:], strict=True):
        assert subject.startswith("Your weekly digest: ")
        assert set(ids) == world.first_seen_between(after, upto) and len(ids) == len(set(ids))
    everything = [pid for _, ids in world.served for pid in ids]
    sent = [pid for _, ids in mails for pid in ids]
    assert len(everything) == 66 and sorted(sent) == sorted(everything)  # once each, none lost
    # papers first seen after Monday's cut (10:00 and later) are in the next week's digest
    monday_late = world.first_seen_between(utc("2026-10-19 05:30"), utc("2026-10-19 23:00"))
    assert monday_late and monday_late <= set(mails[1][1])
    # cap: at most 4 a week, ranked over the whole week, never a paper twice
    capped = world.mails("cap@example.org")
    cap_cuts = [utc("2026-10-13 09:00"), *arrived["cap@example.org"]]
    for (_, ids), after, upto in zip(capped, cap_cuts[:-1], cap_cuts[1:], strict=True):
        assert 1 <= len(ids) <= 4 and set(ids) <= world.first_seen_between(after, upto)
    cap_sent = [pid for _, ids in capped for pid in ids]
    assert len(cap_sent) == len(set(cap_sent))
    with Store.open(config.digest.state) as store:
        week = store.get_digest("cap@example.org", "2026-10-26")
        assert week is not None and week.status == "sent" and len(week.paper_ids) == 4


# --- paused readers, by send-now at a fixed time each day --------------------------------------


def days(first: str, count: int, at: str = "08:00") -> list[datetime]:
    start = utc(f"{first} {at}")
    return [start + timedelta(days=i) for i in range(count)]


def run_daily(world: World, config, runs: list[datetime], on_run: Callable | None = None):
    reports = []
    for now in runs:
        world.serve_new(3, now)
        report = send_now(config, RunOptions(fetch_backoff=0), deps(now, mailer=world.mailer))
        reports.append(report)
        if on_run is not None:
            on_run(now, report)
    return reports


def test_a_paused_reader_gets_nothing_until_the_date_then_the_papers_since(world):
    pam = {"email": "pam@example.org", "timezone": "Europe/Berlin", "send_at": "07:30",
           "paused_until": "2026-10-16", "max_papers": 100}  # fmt: skip
    pia = {**pam, "email": "pia@example.org", "max_papers": 5}  # by upvotes, at most 5
    config = world.configure([pam, pia])
    statuses: list[str] = []

    def note(now, report):
        statuses.append({s.email: s for s in report.subscribers}["pam@example.org"].status)
        if now == utc("2026-10-14 08:00"):
            [pam_report] = [s for s in report.subscribers if s.email == "pam@example.org"]
            assert pam_report.detail == (
                "paused until 2026-10-16; not due (next: 2026-10-17 07:30 CEST / 05:30 UTC)"
            )
            with Store.open(config.digest.state) as store:
                text = render_schedule(
                    store, store.reader_schedules(), now=now, lease=timedelta(seconds=60)
                )
            assert (
                "pam@example.org: 2026-10-17 07:30 CEST / 05:30 UTC; paused until 2026-10-16"
                in (text)
            )

    run_daily(world, config, days("2026-10-13", 6), note)  # Tuesday 13 to Sunday 18 October
    assert statuses == ["not-due"] * 4 + ["sent", "sent"]
    pam_mails = world.mails("pam@example.org")
    # the first digest after the pause holds every paper since the reader was first seen
    assert set(pam_mails[0][1]) == world.first_seen_between(
        utc("2026-10-12 00:00"), utc("2026-10-17 08:00")
    )
    assert len(pam_mails[0][1]) == 15 and len(pam_mails[1][1]) == 3
    assert sorted(digests_of(config, "pam@example.org")) == ["2026-10-17", "2026-10-18"]
    # capped: the 5 most upvoted of the 15, and the other 10 are not offered again
    pia_mails = world.mails("pia@example.org")
    assert [len(ids) for _, ids in pia_mails] == [5, 3]
    assert not set(pia_mails[1][1]) & set(pam_mails[0][1])
    # --date still names a digest explicitly, paused or not
    paused_again = world.configure([{**pam, "paused_until": "2026-12-31"}])
    world.serve_new(3, utc("2026-10-20 08:00"))
    report = send_now(
        paused_again,
        RunOptions(fetch_backoff=0, digest_date=date(2026, 10, 20)),
        deps(utc("2026-10-20 08:00"), mailer=world.mailer),
    )
    assert [(s.digest_date, s.status) for s in report.subscribers] == [("2026-10-20", "sent")]
    forced = send_now(
        paused_again, RunOptions(fetch_backoff=0, force=True),
        deps(utc("2026-10-21 08:00"), mailer=world.mailer),
    )  # fmt: skip
    assert [s.status for s in forced.subscribers] == ["not-due"]


# --- switching from daily to weekly mid-week ----------------------------------------------------


def test_a_switch_from_daily_to_weekly_mid_week(world):
    """Daily on Monday to Wednesday; weekly on Friday from Wednesday evening: nothing on
    Thursday, Friday's digest holds everything since Wednesday's, then one a week."""
    dan = {"email": "dan@example.org", "timezone": "Europe/Berlin", "send_at": "07:30",
           "max_papers": 100}  # fmt: skip
    daily = world.configure([dan])
    run_daily(world, daily, days("2026-10-12", 3))  # Monday 12 to Wednesday 14 October
    assert [len(ids) for _, ids in world.mails("dan@example.org")] == [3, 3, 3]
    assert not any("weekly" in s for s, _ in world.mails("dan@example.org"))
    weekly = world.configure([{**dan, "frequency": "weekly", "weekday": "fri"}])
    reports = run_daily(world, weekly, days("2026-10-15", 9))  # Thursday 15 to Friday 23
    statuses = [r.subscribers[0].status for r in reports]
    # Thursday: the last Friday passed before the weekly schedule began, so it is not owed
    assert statuses == ["not-due", "sent"] + ["already-sent"] * 6 + ["sent"]
    assert reports[0].subscribers[0].detail == (
        "not due (next: 2026-10-16 07:30 CEST / 05:30 UTC (weekly on Friday))"
    )
    assert (
        reports[2]
        .subscribers[0]
        .detail.endswith("next: 2026-10-23 07:30 CEST / 05:30 UTC (weekly on Friday)")
    )
    mails = world.mails("dan@example.org")
    assert len(mails) == 5
    friday, next_friday = mails[3], mails[4]
    assert friday[0].startswith("Your weekly digest: ")
    assert set(friday[1]) == world.first_seen_between(
        utc("2026-10-14 08:00"), utc("2026-10-16 08:00")
    )  # Thursday's and Friday's papers: none lost in the switch
    assert len(next_friday[1]) == 21  # Saturday to Friday: seven days of three
    sent = [pid for _, ids in mails for pid in ids]
    assert len(sent) == len(set(sent)) == 3 * 12
    assert sorted(digests_of(weekly, "dan@example.org")) == [
        "2026-10-12", "2026-10-13", "2026-10-14", "2026-10-16", "2026-10-23"
    ]  # fmt: skip
