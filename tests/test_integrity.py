"""The corners where a paper could be lost, repeated, or a false mail could go out.

Whole runs through `send_now` or the CLI against the real aiosmtpd server, local pages and a
real SQLite file (the send-log corners on a PostgreSQL database too); what the server received
is the truth.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

import digest.deliver.smtp
from digest.cli import cli
from digest.config import DeliveryConfig, load_config
from digest.deliver import SmtpMailer, Stop
from digest.errors import DuplicateMailError
from digest.run import RunOptions, send_now
from digest.store import StateLocation, Store
from tests.support.helpers import hf_items, hf_page, write_config
from tests.support.run import deps
from tests.test_end_to_end import paper_ids

DAY1 = datetime(2026, 6, 12, 7, 0, tzinfo=UTC)
ITEMS = hf_items()


def smtp(smtp_server, **extra) -> dict:
    return {
        "method": "smtp",
        "host": smtp_server.host,
        "port": smtp_server.port,
        "security": "none",
        "retries": 1,
        **extra,
    }


def setup(
    tmp_path, smtp_server, *, subscribers=None, digest=None, delivery=None, items=None, state=None
):
    page = tmp_path / "papers.html"
    page.write_text(hf_page(ITEMS[:4] if items is None else items), encoding="utf-8")
    path = write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=subscribers or [{"email": "ada@example.org"}],
        digest={**(digest or {}), **({"state": state} if state else {})},
        delivery=delivery or smtp(smtp_server),
    )
    return load_config(path), page


def run(config, smtp_server, now, **options):
    return send_now(config, RunOptions(**options), deps(now, mailer=smtp_server.mailer(retries=1)))


def received(smtp_server, rcpt="ada@example.org"):
    return [m for m in smtp_server.messages if rcpt in m.rcpt_tos]


# a new reader's papers ----------------------------------------------------------------------------


def test_a_new_subscribers_papers_survive_days_of_refusals(tmp_path, smtp_server, state_url):
    config, page = setup(tmp_path, smtp_server, digest={"lookback_days": 1}, state=state_url)
    smtp_server.handler.refuse("ada@example.org", "452 4.2.2 mailbox full")
    run(config, smtp_server, DAY1)
    page.write_text(hf_page(ITEMS[4:8]), encoding="utf-8")
    run(config, smtp_server, DAY1 + timedelta(days=1))
    assert received(smtp_server) == []

    smtp_server.handler.clear_faults()
    page.write_text(hf_page(ITEMS[8:10]), encoding="utf-8")
    report = run(config, smtp_server, DAY1 + timedelta(days=2))
    assert report.exit_code == 0
    (mail,) = received(smtp_server)
    # Day 1's papers are still there on day 3, although they left the 1-day window.
    assert set(paper_ids(mail.message)) == {i["paper"]["id"] for i in ITEMS[:10]}


# unknown outcomes ---------------------------------------------------------------------------------


def test_an_unknown_outcome_is_repeated_byte_for_byte_on_a_later_date(
    tmp_path, smtp_server, state_url
):
    config, page = setup(tmp_path, smtp_server, state=state_url)
    smtp_server.handler.drop(at="data")  # the data went out; no reply: maybe delivered
    first = run(config, smtp_server, DAY1)
    assert first.subscribers[0].status == "pending"
    with Store.open(config.digest.state) as store:
        record = store.get_digest("ada@example.org", "2026-06-12")
        sent_bytes = store.message_bytes("ada@example.org", "2026-06-12")
    assert record.sealed and sent_bytes

    # Two days later the page has other papers: the old digest goes out exactly as it was,
    # and the new papers in a digest of their own.
    page.write_text(hf_page(ITEMS[4:7]), encoding="utf-8")
    later = run(config, smtp_server, DAY1 + timedelta(days=2))
    assert later.exit_code == 0
    repeat, new = received(smtp_server)
    assert repeat.data == sent_bytes  # exactly the bytes the send log kept
    assert repeat.message_id == record.message_id
    assert set(paper_ids(repeat.message)) == set(record.paper_ids)
    assert new.message_id != record.message_id
    assert set(paper_ids(new.message)) == {i["paper"]["id"] for i in ITEMS[4:7]}
    with Store.open(config.digest.state) as store:
        assert {d.digest_date: d.status for d in store.digests()} == {
            "2026-06-12": "sent",
            "2026-06-14": "sent",
        }


def test_a_timeout_after_data_is_an_unknown_outcome(tmp_path, smtp_server, state_url):
    config, _ = setup(tmp_path, smtp_server, delivery=smtp(smtp_server, timeout=1), state=state_url)
    smtp_server.handler.stall(3, at="data")
    report = send_now(
        config, RunOptions(), deps(DAY1, mailer=smtp_server.mailer(retries=1, timeout=1))
    )
    assert report.subscribers[0].status == "pending"
    assert "may have been delivered" in report.subscribers[0].detail
    with Store.open(config.digest.state) as store:
        assert store.get_digest("ada@example.org", "2026-06-12").sealed


# forced resends -----------------------------------------------------------------------------------


def test_a_failed_forced_resend_rewrites_nothing(tmp_path, smtp_server, state_url):
    config, _ = setup(tmp_path, smtp_server, state=state_url)
    assert run(config, smtp_server, DAY1).exit_code == 0
    with Store.open(config.digest.state) as store:
        before = store.get_digest("ada@example.org", "2026-06-12")
        mark = store.watermark("ada@example.org")
    smtp_server.handler.refuse("ada@example.org", "550 5.1.1 gone")
    forced = run(config, smtp_server, DAY1 + timedelta(hours=1), force=True)
    assert [s.status for s in forced.subscribers] == ["failed"]
    with Store.open(config.digest.state) as store:
        assert store.get_digest("ada@example.org", "2026-06-12") == before
        assert store.watermark("ada@example.org") == mark
        (resend,) = store.resends("ada@example.org")
        assert resend.status == "failed" and resend.message_id != before.message_id
    # A forced resend that works is a new mail with the same papers, recorded beside it.
    smtp_server.handler.clear_faults()
    again = run(config, smtp_server, DAY1 + timedelta(hours=2), force=True)
    assert again.exit_code == 0
    first, second = received(smtp_server)
    assert paper_ids(first.message) == paper_ids(second.message)
    assert first.message_id != second.message_id
    with Store.open(config.digest.state) as store:
        assert store.get_digest("ada@example.org", "2026-06-12") == before


# failed sources, empty days -----------------------------------------------------------------------


def test_no_false_nothing_new_when_a_source_failed(tmp_path, smtp_server, state_url):
    config, page = setup(tmp_path, smtp_server, digest={"send_empty": True}, state=state_url)
    page.unlink()  # the source fails
    failed = run(config, smtp_server, DAY1)
    assert failed.exit_code == 1 and received(smtp_server) == []
    # Never "nothing new": the day is skipped, and says why.
    assert failed.subscribers[0].status == "skipped"
    assert "a source failed" in failed.subscribers[0].detail
    assert "failed source: hf-papers (" in failed.summary()
    # The source recovers the same day: that day's digest goes out.
    page.write_text(hf_page(ITEMS[:4]), encoding="utf-8")
    recovered = run(config, smtp_server, DAY1 + timedelta(hours=2))
    assert recovered.exit_code == 0
    (mail,) = received(smtp_server)
    assert len(paper_ids(mail.message)) == 4


@pytest.mark.parametrize("send_empty", [False, True])
def test_an_empty_hf_page_is_an_empty_day(tmp_path, smtp_server, send_empty, state_url):
    config, _ = setup(
        tmp_path, smtp_server, digest={"send_empty": send_empty}, items=[], state=state_url
    )
    report = run(config, smtp_server, DAY1)
    assert report.exit_code == 0
    assert report.sources[0].status == "ok" and report.sources[0].error is None
    assert len(received(smtp_server)) == (1 if send_empty else 0)


# --only -------------------------------------------------------------------------------------------


def test_only_names_each_subscriber_once(tmp_path, smtp_server, state_url):
    config, _ = setup(tmp_path, smtp_server, state=state_url)
    report = run(config, smtp_server, DAY1, only=("ada@example.org", "ADA@Example.org"))
    assert [s.status for s in report.subscribers] == ["sent"]
    assert len(received(smtp_server)) == 1


def test_the_mailer_never_sends_one_key_twice_in_a_run(smtp_server):
    from tests.support.delivery import Recorder, deliver_list, make_mail

    mails = [make_mail("ada"), make_mail("ada")]
    rec = Recorder()
    mailer = smtp_server.mailer(connections=1)
    with pytest.raises(DuplicateMailError, match="queued twice"):
        asyncio.run(
            deliver_list(mailer, mails, on_attempt=rec.on_attempt, on_outcome=rec.on_outcome)
        )
    assert len(smtp_server.messages) == 1


# SIGTERM ----------------------------------------------------------------------------------


def test_sigterm_stops_cleanly_and_the_next_run_sends_the_rest(tmp_path, smtp_server):
    from tests.test_crash_and_concurrency import (
        by_recipient,
        make_config,
        start_send_now,
        wait_for_mails,
    )

    subscribers = 200
    config = make_config(tmp_path, smtp_server, subscribers, "state.sqlite3")
    smtp_server.handler.stall(0.02, at="data", times=None)
    child = start_send_now(config)
    wait_for_mails(child, smtp_server, 30)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=20)  # it exits on its own, within seconds
    assert child.returncode == 1, err.decode()
    assert "stopped by SIGTERM" in err.decode()
    assert "Traceback" not in err.decode()
    stopped_at = len(smtp_server.messages)
    assert stopped_at < subscribers
    with Store.open(config.parent / "state.sqlite3") as store:
        assert "sending" not in {d.status for d in store.digests()}  # in-flight ones recorded
        sent = [d for d in store.digests() if d.status == "sent"]
        assert len(sent) == stopped_at  # every mail the server took is recorded as sent
        assert "SIGTERM" in store.recent_runs(1)[0].summary

    smtp_server.handler.clear_faults()
    rerun = start_send_now(config)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    got = by_recipient(smtp_server)
    assert len(got) == subscribers
    assert all(len(ids) == 1 for ids in got.values())  # zero duplicates


def test_sigterm_to_the_whole_group_as_systemd_sends_it(tmp_path, smtp_server):
    """systemd's default KillMode signals every process of the service: the model's process
    and the render workers get the SIGTERM too. The run still stops as cleanly, and leaves no
    process behind."""
    from tests.test_crash_and_concurrency import make_config, start_send_now, wait_for_mails

    config = make_config(
        tmp_path, smtp_server, 200, "state.sqlite3"
    )  # enough for the render workers
    smtp_server.handler.stall(0.02, at="data", times=None)
    child = start_send_now(config, own_group=True)  # as a service's cgroup
    wait_for_mails(child, smtp_server, 30)
    os.killpg(child.pid, signal.SIGTERM)
    out, err = child.communicate(timeout=20)
    assert child.returncode == 1, err.decode()
    assert "stopped by SIGTERM" in err.decode() and "Traceback" not in err.decode()
    assert "failed" not in out.decode()  # what was not sent is pending, for the next run
    with Store.open(config.parent / "state.sqlite3") as store:
        digests = store.digests()
    assert "sending" not in {d.status for d in digests}
    assert len([d for d in digests if d.status == "sent"]) == len(smtp_server.messages)
    deadline = time.monotonic() + 10
    while _alive_in_group(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # the workers' last exit
    assert _alive_in_group(child.pid) == []


def _alive_in_group(pgid: int) -> list[str]:
    """The processes of a process group that still run (zombies are gone, just not reaped:
    an orphan's parent here may be an init that does not reap)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            alive.append(stat.parent.name)
    return alive


# bounded time -----------------------------------------------------------------------------


def test_retry_waits_are_capped(smtp_server, monkeypatch):
    from tests.support.delivery import Recorder, deliver_list, make_mail

    monkeypatch.setattr(digest.deliver.smtp, "MAX_RETRY_WAIT", 0.01)
    smtp_server.handler.refuse("ada@example.org", "451 4.3.0 later")
    mailer = smtp_server.mailer(retries=20, backoff=3600.0)  # uncapped: about 12 days
    rec = Recorder()
    started = time.monotonic()
    outcomes = asyncio.run(
        deliver_list(
            mailer, [make_mail("ada")], on_attempt=rec.on_attempt, on_outcome=rec.on_outcome
        )
    )
    assert outcomes[0].status == "pending" and outcomes[0].attempts == 20
    assert time.monotonic() - started < 60


def test_a_stop_ends_a_retry_wait_at_once(smtp_server):
    from tests.support.delivery import Recorder, deliver_list, make_mail

    smtp_server.handler.refuse("ada@example.org", "451 4.3.0 later")
    mailer = smtp_server.mailer(retries=5, backoff=30.0, connections=1)
    rec = Recorder()

    async def main():
        stop = Stop.new()
        asyncio.get_running_loop().call_later(0.3, stop.set, "stopped by SIGTERM")
        return await deliver_list(
            mailer,
            [make_mail("ada"), make_mail("bob")],
            on_attempt=rec.on_attempt,
            on_outcome=rec.on_outcome,
            stop=stop,
        )

    started = time.monotonic()
    outcomes = asyncio.run(main())
    # ada was tried once; the 30 s wait before her retry ended with the stop, and bob, queued
    # behind her on the one connection, was never started.
    assert [(o.mail.recipient, o.status, o.attempts) for o in outcomes] == [
        ("ada@example.org", "pending", 1)
    ]
    assert time.monotonic() - started < 20
    assert smtp_server.messages == []


def test_the_delivery_deadline_leaves_the_rest_pending(tmp_path, smtp_server):
    config, _ = setup(
        tmp_path,
        smtp_server,
        subscribers=[{"email": f"u{i}@example.org"} for i in range(6)],
    )
    smtp_server.handler.stall(0.5, at="data", times=None)
    mailer = SmtpMailer(
        DeliveryConfig(
            method="smtp",
            host=smtp_server.host,
            port=smtp_server.port,
            security="none",
            connections=1,
            retries=1,
            deadline_minutes=0.6 / 60,  # 0.6 s
        ),
        backoff=0,
    )
    report = send_now(config, RunOptions(), deps(DAY1, mailer=mailer))
    statuses = [s.status for s in report.subscribers]
    assert report.exit_code == 1 and "deadline" in report.stopped
    assert 1 <= statuses.count("sent") < 6 and "sent" in statuses and "pending" in statuses
    again = send_now(config, RunOptions(), deps(DAY1, mailer=smtp_server.mailer()))
    assert len(smtp_server.messages) == 6 and again.exit_code == 0


# one clock --------------------------------------------------------------------------------


def test_every_timestamp_of_a_run_comes_from_its_clock(tmp_path, smtp_server):
    config, _ = setup(tmp_path, smtp_server)
    ticks = itertools.count()
    clock = lambda: datetime(2031, 1, 1, 8, tzinfo=UTC) + timedelta(minutes=next(ticks))  # noqa: E731
    send_now(config, RunOptions(), deps(clock=clock, mailer=smtp_server.mailer()))
    with sqlite3.connect(config.digest.state.path) as conn:
        run_row = conn.execute("SELECT started_at, finished_at FROM runs").fetchone()
        digest_row = conn.execute(
            "SELECT digest_date, created_at, updated_at, sent_at FROM digests"
        ).fetchone()
        seen = conn.execute("SELECT first_seen FROM papers").fetchall()
    assert run_row[0].startswith("2031-01-01T08:00") and run_row[1] > digest_row[3]
    assert digest_row[0] == "2031-01-01"
    assert all(v.startswith("2031-01-01") for v in digest_row[1:])
    assert digest_row[1] < digest_row[3]  # created, then sent: the clock moved on
    assert {s[0] for s in seen} == {run_row[0]}


# values that would break every run --------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('[[subscriber]]\nemail = "a@x.org"\nkeywords = { "gnn" = nan }\n', "weight"),
        ("[delivery]\ntimeout = inf\n", "finite"),
        ("[digest]\nupvote_boost = nan\n", "finite"),
        ("[digest]\nlookback_days = 100000\n", "out of range"),
        ("[delivery]\nretries = 1000\n", "out of range"),
        ('[digest]\nfrom = "Evil\\r\\nBcc: x@y.org <d@x.org>"\n', "control character"),
        ('[[subscriber]]\nemail = "a@x.org"\nname = "A\\u001b[31m"\n', "control character"),
        ('[[source]]\ntype = "feed"\nurl = "ftp://example.org/feed"\n', "scheme"),
        ('[[source]]\ntype = "feed"\nurl = "javascript:alert(1)"\n', "scheme"),
    ],
)
def test_values_that_would_break_every_run_are_refused(tmp_path, snippet, message):
    path = tmp_path / "digest.toml"
    path.write_text(snippet, encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "-c", str(path)])
    assert result.exit_code == 2
    assert message in result.output and result.output.count("\n") == 1


