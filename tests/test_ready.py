"""Ready before the send time: the daemon fetches, records and embeds ahead (at its cadence and
a few minutes before each send group), a send group uses that fetch as it is, a send-now that
is not due prepares the next send, `digest fetch` does only that, and a paper first seen
between two send groups reaches each reader once.

Real parts: the local HTTP server (it counts requests and answers conditional GETs with 304),
aiosmtpd, SQLite files. The model is a stand-in that counts the texts it embeds
(tests/support/ranking.HashModel). The daemon's jobs are called directly with an injected
clock, as APScheduler calls them (tests/test_daemon.py does the same for its ticks).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.clock import fixed
from digest.config import load_config
from digest.daemon import Daemon
from digest.daemon.process import _Wakeups
from digest.rank.corpus import stored_name
from digest.run import Deps, RunOptions, send_now
from digest.run.prepare import embed_missing
from digest.store import Store
from digest.store.backends import open_database
from tests.support.helpers import hf_items, hf_page, write_config
from tests.support.ranking import HashModel
from tests.support.run import deps

ITEMS = hf_items()
ADA = {"email": "ada@example.org", "timezone": "UTC", "send_at": "07:00"}
BOB = {"email": "bob@example.org", "timezone": "UTC", "send_at": "07:00"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {i["paper"]["id"] for i in items}


@pytest.fixture
def world(tmp_path, smtp_server, http_server):
    class World:
        clock = Clock(utc("2026-06-15 00:00"))
        model = HashModel()
        mailer = smtp_server.mailer(retries=1)
        version = 0

        def serve(self, items: list[dict[str, Any]]) -> None:
            """The page now lists these items; a new ETag, so a conditional GET gets them."""
            self.version += 1
            http_server.serve(
                "/papers",
                hf_page(items),
                content_type="text/html; charset=utf-8",
                etag=f'"v{self.version}"',
            )

        def config(self, subscribers: list[dict[str, Any]], **digest: Any):  # type: ignore[no-untyped-def]
            path = write_config(
                tmp_path / "digest.toml",
                sources=[{"type": "hf-papers", "url": http_server.url("/papers")}],
                subscribers=subscribers,
                delivery={
                    "method": "smtp",
                    "host": smtp_server.host,
                    "port": smtp_server.port,
                    "security": "none",
                },
                digest=digest,
            )
            return load_config(path)

        def deps(self):  # type: ignore[no-untyped-def]
            return deps(clock=self.clock, mailer=self.mailer, model=lambda: self.model)

        def daemon(self, config) -> Daemon:  # type: ignore[no-untyped-def]
            return Daemon(
                config, self.deps(), run_options=RunOptions(fetch_backoff=0, fetch_retries=1)
            )

        def at(self, text: str) -> None:
            self.clock.now = utc(text)

        def requests(self) -> int:
            return http_server.count("/papers")

        def conditional(self) -> bool:
            """The last request carried the validator of what the state holds."""
            return "if-none-match" in http_server.requests_for("/papers")[-1].headers

        def received(self) -> Counter[str]:
            return Counter(r for m in smtp_server.messages for r in m.rcpt_tos)

    w = World()
    w.serve(ITEMS[:4])
    return w


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


KEYWORDS = {"keywords": ["language model", "agent"]}


def test_the_daemon_fetches_and_embeds_ahead_and_the_send_group_only_sends(world):
    config = world.config([ADA | KEYWORDS, BOB | {"keywords": ["reasoning"]}], send_empty=True)
    daemon = world.daemon(config)
    assert daemon.fetch_every == timedelta(minutes=30) and daemon.reuse == timedelta(minutes=5)
    assert daemon.fetch_lead == timedelta(minutes=3)

    world.at("2026-06-15 06:00")  # the cadence: the day's papers are recorded and embedded
    report = run(daemon.fetch_ahead("cadence"))
    assert world.requests() == 1
    assert report.new_papers == 4
    # Each paper: its text and its title; each profile and each of its keywords (Bob's one
    # keyword is his whole profile: one text).
    assert (report.embedded.papers, report.embedded.profiles) == (4, 4)
    assert world.model.calls == 4 * 2 + 4
    with Store.open(config.digest.state) as store:
        assert store.count_papers() == 4 and store.digests() == []

    world.at("2026-06-15 06:30")  # the next cadence: one conditional GET, nothing to embed
    report = run(daemon.fetch_ahead("cadence"))
    assert world.requests() == 2 and world.conditional()
    assert [s.status for s in report.sources] == ["not-modified"]
    assert world.model.calls == 12

    world.at("2026-06-15 06:57")  # a few minutes before the send group: a new paper appears
    world.serve(ITEMS[:5])
    report = run(daemon.fetch_ahead("fetch before 07:00 UTC"))
    assert world.requests() == 3 and report.new_papers == 1
    assert world.model.calls == 14  # only the new paper: nothing stored is embedded again

    world.at("2026-06-15 07:00")  # the send group: no fetch, no embedding; it only sends
    report = run(daemon.tick("send time"))
    assert world.requests() == 3
    assert [s.status for s in report.sources] == ["reused"]
    assert world.model.calls == 14
    assert sorted((s.email, s.status) for s in report.subscribers) == [
        ("ada@example.org", "sent"),
        ("bob@example.org", "sent"),
    ]
    assert world.received() == Counter({"ada@example.org": 1, "bob@example.org": 1})


def test_a_send_group_fetches_again_when_the_last_fetch_is_older_than_the_reuse_window(world):
    config = world.config([ADA | KEYWORDS], send_empty=True)
    daemon = world.daemon(config)
    world.at("2026-06-15 06:30")
    run(daemon.fetch_ahead("cadence"))
    assert world.requests() == 1
    world.at("2026-06-15 07:00")  # 30 minutes later: older than the 5-minute window
    report = run(daemon.tick("send time"))
    assert world.requests() == 2 and world.conditional()
    assert [s.status for s in report.sources] == ["not-modified"]
    assert [s.status for s in report.subscribers] == ["sent"]


def test_the_cadence_asks_a_source_at_most_once_within_the_reuse_window(world):
    daemon = world.daemon(world.config([ADA | KEYWORDS]))
    world.at("2026-06-15 06:57")
    run(daemon.fetch_ahead("fetch before 07:00 UTC"))
    world.at("2026-06-15 07:00")
    run(daemon.fetch_ahead("cadence"))  # the cadence fires 3 minutes after the pre-send fetch
    run(daemon.tick("send time"))
    assert world.requests() == 1


def test_each_send_group_has_a_fetch_armed_ahead_of_it(world):
    class Scheduler:
        def __init__(self) -> None:
            self.jobs: dict[str, datetime] = {}

        def get_jobs(self) -> list[Any]:
            return []

        def get_job(self, job_id: str) -> Any:
            return None

        def add_job(self, func, trigger, *, id, run_date=None, seconds=None, **kwargs):  # type: ignore[no-untyped-def]  # noqa: A002
            self.jobs[id] = run_date or timedelta(seconds=seconds)

    config = world.config([ADA, {"email": "kai@example.org", "timezone": "Asia/Tokyo"}])
    daemon = world.daemon(config)
    world.at("2026-06-15 05:00")
    scheduler = Scheduler()
    _Wakeups(daemon, scheduler).arm()
    assert scheduler.jobs == {
        "send 07:00 UTC": utc("2026-06-15 07:00"),
        "fetch before 07:00 UTC": utc("2026-06-15 06:57"),
        "send 07:00 Asia/Tokyo": utc("2026-06-15 22:00"),
        "fetch before 07:00 Asia/Tokyo": utc("2026-06-15 21:57"),
        "fetch": timedelta(minutes=30),  # the cadence
    }


def test_a_send_now_that_is_not_due_records_and_embeds_and_sends_nothing(world):
    config = world.config([ADA | KEYWORDS], send_empty=True)
    world.serve(ITEMS[:2])

    def deps_at(text: str, model: HashModel | None = world.model):  # type: ignore[no-untyped-def]
        return deps(utc(text), mailer=world.mailer, model=None if model is None else lambda: model)

    send_now(config, RunOptions(), deps_at("2026-06-14 07:00"))  # the 14th, sent
    assert world.received() == Counter({"ada@example.org": 1})
    calls = world.model.calls
    world.serve(ITEMS[:4])
    report = send_now(config, RunOptions(), deps_at("2026-06-15 06:00"))  # the 15th: not yet
    assert [s.status for s in report.subscribers] == ["already-sent"]  # the 14th; not due
    assert report.new_papers == 2 and report.exit_code == 0
    assert (report.embedded.papers, report.embedded.profiles) == (2, 0)  # the profile: the 14th
    assert world.model.calls == calls + 2 * 2
    assert world.received() == Counter({"ada@example.org": 1})
    with Store.open(config.digest.state) as store:
        assert store.count_papers() == 4
        assert [d.digest_date for d in store.digests()] == ["2026-06-14"]
    # --no-fetch asks nothing and records nothing
    world.serve(ITEMS[:6])
    report = send_now(config, RunOptions(fetch=False), deps_at("2026-06-15 06:15", None))
    assert world.requests() == 2 and report.new_papers == 0
    assert [s.status for s in report.sources] == ["reused"]
    # The send: what it fetches now is embedded now; what was embedded ahead is not again.
    options = RunOptions(fetch_reuse=timedelta(minutes=5))
    report = send_now(config, options, deps_at("2026-06-15 07:00"))
    assert [s.status for s in report.subscribers] == ["sent"]
    assert world.model.calls == calls + 2 * 2 + 2 * 2
    with Store.open(config.digest.state) as store:
        digest = store.get_digest("ada@example.org", "2026-06-15")
        assert set(digest.paper_ids) <= ids(ITEMS[2:6])


def test_digest_fetch_records_and_sends_nothing(world):
    config = world.config([ADA | KEYWORDS], semantic=False)
    result = CliRunner().invoke(cli, ["fetch", "-c", str(config.path)])
    assert result.exit_code == 0, result.output
    assert "source hf-papers: 4 papers" in result.output and "new papers: 4" in result.output
    with Store.open(config.digest.state) as store:
        assert store.count_papers() == 4 and store.digests() == []
        [fetch_run] = store.recent_runs()
        assert fetch_run.command == "fetch" and fetch_run.exit_code == 0
    # Within the reuse window the source is not asked again.
    result = CliRunner().invoke(cli, ["fetch", "-c", str(config.path)])
    assert result.exit_code == 0 and world.requests() == 1
    assert "as last fetched" in result.output
    assert world.received() == Counter()


def test_digest_fetch_exits_1_when_a_source_fails(world, http_server):
    config = world.config([ADA | KEYWORDS], semantic=False)
    http_server.serve("/papers", "gone", status=404)  # not retried
    result = CliRunner().invoke(cli, ["fetch", "-c", str(config.path)])
    assert result.exit_code == 1
    assert "source hf-papers: FAILED" in result.output


def test_a_paper_first_seen_between_two_send_groups_reaches_each_reader_once(world):
    """ada sends at 07:00, bob at 09:00; the daemon fetches every 30 minutes and 3 minutes
    before each send. Papers appear before, between and after the send groups, for three
    days: each reaches each reader exactly once, in the first digest after it was seen."""
    everyone = {"max_papers": 50}  # no keywords: every new paper, by upvotes
    config = world.config([ADA | everyone, BOB | everyone | {"send_at": "09:00"}])
    daemon = world.daemon(config)
    pages = {  # when the page changes, and what it lists from then on
        utc("2026-06-15 05:10"): ITEMS[:4],
        utc("2026-06-15 08:10"): ITEMS[:6],  # two papers first seen between the groups
        utc("2026-06-16 07:40"): ITEMS[4:10],
        utc("2026-06-17 06:58"): ITEMS[8:12],  # after the 07:00 group's fetch (at 06:57)
    }
    served = None
    for day in range(3):
        base = utc("2026-06-15 05:00") + timedelta(days=day)
        for step in range(12):  # 05:00 to 10:30, a step every 30 minutes
            at = base + timedelta(minutes=30 * step)
            for now in (
                (at - timedelta(minutes=3), at) if at.hour in (7, 9) and not at.minute else (at,)
            ):
                world.clock.now = now
                changes = [t for t in pages if t <= now]
                if changes and changes[-1] != served:
                    served = changes[-1]
                    world.serve(pages[served])
                run(daemon.fetch_ahead("fetch before" if now.minute == 57 else "cadence"))
                if now.minute == 0 and now.hour in (7, 9):
                    run(daemon.tick("send time"))

    with Store.open(config.digest.state) as store:
        digests = {(d.subscriber, d.digest_date): d for d in store.digests()}
    got = {email: Counter[str]() for email in ("ada@example.org", "bob@example.org")}
    for (email, _), record in digests.items():
        assert record.status == "sent"
        got[email].update(record.paper_ids)
    assert set(got["ada@example.org"]) == ids(ITEMS[:10])  # ITEMS[10:12]: in the 18th's
    assert set(got["bob@example.org"]) == ids(ITEMS[:12])
    assert all(n == 1 for counts in got.values() for n in counts.values())
    between = ids(ITEMS[4:6])
    assert between <= set(digests["bob@example.org", "2026-06-15"].paper_ids)
    assert between <= set(digests["ada@example.org", "2026-06-16"].paper_ids)
    assert not between & set(digests["ada@example.org", "2026-06-15"].paper_ids)
    assert world.received() == Counter({"ada@example.org": 3, "bob@example.org": 3})


def test_embedding_ahead_stops_between_chunks_and_keeps_what_is_done(world):
    config = world.config([ADA | KEYWORDS])
    world.at("2026-06-15 06:00")
    send_now(config, RunOptions(), deps(world.clock.now, mailer=world.mailer, model=None))
    stop = threading.Event()

    class Stopping(HashModel):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            stop.set()  # the daemon is told to stop while the first chunk is embedded
            return super().embed(texts)

    model = Stopping()
    with Store.open(config.digest.state) as store:
        papers = store.recent_papers(100)
        done = embed_missing(store, model, papers, ["language model, agent"], stop)
        assert (done.papers, done.profiles) == (4, 0)  # one chunk, then it stopped
        assert len(store.load_paper_vectors([p.id for p in papers], stored_name(model))) == 4
        assert store.stored_profile_texts(["language model, agent"], model.name) == set()


class CountingStore(Store):
    """The state, counting the send log's writes on the send path."""

    writes: Counter[str] = Counter()

    def record_together(self, **kwargs: Any) -> None:
        CountingStore.writes["together"] += 1
        super().record_together(**kwargs)

    def prepare_digest(self, *args: Any, **kwargs: Any) -> None:
        CountingStore.writes["prepare"] += 1
        super().prepare_digest(*args, **kwargs)

    def mark_sent(self, *args: Any, **kwargs: Any) -> None:
        CountingStore.writes["sent"] += 1
        super().mark_sent(*args, **kwargs)


