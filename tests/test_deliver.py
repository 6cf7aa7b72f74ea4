"""digest.deliver over SMTP, against a real aiosmtpd server (tests/support/smtpd.py).

Every test asserts on what the server actually received, not only on what the client reports.
"""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

from digest.config import DeliveryConfig
from digest.deliver import (
    OutboxMailer,
    OutgoingMail,
    SendOutcome,
    SmtpMailer,
    make_mailer,
)
from digest.deliver.replies import SETUP_FIX
from digest.errors import DeliverySetupError
from tests.support.delivery import DAY, FROM, Recorder, deliver_list, make_mail, run
from tests.support.smtpd import SmtpTestServer, free_port


def received_for(server: SmtpTestServer, recipient: str) -> list:
    return [m for m in server.messages if m.rcpt_tos == [recipient]]


# --- the happy path ----------------------------------------------------------------------------


def test_two_connections_deliver_ten_mails_once_each(smtp_server):
    mails = [make_mail(f"user{i}") for i in range(10)]
    rec = Recorder()
    outcomes = run(smtp_server.mailer(connections=2), mails, rec)

    assert [o.mail for o in outcomes] == mails  # one outcome per mail, in input order
    assert {o.status for o in outcomes} == {"sent"}
    assert all(o.attempts == 1 and o.code == 250 for o in outcomes)
    assert all("\n" not in o.detail and o.detail.startswith("250") for o in outcomes)
    # The server got each exactly once, on exactly two reused connections.
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == sorted(m.recipient for m in mails)
    assert smtp_server.handler.connections == 2
    assert {m.connection for m in smtp_server.messages} == {1, 2}
    for mail in mails:
        [got] = received_for(smtp_server, mail.recipient)
        assert got.message_id == mail.message_id  # unchanged
        assert got.mail_from == "digest@example.org"
        assert got.message["To"] == mail.recipient
        assert got.message.get_body(("plain",)).get_content().startswith("Hello")
        assert not got.tls
    # Callbacks: attempt then outcome for each mail.
    rec.check_order()
    assert all(rec.attempts(m.recipient) == 1 for m in mails)
    assert len(rec.outcomes) == 10
    assert smtp_server.handler.log.count("1 QUIT") == 1  # connections closed politely


def test_message_is_sent_byte_for_byte(smtp_server):
    mail = make_mail("ada")
    before = mail.data
    run(smtp_server.mailer(), [mail], Recorder())
    assert mail.data == before
    # The bytes the server read, unchanged: CRLFs, the last line end, nothing normalised.
    assert smtp_server.messages[0].data == before
    assert smtp_server.handler.data_seen == [(["ada@example.org"], before)]


@pytest.mark.parametrize(
    ("body", "received", "by_the_library"),
    [
        (
            b"Hello,\r\n\r\nplain wire form: written as it is.\r\n",
            b"Hello,\r\n\r\nplain wire form: written as it is.\r\n",
            False,
        ),
        (  # dot-stuffed on the way, unstuffed by the server: the same bytes arrive
            b".a line that starts with a dot\r\n..and two\r\n.\r\nend\r\n",
            b".a line that starts with a dot\r\n..and two\r\n.\r\nend\r\n",
            False,
        ),
        (  # not wire form: the library normalises the line ends and ends the last line
            b"a bare\nline feed and a bare\rcarriage return",
            b"a bare\r\nline feed and a bare\r\ncarriage return\r\n",
            True,
        ),
    ],
)
def test_data_arrives_intact_whatever_its_lines(
    smtp_server, monkeypatch, body, received, by_the_library
):
    library_data = aiosmtplib.SMTP.data
    calls = []

    async def counted(self, message, **kwargs):
        calls.append(message)
        return await library_data(self, message, **kwargs)

    monkeypatch.setattr(aiosmtplib.SMTP, "data", counted)
    head = b"From: digest@example.org\r\nTo: ada@example.org\r\nSubject: lines\r\n\r\n"
    if body.startswith(b"."):  # the very first line too
        head = b""
    mail = OutgoingMail(
        ("ada@example.org", DAY), "ada@example.org", head + body, sender="digest@example.org"
    )
    [outcome] = run(smtp_server.mailer(), [mail], Recorder())
    assert outcome.status == "sent"
    [got] = smtp_server.messages
    assert got.data == head + received  # exactly, as the server read it
    assert len(calls) == int(by_the_library)


def test_no_mails_no_connection(smtp_server):
    assert run(smtp_server.mailer(), [], Recorder()) == []
    assert smtp_server.handler.connections == 0