def test_a_login_without_its_password_is_refused_by_check(tmp_path):
    path = tmp_path / "digest.toml"
    path.write_text(
        '[delivery]\nhost = "smtp.example.org"\nusername = "me"\n'
        'password_env = "DIGEST_SMTP_PASSWORD"\n[[subscriber]]\nemail = "a@x.org"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["check", "-c", str(path)])
    assert result.exit_code == 2 and "DIGEST_SMTP_PASSWORD" in result.output


def test_an_empty_subscriber_list_is_a_warning(tmp_path):
    path = tmp_path / "digest.toml"
    path.write_text('[digest]\nfrom = "d@x.org"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["check", "-c", str(path)])
    assert (
        result.exit_code == 0
        and "warning" in result.output
        and "no [[subscriber]]" in result.output
    )


# state that cannot be used ----------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "digest", *args], capture_output=True, text=True, env=env, timeout=60
    )


def _one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("digest: error:"), result.stderr
    assert "internal error" not in lines[0] and "(fix:" in lines[0]
    for word in words:
        assert word in lines[0]


def test_an_impossible_state_path_is_one_line(tmp_path, smtp_server):
    (tmp_path / "afile").write_text("x")
    setup(tmp_path, smtp_server, digest={"state": "afile/state.sqlite3"})
    _one_line_error(_cli("send-now", "-c", str(tmp_path / "digest.toml")), "state file")


def test_a_corrupted_state_file_is_one_line_for_send_now_and_status(tmp_path, smtp_server):
    setup(tmp_path, smtp_server)
    (tmp_path / "state.sqlite3").write_bytes(b"this is not a database" * 100)
    _one_line_error(_cli("send-now", "-c", str(tmp_path / "digest.toml")), "state file")
    _one_line_error(_cli("status", "-c", str(tmp_path / "digest.toml")), "state file")


class SmallDisk(Store):
    """The state on a disk with room for a dozen more pages (SQLite's max_page_count)."""

    @classmethod
    def open(cls, location: StateLocation | Path, *, create: bool = True) -> Store:
        store = super().open(location, create=create)
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages + 12}")
        return store


