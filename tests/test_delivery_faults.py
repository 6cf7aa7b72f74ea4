"""Delivery faults through whole runs: what the send log records, the exit code, what the user
reads, and that the next run catches up. The SMTP server is real (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import load_config
from digest.run import RunOptions, send_now
from digest.store import Store
from tests.support.helpers import hf_items, hf_page, write_config
from tests.support.run import deps

NOW = datetime(2026, 6, 12, 7, 0, tzinfo=UTC)
PEOPLE = ["ada@example.org", "bob@example.org", "cy@example.org"]


def make_config(tmp_path, smtp_server, **delivery):
    (tmp_path / "papers.html").write_text(hf_page(hf_items()[:4]), encoding="utf-8")
    return write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=[{"email": e} for e in PEOPLE],
        delivery={
            "method": "smtp",
            "host": smtp_server.host,
            "port": smtp_server.port,
            "security": "none",
            "retries": 2,
            **delivery,
        },
    )


def recipients(smtp_server) -> list[str]:
    return [r for m in smtp_server.messages for r in m.rcpt_tos]


def test_550_and_451_are_recorded_the_others_go_out(tmp_path, smtp_server):
    config = load_config(make_config(tmp_path, smtp_server))
    smtp_server.handler.refuse("bob@example.org", "550 5.1.1 no such user")
    smtp_server.handler.refuse("cy@example.org", "451 4.7.1 greylisted")
    report = send_now(config, RunOptions(), deps(NOW, mailer=smtp_server.mailer(retries=2)))
    assert report.exit_code == 1
    assert {s.email: s.status for s in report.subscribers} == {
        "ada@example.org": "sent",
        "bob@example.org": "failed",
        "cy@example.org": "pending",
    }
    assert recipients(smtp_server) == ["ada@example.org"]
    with Store.open(config.digest.state) as store:
        bob = store.get_digest("bob@example.org", "2026-06-12")
        cy = store.get_digest("cy@example.org", "2026-06-12")
    assert (bob.status, bob.attempts, bob.last_code) == ("failed", 1, 550)
    assert "no such user" in bob.last_error
    assert (cy.status, cy.attempts, cy.last_code) == ("pending", 2, 451)

    # Next run, same date: the server accepts now. Both go out; ada's digest is not sent again.
    # Both refusals were definite (never delivered), so each is built anew with a new
    # Message-ID: an old Message-ID never stands for content that may differ.
    smtp_server.handler.clear_faults()
    again = send_now(config, RunOptions(), deps(NOW, mailer=smtp_server.mailer(retries=2)))
    assert again.exit_code == 0
    assert sorted(recipients(smtp_server)) == sorted(PEOPLE)
    by_rcpt = {m.rcpt_tos[0]: m.message["Message-ID"] for m in smtp_server.messages}
    assert by_rcpt["cy@example.org"] != cy.message_id
    assert by_rcpt["bob@example.org"] != bob.message_id


def test_the_cli_reports_failures_and_status_shows_them_first(tmp_path, smtp_server):
    config = make_config(tmp_path, smtp_server)
    smtp_server.handler.refuse("bob@example.org", "550 5.1.1 no such user")
    result = CliRunner().invoke(cli, ["send-now", "-c", str(config), "--date", "2026-06-12"])
    assert result.exit_code == 1
    assert "bob@example.org 2026-06-12: failed" in result.output
    assert "550" in result.output
    assert "2 sent, 1 failed" in result.output.splitlines()[-1]

    status = CliRunner().invoke(cli, ["status", "-c", str(config)])
    assert status.exit_code == 0
    lines = status.output.splitlines()
    subscriber_lines = lines[lines.index("subscribers (last digest):") + 1 :]
    assert subscriber_lines[0].startswith("  bob@example.org: 2026-06-12 FAILED")
    assert "550" in subscriber_lines[0]
    assert "exit 1" in lines[1]


def test_a_refused_login_stops_the_run_and_the_next_run_delivers(
    tmp_path, smtp_server, monkeypatch
):
    smtp_server.restart(users={"digest": "s3cret"})
    config_path = make_config(
        tmp_path, smtp_server, username="digest", password_env="DIGEST_SMTP_PASSWORD"
    )
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
    result = CliRunner().invoke(cli, ["send-now", "-c", str(config_path)])
    assert result.exit_code == 1
    assert smtp_server.messages == []
    errors = [line for line in result.output.splitlines() if line.startswith("digest: error:")]
    assert len(errors) == 1
    assert "535" in errors[0] and "password_env" in errors[0]

    config = load_config(config_path)
    with Store.open(config.digest.state) as store:
        assert {d.status for d in store.digests()} == {"pending"}

    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "s3cret")
    report = send_now(
        config,
        RunOptions(),
        deps(mailer=smtp_server.mailer(username="digest", password_env="DIGEST_SMTP_PASSWORD")),
    )
    assert report.exit_code == 0
    assert sorted(recipients(smtp_server)) == sorted(PEOPLE)


def test_starttls_refused_sends_nothing_in_plaintext(tmp_path, smtp_server):
    config = load_config(make_config(tmp_path, smtp_server, security="starttls"))
    # the server offers no STARTTLS
    report = send_now(
        config, RunOptions(), deps(NOW, mailer=smtp_server.mailer(security="starttls"))
    )
    assert report.exit_code == 1
    assert report.fatal is not None and "STARTTLS" in str(report.fatal)
    assert smtp_server.messages == []
    assert not any(" MAIL " in line for line in smtp_server.handler.log)


def test_a_failed_send_never_advances_the_watermark(tmp_path, smtp_server):
    config = load_config(make_config(tmp_path, smtp_server))
    smtp_server.handler.refuse("ada@example.org", "451 4.3.0 later")
    send_now(config, RunOptions(), deps(NOW, mailer=smtp_server.mailer(retries=1)))
    with Store.open(config.digest.state) as store:
        assert store.watermark("ada@example.org") is None
        assert store.watermark("bob@example.org") == store.max_seq()
    smtp_server.handler.clear_faults()
    # Two days later, a new date: ada's digest now carries the papers she never received.
    later = send_now(
        config, RunOptions(), deps(NOW + timedelta(days=2), mailer=smtp_server.mailer())
    )
    ada = next(s for s in later.subscribers if s.email == "ada@example.org")
    assert ada.status == "sent" and ada.paper_count == 4
    assert next(s for s in later.subscribers if s.email == "bob@example.org").status == (
        "nothing-new"
    )


def test_one_broken_digest_does_not_stop_the_others(tmp_path, smtp_server, monkeypatch):
    import digest.mailbuild

    real = digest.mailbuild.render_digest

    def render(content, templates_dir=None):
        if content.subscriber_email == "bob@example.org":
            raise RuntimeError("template bug")
        return real(content, templates_dir)

    monkeypatch.setattr(digest.mailbuild, "render_digest", render)
    config = load_config(make_config(tmp_path, smtp_server))
    report = send_now(config, RunOptions(), deps(NOW, mailer=smtp_server.mailer()))
    assert report.exit_code == 1
    assert {s.email: s.status for s in report.subscribers}["bob@example.org"] == "failed"
    assert sorted(recipients(smtp_server)) == ["ada@example.org", "cy@example.org"]
    with Store.open(config.digest.state) as store:
        assert store.get_digest("bob@example.org", "2026-06-12") is None  # retried next run
        assert store.recent_runs(1)[0].exit_code == 1


def test_a_run_that_crashes_is_recorded_as_failed(tmp_path, smtp_server):
    class Exploding:
        async def deliver_stream(self, queue, **kwargs):
            await queue.get()
            raise RuntimeError("disk on fire")

    config = load_config(make_config(tmp_path, smtp_server))
    with pytest.raises(RuntimeError):
        send_now(config, RunOptions(), deps(NOW, mailer=Exploding()))
    with Store.open(config.digest.state) as store:
        run = store.recent_runs(1)[0]
        assert run.exit_code == 1 and "disk on fire" in run.summary
        assert {d.status for d in store.digests()} == {"pending"}


def test_every_copy_the_server_read_is_the_send_logs_bytes_exactly(tmp_path, smtp_server):
    """Byte for byte, with nothing normalised: what the server read (the DATA it then dropped
    too), what the send log kept (unpacked), a retry within the run and a repeat the next run
    are the same bytes."""
    config = load_config(make_config(tmp_path, smtp_server))
    smtp_server.handler.drop(at="data", address="bob@example.org", times=1)  # retried: sent
    smtp_server.handler.drop(at="data", address="cy@example.org", times=None)  # sealed
    first = send_now(config, RunOptions(), deps(NOW, mailer=smtp_server.mailer(retries=2)))
    assert {s.email: s.status for s in first.subscribers} == {
        "ada@example.org": "sent",
        "bob@example.org": "sent",
        "cy@example.org": "pending",
    }
    with Store.open(config.digest.state) as store:
        kept = {e: store.message_bytes(e, "2026-06-12") for e in PEOPLE}
        assert store.get_digest("cy@example.org", "2026-06-12").sealed
    copies: dict[str, list[bytes]] = {}
    for rcpts, data in smtp_server.handler.data_seen:
        copies.setdefault(rcpts[0], []).append(data)
    assert {e: len(c) for e, c in copies.items()} == {
        "ada@example.org": 1,
        "bob@example.org": 2,
        "cy@example.org": 2,
    }
    for email, sent in copies.items():
        assert kept[email] is not None and kept[email].endswith(b"\r\n")
        assert all(data == kept[email] for data in sent), email
    assert [m.data for m in smtp_server.messages] == [
        kept["ada@example.org"],
        kept["bob@example.org"],
    ]

    smtp_server.handler.clear_faults()
    again = send_now(config, RunOptions(), deps(NOW, mailer=smtp_server.mailer()))
    assert {s.email: s.status for s in again.subscribers}["cy@example.org"] == "sent"
    [repeat] = [m for m in smtp_server.messages if m.rcpt_tos == ["cy@example.org"]]
    assert repeat.data == kept["cy@example.org"] == copies["cy@example.org"][0]