def test_connection_reopened_after_messages_per_connection(smtp_server):
    mails = [make_mail(f"user{i}") for i in range(5)]
    outcomes = run(smtp_server.mailer(connections=1, messages_per_connection=2), mails, Recorder())
    assert {o.status for o in outcomes} == {"sent"}
    assert smtp_server.handler.connections == 3
    per_connection = [m.connection for m in smtp_server.messages]
    assert per_connection == [1, 1, 2, 2, 3]


def test_rate_limited_delivery_still_sends_everything(smtp_server):
    # 6000/min = 10 ms apart: exercises the shared limiter without asserting on speed.
    mails = [make_mail(f"user{i}") for i in range(4)]
    outcomes = run(smtp_server.mailer(max_per_minute=6000), mails, Recorder())
    assert {o.status for o in outcomes} == {"sent"}
    assert len(smtp_server.messages) == 4


# --- per-recipient replies ---------------------------------------------------------------------


def test_451_once_then_accepted(smtp_server):
    smtp_server.handler.refuse("grey@example.org", "451 4.7.1 greylisted, try later", times=1)
    mails = [make_mail("grey"), make_mail("ok")]
    rec = Recorder()
    outcomes = run(smtp_server.mailer(connections=1), mails, rec)

    grey, ok = outcomes
    assert (grey.status, grey.attempts, grey.code) == ("sent", 2, 250)
    assert (ok.status, ok.attempts) == ("sent", 1)
    assert len(received_for(smtp_server, "grey@example.org")) == 1
    assert len(received_for(smtp_server, "ok@example.org")) == 1
    assert rec.attempts("grey@example.org") == 2
    rec.check_order()
    # The refused transaction was reset before the retry.
    log = smtp_server.handler.log
    refused = log.index("1 RCPT grey@example.org -> 451 4.7.1 greylisted, try later")
    assert log[refused + 1] == "1 RSET"


def test_550_fails_at_once_and_the_others_go_out(smtp_server):
    smtp_server.handler.refuse("gone@example.org", "550 5.1.1 no such user")
    mails = [make_mail("a"), make_mail("gone"), make_mail("b")]
    rec = Recorder()
    outcomes = run(smtp_server.mailer(connections=1), mails, rec)

    by_rcpt = {o.mail.recipient: o for o in outcomes}
    gone = by_rcpt["gone@example.org"]
    assert (gone.status, gone.attempts, gone.code) == ("failed", 1, 550)
    assert gone.detail == "550 5.1.1 no such user"
    assert by_rcpt["a@example.org"].status == by_rcpt["b@example.org"].status == "sent"
    assert received_for(smtp_server, "gone@example.org") == []
    assert len(smtp_server.messages) == 2
    assert smtp_server.handler.connections == 1  # RSET, and the connection was reused
    assert "1 RSET" in smtp_server.handler.log
    assert rec.attempts("gone@example.org") == 1
    rec.check_order()


def test_5xx_at_data_fails(smtp_server):
    smtp_server.handler.refuse("spam@example.org", "554 5.7.1 message rejected", at="data")
    outcomes = run(smtp_server.mailer(), [make_mail("spam"), make_mail("ok")], Recorder())
    assert [(o.status, o.code) for o in outcomes] == [("failed", 554), ("sent", 250)]
    assert [m.rcpt_tos for m in smtp_server.messages] == [["ok@example.org"]]


def test_4xx_until_retries_run_out_is_pending(smtp_server):
    smtp_server.handler.refuse("full@example.org", "452 4.2.2 mailbox full")
    rec = Recorder()
    [outcome] = run(smtp_server.mailer(retries=3), [make_mail("full")], rec)
    assert (outcome.status, outcome.attempts, outcome.code) == ("pending", 3, 452)
    assert outcome.detail == "452 4.2.2 mailbox full"
    assert rec.attempts("full@example.org") == 3
    assert smtp_server.messages == []


def test_421_reconnects_and_delivers(smtp_server):
    smtp_server.handler.refuse("x@example.org", "421 4.3.2 shutting down", times=1)
    [outcome] = run(smtp_server.mailer(connections=1), [make_mail("x")], Recorder())
    assert (outcome.status, outcome.attempts) == ("sent", 2)
    assert len(smtp_server.messages) == 1
    assert smtp_server.handler.connections == 2  # aiosmtplib hangs up on 421: a new one


def test_multiline_reply_becomes_one_line(smtp_server):
    smtp_server.handler.refuse(
        "gone@example.org", "550-5.1.1 no such user\r\n550 5.1.1 see https://example.org"
    )
    [outcome] = run(smtp_server.mailer(), [make_mail("gone")], Recorder())
    assert outcome.status == "failed"
    assert "\n" not in outcome.detail and "\r" not in outcome.detail
    assert outcome.detail.startswith("550 5.1.1 no such user")