def test_a_disk_that_fills_mid_run_keeps_what_was_sent(tmp_path, smtp_server):
    subscribers = [{"email": f"u{i:02d}@example.org"} for i in range(40)]
    config, _ = setup(tmp_path, smtp_server, subscribers=subscribers)
    with Store.open(config.digest.state):
        pass
    from digest.errors import StateError

    small = replace(deps(DAY1, mailer=smtp_server.mailer()), state=SmallDisk)
    with pytest.raises(StateError, match="free disk space"):
        send_now(config, RunOptions(), small)
    got_before = {m.rcpt_tos[0] for m in smtp_server.messages}
    assert 0 < len(got_before) < 40
    with Store.open(config.digest.state) as store:
        recorded = {d.subscriber for d in store.digests() if d.status == "sent"}
    assert recorded <= got_before  # nothing recorded as sent that was not
    again = send_now(config, RunOptions(), deps(DAY1, mailer=smtp_server.mailer()))
    assert again.exit_code == 0
    counts = {}
    for m in smtp_server.messages:
        counts[m.rcpt_tos[0]] = counts.get(m.rcpt_tos[0], 0) + 1
    assert len(counts) == 40
    # At most the mail whose "sent" could not be written is repeated (same Message-ID).
    assert sum(n - 1 for n in counts.values()) <= 2


