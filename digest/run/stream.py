"""The run's second step, streamed: per subscriber plan -> build -> queue -> deliver -> record.

    producer (digest.run.produce): claim readers, plan each one's digest, record what the plan
              decided, and queue its mails in order while they are built (a worker pool)
    consumer: the mailer takes mails from the bounded queue; the send log is written right
              before each transaction ('sending') and right after its outcome

Nothing per subscriber is kept once its mail is recorded, so memory does not grow with the list;
the report keeps one small line per digest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from digest.config import Subscriber
from digest.deliver import Mailer, MailQueue, OutgoingMail, SendOutcome, Stop
from digest.errors import DeliverySetupError
from digest.mailbuild import MailBuilder
from digest.plan import MailJob, RunContext
from digest.run.claims import Claims
from digest.run.lines import Lines
from digest.run.produce import InFlight, Producer
from digest.run.report import Progress, RunReport
from digest.schedule import Due
from digest.store import ClaimLost, Recorder

QUEUE_SIZE = 64  # built mails waiting for an SMTP worker


async def stream_digests(
    ctx: RunContext,
    due: Sequence[tuple[Subscriber, Due]],
    sink: Mailer | None,
    builder: MailBuilder,
    recorder: Recorder,
    claims: Claims,
    report: RunReport,
    stop: Stop,
    progress: Progress | None,
    *,
    wait_for_others: bool = True,
) -> None:
    """Plan, build and deliver every due subscriber's mails; `sink` None plans only (a
    preview that writes no files)."""
    queue: MailQueue = asyncio.Queue(maxsize=QUEUE_SIZE)
    lines = Lines(report, progress, dry_run=ctx.options.dry_run)
    in_flight = InFlight()
    flushing = _SoonFlush(recorder, stop)

    def on_attempt(mail: OutgoingMail) -> None:
        recorder.attempt(_job(mail).log, mail.data)

    def on_outcome(outcome: SendOutcome) -> None:
        mail = _job(outcome.mail).log
        last = in_flight.done(mail.subscriber)
        recorder.outcome(
            mail,
            outcome.status,
            code=outcome.code,
            detail=outcome.detail,
            unknown=outcome.unknown,
            last=last,
        )
        # An accepted mail is written with the next 'sending' when its connection goes on
        # at once (the same loop step), else as soon as the loop turns.
        flushing.soon()
        lines.outcome(outcome)

    producer = Producer(
        ctx, queue, builder, recorder, claims, lines, stop, in_flight, build=sink is not None
    )
    producing = asyncio.create_task(producer.run(due, wait_for_others=wait_for_others))
    consumer = None
    if sink is not None:
        consumer = asyncio.create_task(
            sink.deliver_stream(queue, on_attempt=on_attempt, on_outcome=on_outcome, stop=stop)
        )
    try:
        await _finish(producing, consumer, queue, report, lines, stop)
    finally:
        for task in (producing, consumer):
            if task is not None and not task.done():
                task.cancel()
        recorder.flush()  # what the server accepted last, and what was queued but not tried
    flushing.check()


async def _finish(
    producer: asyncio.Task[None],
    consumer: asyncio.Task[None] | None,
    queue: MailQueue,
    report: RunReport,
    lines: Lines,
    stop: Stop,
) -> None:
    """Wait for both sides; whichever fails first stops the other, and what was queued but got
    no outcome is reported as not sent (it stays pending in the send log)."""
    tasks: set[asyncio.Task[None]] = {producer} | ({consumer} if consumer else set())
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    if consumer is not None and consumer in done and not producer.done():
        producer.cancel()  # the mailer stopped for good (login refused, a bug)
    if producer in done and producer.exception() is not None and consumer is not None:
        stop.set(f"the run failed: {producer.exception()}")
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)
    await asyncio.gather(producer, return_exceptions=True)
    if consumer is not None:
        try:
            await consumer
        except DeliverySetupError as exc:
            # Login or TLS refused: nothing more can be sent this run. What was not sent stays
            # pending in the send log and goes out on the next run.
            report.fatal = exc
            lines.unsent("not sent: the mail server cannot be used, see below")
        except ClaimLost as exc:
            # Another worker took this one's readers over: it sends the rest.
            report.fatal = exc
            lines.unsent("not sent here: another worker took it over, see below")
    if not producer.cancelled() and (error := producer.exception()) is not None:
        raise error
    if stop.is_set():
        lines.unsent(f"not sent: {stop.reason}; the next run sends it")


class _SoonFlush:
    """Writes what the Recorder holds on the loop's next turn (once per turn). A write that
    fails stops the run, and is raised when the stream ends."""

    def __init__(self, recorder: Recorder, stop: Stop) -> None:
        self.recorder = recorder
        self.stop = stop
        self.scheduled = False
        self.error: BaseException | None = None

    def soon(self) -> None:
        if not self.scheduled and self.recorder.unwritten:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.scheduled = False
        try:
            self.recorder.flush()
        except Exception as exc:  # the state cannot be written: nothing more is sent
            self.error = self.error or exc
            self.stop.set(f"the state cannot be written: {exc}")

    def check(self) -> None:
        if self.error is not None:
            raise self.error


def _job(mail: OutgoingMail) -> MailJob:
    job = mail.context
    assert isinstance(job, MailJob)
    return job
