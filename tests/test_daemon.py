"""The daemon driven in-process with an injected clock: a simulated day in milliseconds.

Real parts: the SMTP server of tests/smtpd.py, an HF page in a local file, a SQLite file.
Nothing sleeps; `tick()` is what APScheduler's jobs call at each send time and every 15 minutes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import load_config
from digest.daemon import Daemon, plan_tick
from digest.errors import ConfigError, DaemonRunningError
from digest.lock import DAEMON, read_holder, run_lock
from digest.run import Mode, RunOptions, send_now
from digest.status import render_schedule
from digest.store import Store
from tests.support.helpers import hf_items, hf_page, write_config
from tests.support.run import deps

ITEMS = hf_items()
SUBSCRIBERS = [
    {"email": "ada@example.org", "timezone": "Europe/Berlin", "send_at": "07:30"},
    {"email": "bob@example.org", "timezone": "America/Los_Angeles", "send_at": "07:00"},
    {"email": "kai@example.org", "timezone": "Pacific/Kiritimati", "send_at": "06:00"},
]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class WallClock:
    """The system's time, `ahead` of it once the test says so."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def world(tmp_path, smtp_server):
    page = tmp_path / "papers.html"
    page.write_text(hf_page(ITEMS[:4]), encoding="utf-8")

    def make(subscribers=SUBSCRIBERS, **digest):
        path = write_config(
            tmp_path / "digest.toml",
            sources=[{"type": "hf-papers", "url": "papers.html"}],
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

    class World:
        config = make()
        clock = Clock(utc("2026-06-15 00:00"))
        mailer = smtp_server.mailer(retries=1)

        def daemon(self, config=None) -> Daemon:
            return Daemon(
                config or self.config,
                deps(clock=self.clock, mailer=self.mailer),
                run_options=RunOptions(fetch_backoff=0, fetch_retries=1),
            )

        def received(self) -> Counter:
            return Counter(r for m in smtp_server.messages for r in m.rcpt_tos)

        def serve(self, items) -> None:
            page.write_text(hf_page(items), encoding="utf-8")

    w = World()
    w.make = make
    w.page = page
    return w


def run(coro):
    return asyncio.run(coro)


def test_a_simulated_day_sends_each_subscriber_once_at_their_time(world, caplog):
    caplog.set_level(logging.INFO, logger="digest.daemon")
    daemon = world.daemon()
    sent_at: dict[str, datetime] = {}

    async def day():
        # a tick every 15 minutes (the retry job) and one at each send instant (the date jobs)
        start, end = utc("2026-06-14 12:00"), utc("2026-06-16 00:00")
        stops = {start + timedelta(minutes=15 * i) for i in range(4 * 36)}
        stops |= set(daemon.next_wakeups(start).values())
        stops |= set(daemon.next_wakeups(start + timedelta(days=1)).values())
        for now in sorted(t for t in stops if t < end):
            world.clock.now = now
            before = world.received()
            await daemon.tick("test")
            for rcpt in world.received() - before:
                sent_at[rcpt] = now
            if now == utc("2026-06-15 03:00"):
                world.serve(ITEMS[4:8])  # a new day's papers

    run(day())
    assert world.received() == Counter(
        {"ada@example.org": 2, "bob@example.org": 2, "kai@example.org": 2}
    )
    with Store.open(world.config.digest.state) as store:
        dates = {(d.subscriber, d.digest_date): d.status for d in store.digests()}
    assert dates == {
        ("ada@example.org", "2026-06-15"): "sent",  # 07:30 CEST = 05:30 UTC
        ("ada@example.org", "2026-06-14"): "sent",  # the start-up catch-up (12:00 UTC)
        ("bob@example.org", "2026-06-14"): "sent",  # 07:00 PDT = 14:00 UTC on the 14th
        ("bob@example.org", "2026-06-15"): "sent",
        ("kai@example.org", "2026-06-15"): "sent",  # 06:00 +14 = 16:00 UTC on the 14th
        ("kai@example.org", "2026-06-16"): "sent",  # 16:00 UTC on the 15th
    }
    # the last mails went out exactly at the send instants, not a tick before
    assert sent_at["ada@example.org"] == utc("2026-06-15 05:30")
    assert sent_at["bob@example.org"] == utc("2026-06-15 14:00")
    assert sent_at["kai@example.org"] == utc("2026-06-15 16:00")
    groups = [r.getMessage() for r in caplog.records if "send group" in r.getMessage()]
    assert len(groups) == 6  # ada's catch-up at start, then one per send time
    print("\n".join(f"{r.levelname} {r.getMessage()}" for r in caplog.records))


def test_catch_up_after_start_within_the_window_sends_once(world):
    daemon = world.daemon()
    world.clock.now = utc("2026-06-15 14:00")  # ada's 07:30 CEST was 8h30 ago
    run(daemon.tick("start"))
    run(daemon.tick("retry"))
    assert world.received()["ada@example.org"] == 1


def test_a_digest_missed_beyond_the_window_rolls_into_the_next(world, caplog):
    config = world.make(subscribers=SUBSCRIBERS[:1])
    daemon = world.daemon(config)
    world.clock.now = utc("2026-06-15 05:30")
    run(daemon.tick("send time"))  # the 15th, sent on time
    world.serve(ITEMS[4:8])
    world.clock.now = utc("2026-06-16 18:00")  # woke up 12h30 after the 16th's send time
    run(daemon.tick("resume"))
    run(daemon.tick("retry"))
    assert world.received()["ada@example.org"] == 1
    missed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("missed")]
    assert len(missed) == 1 and "2026-06-16" in missed[0] and "next digest" in missed[0]
    with Store.open(config.digest.state) as store:
        assert store.get_digest("ada@example.org", "2026-06-16") is None  # nothing recorded
    world.clock.now = utc("2026-06-17 05:30")
    report = run(daemon.tick("send time"))
    [sub] = report.subscribers
    assert (sub.digest_date, sub.status) == ("2026-06-17", "sent")
    with Store.open(config.digest.state) as store:
        sent = store.get_digest("ada@example.org", sub.digest_date)
    assert set(sent.paper_ids) == {i["paper"]["id"] for i in ITEMS[4:8]}