def test_mail_without_from_fails_alone(smtp_server):
    bad = make_mail("nofrom")
    bad.sender = ""  # a message built without a From address
    outcomes = run(smtp_server.mailer(), [bad, make_mail("ok")], Recorder())
    assert [o.status for o in outcomes] == ["failed", "sent"]
    assert "From" in outcomes[0].detail
    assert [m.rcpt_tos for m in smtp_server.messages] == [["ok@example.org"]]


def test_envelope_sender_can_be_set(smtp_server):
    mailer = SmtpMailer(
        smtp_server.delivery_config(),
        backoff=0,
        sender="bounces@example.org",
        local_hostname="client.test",
    )
    run(mailer, [make_mail("ada")], Recorder())
    [got] = smtp_server.messages
    assert got.mail_from == "bounces@example.org"
    assert got.message["From"] == FROM


def test_a_failing_callback_stops_the_run(smtp_server):
    class Boom(Exception):
        pass

    def on_outcome(outcome: SendOutcome) -> None:
        raise Boom("the store is locked")

    mails = [make_mail(f"user{i}") for i in range(3)]
    with pytest.raises(Boom):
        asyncio.run(
            deliver_list(
                smtp_server.mailer(connections=1),
                mails,
                on_attempt=lambda mail: None,
                on_outcome=on_outcome,
            )
        )
    assert len(smtp_server.messages) == 1  # nothing more was sent after the callback failed


# --- dropped connections and timeouts ----------------------------------------------------------


def test_connection_dropped_after_data_is_retried(smtp_server):
    smtp_server.handler.drop(at="data", nth=2)  # the 2nd message's DATA: read, then hang up
    mails = [make_mail(f"user{i}") for i in range(4)]
    rec = Recorder()
    outcomes = run(smtp_server.mailer(connections=1), mails, rec)

    assert {o.status for o in outcomes} == {"sent"}
    assert [o.attempts for o in outcomes] == [1, 2, 1, 1]
    for mail in mails:  # each received exactly once
        assert len(received_for(smtp_server, mail.recipient)) == 1
    assert smtp_server.handler.connections == 2
    assert rec.attempts("user1@example.org") == 2
    rec.check_order()


def test_connection_dropped_at_rcpt_is_retried(smtp_server):
    smtp_server.handler.drop(at="rcpt", address="b@example.org")
    outcomes = run(smtp_server.mailer(connections=1), [make_mail("a"), make_mail("b")], Recorder())
    assert [(o.status, o.attempts) for o in outcomes] == [("sent", 1), ("sent", 2)]
    assert len(smtp_server.messages) == 2


def test_dropped_every_time_ends_pending(smtp_server):
    smtp_server.handler.drop(at="data", address="b@example.org", times=None)
    outcomes = run(
        smtp_server.mailer(connections=1, retries=2), [make_mail("b"), make_mail("c")], Recorder()
    )
    b, c = outcomes
    assert (b.status, b.attempts, b.code) == ("pending", 2, None)
    assert b.detail.startswith("connection lost")
    assert c.status == "sent"
    assert [m.rcpt_tos for m in smtp_server.messages] == [["c@example.org"]]


def test_stall_past_timeout_ends_pending(smtp_server):
    smtp_server.handler.stall(30, at="data", address="slow@example.org", times=None)
    rec = Recorder()
    outcomes = run(
        smtp_server.mailer(timeout=1, retries=2), [make_mail("slow"), make_mail("fast")], rec
    )
    slow, fast = outcomes
    assert (slow.status, slow.attempts, slow.code) == ("pending", 2, None)
    assert "timed out" in slow.detail
    assert fast.status == "sent"
    assert [m.rcpt_tos for m in smtp_server.messages] == [["fast@example.org"]]
    assert rec.attempts("slow@example.org") == 2
    rec.check_order()


def test_server_down_every_mail_pending_without_hammering():
    config = DeliveryConfig(
        method="smtp",
        host="127.0.0.1",
        port=free_port(),
        security="none",
        retries=2,
        connections=1,
        timeout=2,
    )
    rec = Recorder()
    outcomes = run(SmtpMailer(config, backoff=0), [make_mail(f"u{i}") for i in range(5)], rec)
    assert {o.status for o in outcomes} == {"pending"}
    assert outcomes[0].attempts == 2 and outcomes[0].detail.startswith("cannot connect")
    # Once the server looks down, the rest are not tried in this run.
    assert [o.attempts for o in outcomes[1:]] == [0, 0, 0, 0]
    assert all(o.detail.startswith("not tried: cannot connect") for o in outcomes[1:])
    assert not [e for e in rec.events if e[0] == "attempt"]  # nothing was transmitted


# --- login and TLS: fatal for the run ----------------------------------------------------------