class CountingOpener:
    def open(self, location, *, create: bool = True) -> Store:  # type: ignore[no-untyped-def]
        return CountingStore(open_database(location, create=create))

    def open_copy(self, location) -> Store:  # type: ignore[no-untyped-def]
        return Store.open_copy(location)


class Checking:
    """A mailer around the real one that looks at the state (on a connection of its own) right
    before each SMTP transaction: every mail the server accepted so far is recorded 'sent',
    and this one 'sending'."""

    def __init__(self, inner: Any, config: Any) -> None:
        self.inner, self.config = inner, config
        self.checked = 0

    async def deliver_stream(self, queue, *, on_attempt, on_outcome, stop=None):  # type: ignore[no-untyped-def]
        accepted: list[tuple[str, str]] = []

        def attempt(mail):  # type: ignore[no-untyped-def]
            on_attempt(mail)
            with Store.open(self.config.digest.state) as store:
                for email, day in accepted:
                    assert store.get_digest(email, day).status == "sent", (email, day)
                assert store.get_digest(*mail.key).status == "sending"
            self.checked += 1

        def outcome(result):  # type: ignore[no-untyped-def]
            on_outcome(result)
            if result.status == "sent":
                accepted.append(result.mail.key)

        await self.inner.deliver_stream(queue, on_attempt=attempt, on_outcome=outcome, stop=stop)


def test_each_accepted_mail_is_recorded_before_the_next_transaction_with_fewer_writes(world):
    """The send log writes 'pending' and 'sent' with the next 'sending' (one commit per SMTP
    transaction instead of three), and still records every accepted mail before any new
    transaction starts: a crash duplicates at most the mail in flight on each connection."""
    readers = [{"email": f"r{i}@example.org"} for i in range(40)]
    config = world.config(readers, send_empty=True)
    mailer = Checking(world.mailer, config)
    CountingStore.writes.clear()
    now = utc("2026-06-15 07:00")
    report = send_now(
        config,
        RunOptions(),
        Deps(clock=fixed(now), mailer=mailer, model=None, state=CountingOpener()),
    )
    assert {s.status for s in report.subscribers} == {"sent"}
    assert mailer.checked == 40
    writes = CountingStore.writes
    assert writes["prepare"] == writes["sent"] == 0  # no write of their own
    assert 40 <= writes["together"] < 2 * 40, writes  # one per transaction, and a few flushes
    with Store.open(config.digest.state) as store:
        assert {d.status for d in store.digests()} == {"sent"}
        assert store.claims() == []  # the claims went with the last writes