def test_a_failing_source_is_retried_within_the_window(world, caplog):
    config = world.make(subscribers=SUBSCRIBERS[:1])
    daemon = world.daemon(config)
    world.page.unlink()  # the source is down at send time
    world.clock.now = utc("2026-06-15 05:30")
    report = run(daemon.tick("send time"))
    assert [s.status for s in report.subscribers] == ["deferred"]
    assert world.received()["ada@example.org"] == 0
    with Store.open(config.digest.state) as store:
        assert store.get_digest("ada@example.org", "2026-06-15") is None
    assert any("failed sources" in r.getMessage() for r in caplog.records)
    world.serve(ITEMS[:4])  # back 15 minutes later
    world.clock.now = utc("2026-06-15 05:45")
    report = run(daemon.tick("retry"))
    assert [(s.digest_date, s.status) for s in report.subscribers] == [("2026-06-15", "sent")]
    assert world.received()["ada@example.org"] == 1


def test_subscribers_due_at_the_same_moment_share_one_run(world):
    subs = [
        {"email": "ada@example.org", "timezone": "Europe/Berlin", "send_at": "07:30"},
        {"email": "lee@example.org", "timezone": "Europe/London", "send_at": "06:30"},
    ]
    daemon = world.daemon(world.make(subscribers=subs))
    assert len(daemon.next_wakeups(utc("2026-06-15 00:00"))) == 2  # two groups, one instant
    world.clock.now = utc("2026-06-15 05:30")
    report = run(daemon.tick("send time 07:30 Europe/Berlin"))
    assert {s.email for s in report.subscribers} == {"ada@example.org", "lee@example.org"}
    assert run(daemon.tick("send time 06:30 Europe/London")) is None  # nothing left to do


def test_next_wakeups_follow_dst(world):
    subs = [{"email": "bob@example.org", "timezone": "America/Los_Angeles", "send_at": "02:30"}]
    daemon = world.daemon(world.make(subscribers=subs))
    [at] = daemon.next_wakeups(utc("2026-03-08 00:00")).values()
    assert at == utc("2026-03-08 10:00")  # 02:30 does not exist that day: 03:00 PDT


def test_reload_keeps_the_old_config_when_the_new_one_is_broken(world, caplog):
    daemon = world.daemon()
    text = world.config.path.read_text()
    world.config.path.write_text(text + "\n[digest.oops]\n")
    assert daemon.reload() is False
    assert daemon.config is world.config
    assert any("reload refused" in r.getMessage() for r in caplog.records)
    world.make(subscribers=SUBSCRIBERS[:2])
    assert daemon.reload() is True
    assert len(daemon.config.subscribers) == 2


def test_send_now_refuses_while_the_daemon_runs(world):
    with run_lock(world.config.digest.state, role=DAEMON):
        holder = read_holder(world.config.digest.state)
        assert holder is not None and holder.held and holder.role == DAEMON and holder.alive
        with pytest.raises(DaemonRunningError, match="daemon"):
            send_now(world.config, RunOptions(), deps(utc("2026-06-15 12:00")))
        result = CliRunner().invoke(cli, ["send-now", "-c", str(world.config.path)])
        assert result.exit_code == 2
        assert "daemon (pid" in result.output and "systemctl stop digest" in result.output
        status = render_schedule(None, world.config, now=utc("2026-06-15 12:00"))
        assert status.startswith("daemon: running (pid")
    assert read_holder(world.config.digest.state).held is False