def test_login_succeeds(smtp_server, monkeypatch):
    smtp_server.restart(users={"digest": "s3cret"})
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "s3cret")
    mailer = smtp_server.mailer(username="digest", password_env="DIGEST_SMTP_PASSWORD")
    outcomes = run(mailer, [make_mail("a"), make_mail("b")], Recorder())
    assert {o.status for o in outcomes} == {"sent"}
    assert {m.login for m in smtp_server.messages} == {b"digest".decode()}


def test_login_refused_stops_the_run_and_sends_nothing(smtp_server, monkeypatch):
    smtp_server.restart(users={"digest": "s3cret"})
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
    mailer = smtp_server.mailer(username="digest", password_env="DIGEST_SMTP_PASSWORD")
    rec = Recorder()
    with pytest.raises(DeliverySetupError) as info:
        run(mailer, [make_mail(f"u{i}") for i in range(4)], rec)

    err = info.value
    assert "login refused" in err.message and "535" in err.message
    assert "\n" not in str(err)
    assert err.fix == SETUP_FIX
    assert err.code == 535
    assert smtp_server.messages == []
    assert rec.events == []  # nothing was attempted
    assert not any(" MAIL " in line for line in smtp_server.handler.log)


def test_missing_password_names_the_variable(smtp_server):
    mailer = smtp_server.mailer(username="digest", password_env="DIGEST_SMTP_PASSWORD")
    with pytest.raises(DeliverySetupError, match=r"\$DIGEST_SMTP_PASSWORD is empty or not set"):
        run(mailer, [make_mail("a")], Recorder())
    assert smtp_server.handler.connections == 0


def test_login_without_auth_offered_is_a_setup_error(smtp_server, monkeypatch):
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "x")
    mailer = smtp_server.mailer(username="digest", password_env="DIGEST_SMTP_PASSWORD")
    with pytest.raises(DeliverySetupError, match="cannot log in"):
        run(mailer, [make_mail("a")], Recorder())
    assert smtp_server.messages == []


def test_starttls_not_offered_never_falls_back_to_plaintext(smtp_server):
    # The server is plain (no STARTTLS); the config insists on STARTTLS.
    rec = Recorder()
    with pytest.raises(DeliverySetupError) as info:
        run(smtp_server.mailer(security="starttls"), [make_mail("a"), make_mail("b")], rec)
    assert "does not offer STARTTLS" in info.value.message
    assert info.value.fix == SETUP_FIX
    assert smtp_server.messages == []
    assert not any(" MAIL " in line for line in smtp_server.handler.log)
    assert rec.events == []


def test_starttls_delivers_encrypted(smtp_server, monkeypatch):
    smtp_server.restart(tls="starttls", users={"digest": "s3cret"})
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "s3cret")
    mailer = smtp_server.mailer(username="digest", password_env="DIGEST_SMTP_PASSWORD")
    assert mailer.config.security == "starttls"
    outcomes = run(mailer, [make_mail("a"), make_mail("b"), make_mail("c")], Recorder())
    assert {o.status for o in outcomes} == {"sent"}
    assert len(smtp_server.messages) == 3
    assert all(m.tls and m.login == "digest" for m in smtp_server.messages)


def test_implicit_tls_delivers(smtp_server):
    smtp_server.restart(tls="implicit")
    mailer = smtp_server.mailer()
    assert mailer.config.security == "tls"
    outcomes = run(mailer, [make_mail("a"), make_mail("b")], Recorder())
    assert {o.status for o in outcomes} == {"sent"}
    assert all(m.tls for m in smtp_server.messages)


@pytest.mark.parametrize("tls", ["implicit", "starttls"])
def test_untrusted_certificate_is_a_setup_error(smtp_server, tls):
    smtp_server.restart(tls=tls)
    # The system's default trust store does not know the test CA.
    mailer = SmtpMailer(smtp_server.delivery_config(), backoff=0, local_hostname="client.test")
    with pytest.raises(DeliverySetupError, match="TLS failed") as info:
        run(mailer, [make_mail("a")], Recorder())
    assert info.value.fix == SETUP_FIX
    assert "\n" not in str(info.value)
    assert smtp_server.messages == []


def test_implicit_tls_against_a_plain_server_is_a_setup_error(smtp_server):
    mailer = smtp_server.mailer(security="tls", timeout=2)
    with pytest.raises(DeliverySetupError, match="TLS failed"):
        run(mailer, [make_mail("a")], Recorder())
    assert smtp_server.messages == []


# --- make_mailer -------------------------------------------------------------------------------


def test_make_mailer_picks_the_method(tmp_path):
    assert isinstance(make_mailer(DeliveryConfig(method="outbox", outbox=tmp_path)), OutboxMailer)
    smtp = make_mailer(DeliveryConfig(method="smtp", host="h"), backoff=0)
    assert isinstance(smtp, SmtpMailer) and smtp.backoff == 0
