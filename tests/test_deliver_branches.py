"""The SMTP worker's cancellation, stop and backoff branches, against the real aiosmtpd server."""

from __future__ import annotations

import asyncio
import contextlib

from digest.deliver import Stop, smtp
from digest.errors import DeliverySetupError
from tests.support.delivery import Recorder, deliver_list, make_mail

WAIT = 10.0  # seconds: a bound on waiting for an event the test expects within milliseconds


def test_a_cancelled_delivery_closes_its_connections_and_records_nothing_more(smtp_server):
    smtp_server.handler.stall(5, at="data", times=None)
    rec = Recorder()
    mailer = smtp_server.mailer(connections=2)

    async def main():
        both_sending = asyncio.Event()

        def attempt(mail):
            rec.on_attempt(mail)
            if len(rec.events) == 2:
                both_sending.set()

        task = asyncio.create_task(
            deliver_list(
                mailer,
                [make_mail("ada"), make_mail("bob"), make_mail("cy")],
                on_attempt=attempt,
                on_outcome=rec.on_outcome,
            )
        )
        waiting = asyncio.create_task(both_sending.wait())
        await asyncio.wait({task, waiting}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        assert both_sending.is_set(), f"both workers did not start a transaction: {rec.events}"
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"

    assert asyncio.run(main()) == "cancelled"
    assert rec.outcomes == {}  # in flight when cancelled: no outcome (the run seals them)
    assert [kind for kind, _, _ in rec.events] == ["attempt", "attempt"]


def test_a_stop_before_the_first_attempt_gives_no_outcome(smtp_server):
    rec = Recorder()
    mailer = smtp_server.mailer(connections=1)

    async def main():
        stop = Stop.new()

        def attempt(mail):
            rec.on_attempt(mail)
            stop.set("stopped by SIGTERM")  # while ada is in flight

        return await deliver_list(
            mailer,
            [make_mail("ada"), make_mail("bob")],
            on_attempt=attempt,
            on_outcome=rec.on_outcome,
            stop=stop,
        )

    outcomes = asyncio.run(main())
    assert [(o.mail.recipient, o.status) for o in outcomes] == [("ada@example.org", "sent")]
    assert [m.rcpt_tos for m in smtp_server.messages] == [["ada@example.org"]]


def test_a_refusal_after_a_maybe_delivered_attempt_stays_open(smtp_server):
    smtp_server.handler.drop(at="data")  # attempt 1: the data went out, no reply
    smtp_server.handler.refuse("ada@example.org", "550 5.1.1 no such user", times=1, nth=2)
    rec = Recorder()
    (outcome,) = asyncio.run(
        deliver_list(
            smtp_server.mailer(retries=3),
            [make_mail("ada")],
            on_attempt=rec.on_attempt,
            on_outcome=rec.on_outcome,
        )
    )
    # The first attempt may have been delivered: the digest is not "failed", it is sealed.
    assert (outcome.status, outcome.unknown, outcome.attempts) == ("pending", True, 2)


def test_a_login_refused_on_reconnect_gives_the_tried_mail_an_outcome(smtp_server, monkeypatch):
    smtp_server.restart(users={"digest": "s3cret"})
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "s3cret")
    smtp_server.handler.refuse("ada@example.org", "451 4.3.0 later", times=1)
    rec = Recorder()

    def attempt(mail):
        rec.on_attempt(mail)
        smtp_server.handler.users.clear()  # the next login is refused

    mailer = smtp_server.mailer(
        retries=3,
        messages_per_connection=1,  # every attempt opens a new connection
        username="digest",
        password_env="DIGEST_SMTP_PASSWORD",
    )
    try:
        asyncio.run(
            deliver_list(mailer, [make_mail("ada")], on_attempt=attempt, on_outcome=rec.on_outcome)
        )
    except DeliverySetupError as exc:
        assert "login refused" in str(exc)
    else:
        raise AssertionError("the refused login did not stop the run")
    outcome = rec.outcomes["ada@example.org"]
    assert (outcome.status, outcome.attempts) == ("pending", 1)


def test_a_worker_whose_cancellation_was_swallowed_stops_at_its_next_step():
    """Python 3.11's asyncio.wait_for, which aiosmtplib waits for each reply with, returns the
    reply instead of raising when the reply arrives in the same loop turn as a cancellation:
    the worker then goes on as if never cancelled. It checks before every transaction and
    callback, so it starts nothing and reports nothing more."""
    calls = []

    async def main():
        run = smtp._Run(
            asyncio.Queue(),
            on_attempt=calls.append,
            on_outcome=calls.append,
            limiter=None,
            stop=Stop.new(),
            deadline=asyncio.get_running_loop().time() + 60,
            deadline_text="",
        )
        assert run.may_start()
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as wait_for may do
            await asyncio.sleep(WAIT)
        assert task.cancelling() == 1
        for step in (run.may_start, lambda: run.attempt(make_mail("ada")), run.take):
            try:
                result = step()
                if asyncio.iscoroutine(result):
                    await result
            except asyncio.CancelledError:
                continue
            raise AssertionError(f"{step} went on in a cancelled worker")

    asyncio.run(main())
    assert calls == []