def test_send_now_says_when_the_next_digest_is_due_and_records_nothing(world):
    config = world.make(subscribers=SUBSCRIBERS[:1])
    first = send_now(config, RunOptions(), deps(utc("2026-06-15 05:30"), mailer=world.mailer))
    assert [(s.digest_date, s.status) for s in first.subscribers] == [("2026-06-15", "sent")]
    # before the 16th's send time: the 15th is the one "due", and it is done
    early = send_now(config, RunOptions(), deps(utc("2026-06-16 05:29"), mailer=world.mailer))
    [sub] = early.subscribers
    assert sub.status == "already-sent"
    assert sub.detail.endswith("next: 2026-06-16 07:30 CEST / 05:30 UTC")
    # the 16th has nothing new (recorded as empty); a later run that day is "not due"
    send_now(config, RunOptions(), deps(utc("2026-06-16 05:30"), mailer=world.mailer))
    late = send_now(config, RunOptions(), deps(utc("2026-06-16 09:00"), mailer=world.mailer))
    [sub] = late.subscribers
    assert sub.status == "not-due" and late.exit_code == 0
    assert sub.detail == (
        "2026-06-16 already empty; not due (next: 2026-06-17 07:30 CEST / 05:30 UTC)"
    )
    with Store.open(config.digest.state) as store:
        assert sorted(d.digest_date for d in store.digests()) == ["2026-06-15", "2026-06-16"]
    assert world.received()["ada@example.org"] == 1


def test_status_shows_the_next_send_in_both_zones(world):
    text = render_schedule(None, world.config, now=utc("2026-06-15 06:00"))
    assert "daemon: not running" in text
    assert (
        "ada@example.org: 2026-06-16 07:30 CEST / 05:30 UTC; due now: the digest of 2026-06-15"
        in text
    )
    assert "kai@example.org: 2026-06-16 06:00 +14 / 2026-06-15 16:00 UTC" in text


def test_plan_reads_only(world):
    plan = plan_tick(world.config, None, utc("2026-06-15 06:00"))
    assert [(s.email, d) for s, d in plan.due] == [("ada@example.org", date(2026, 6, 15))]
    # bob's 07:00 PDT (14:00 UTC on the 14th) and kai's 06:00 +14 are over 12 hours old
    assert [(s.email, d.missed) for s, d in plan.missed] == [
        ("bob@example.org", date(2026, 6, 14)),
        ("kai@example.org", date(2026, 6, 15)),
    ]
    assert not world.config.digest.state.exists()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", '"12"'])
def test_catch_up_hours_is_validated(tmp_path, value):
    path = tmp_path / "bad.toml"
    path.write_text(f"[digest]\ncatch_up_hours = {value}\n")
    with pytest.raises(ConfigError, match="catch_up_hours"):
        load_config(path)


def test_preview_shows_the_coming_digest_once_today_is_sent(world):
    config = world.make(subscribers=SUBSCRIBERS[:1])
    send_now(config, RunOptions(), deps(utc("2026-06-15 05:30"), mailer=world.mailer))
    world.serve(ITEMS[4:8])
    report = send_now(
        config,
        RunOptions(mode=Mode.PREVIEW, command="preview", keep_papers=True),
        deps(utc("2026-06-15 09:00")),
    )
    [sub] = report.subscribers
    assert (sub.digest_date, sub.status) == ("2026-06-16", "dry-run")
    assert {r.paper.id for r in sub.papers} == {i["paper"]["id"] for i in ITEMS[4:8]}


def test_status_command_lists_next_sends_without_state(world):
    result = CliRunner().invoke(cli, ["status", "-c", str(world.config.path)])
    assert result.exit_code == 0, result.output
    assert "no state yet" in result.output and "next sends:" in result.output
    assert "bob@example.org: " in result.output and "UTC" in result.output


def test_serve_catches_up_reloads_on_sighup_and_stops_on_sigterm(world, caplog):
    """The whole process loop in-process, real clock: start-up catch-up, SIGHUP, a wall-clock
    jump (a suspend), SIGTERM. Signals go to this very process; the handlers are the daemon's."""
    import os
    import signal

    caplog.set_level(logging.INFO, logger="digest.daemon")
    now = datetime.now(UTC)
    an_hour_ago = (now - timedelta(hours=1)).astimezone(ZoneInfo("Europe/Berlin"))
    config = world.make(
        subscribers=[
            {
                "email": "ada@example.org",
                "timezone": "Europe/Berlin",
                "send_at": an_hour_ago.strftime("%H:%M"),
            },
        ]
    )
    wall = WallClock()  # the real time, until the test moves it on (a suspend)
    daemon = Daemon(
        config,
        deps(clock=wall, mailer=world.mailer),
        watchdog_every=0.05,
        run_options=RunOptions(fetch_backoff=0),
    )

    def logged(text: str) -> bool:
        return any(text in r.getMessage() for r in caplog.records)

    async def until_logged(text: str) -> None:
        for _ in range(500):  # 10 s at most: a failure, never a hang
            if logged(text):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"never logged: {text!r}")

    async def scenario():
        task = asyncio.create_task(daemon.serve())
        await until_logged("(start) at")
        assert read_holder(config.digest.state).role == DAEMON
        os.kill(os.getpid(), signal.SIGHUP)
        await until_logged("config reloaded")
        wall.ahead = timedelta(hours=1)
        await until_logged("wall clock jumped")
        os.kill(os.getpid(), signal.SIGTERM)
        return await task

    assert asyncio.run(scenario()) == 0
    assert world.received()["ada@example.org"] == 1  # caught up once, not again on resume
    assert logged("SIGTERM: finishing the mails in flight") and logged("stopped")
    assert read_holder(config.digest.state).held is False