def test_a_closed_stdout_is_not_an_error(tmp_path, smtp_server):
    setup(tmp_path, smtp_server, subscribers=[{"email": f"u{i}@example.org"} for i in range(30)])
    result = subprocess.run(
        f"{sys.executable} -m digest preview -c {tmp_path / 'digest.toml'} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


# status tells the truth -------------------------------------------------------------------


def test_status_shows_a_run_in_progress_as_running(tmp_path, smtp_server):
    config, _ = setup(tmp_path, smtp_server)
    now = datetime.now(UTC)
    with Store.open(config.digest.state) as store:
        store.register_worker(
            "gone", role="send-now", host="h", pid=1, now=now - timedelta(hours=1)
        )
        store.start_run("send-now", now=now - timedelta(hours=1), worker="gone")
        store.register_worker("live", role="send-now", host="h", pid=os.getpid(), now=now)
        store.start_run("send-now", now=now, worker="live")
    result = CliRunner().invoke(cli, ["status", "-c", str(config.path)])
    assert "did not finish (killed?)" in result.output  # its worker stopped beating
    assert f"running (send-now live on h, pid {os.getpid()})" in result.output


def test_a_future_date_does_not_stand_as_the_last_digest(tmp_path, smtp_server):
    config, page = setup(tmp_path, smtp_server)
    run(config, smtp_server, DAY1, digest_date=date(2027, 1, 1))
    page.write_text(hf_page(ITEMS[4:8]), encoding="utf-8")
    run(config, smtp_server, DAY1 + timedelta(days=1))
    result = CliRunner().invoke(cli, ["status", "-c", str(config.path)])
    line = next(x for x in result.output.splitlines() if "ada@example.org" in x)
    assert "2026-06-13" in line, result.output


def test_a_state_that_refuses_writes_is_a_state_error(tmp_path):
    path: Path = tmp_path / "s.sqlite3"
    with Store.open(path) as store:
        store.start_run("x", now=DAY1)
    os.chmod(path, 0o444)
    # Root can write a read-only file, so check the message on a read-only connection instead.
    with Store.open(path) as store:
        store.db.execute("PRAGMA query_only = ON")
        from digest.errors import StateError

        with pytest.raises(StateError, match="cannot write state file"):
            store.start_run("y", now=DAY1)
