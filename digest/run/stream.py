"""The run's second step, streamed: per subscriber plan -> build -> queue -> deliver -> record.

    producer: plan each subscriber in turn (digest.plan), record what the plan decided, and
              queue its mails in order while up to BUILD_AHEAD are built (a worker pool)
    consumer: the mailer takes mails from the bounded queue; the send log is written right
              before each transaction ('sending') and right after its outcome

Nothing per subscriber is kept once its mail is recorded, so memory does not grow with the list;
the report keeps one small line per digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from digest.config import Subscriber
from digest.deliver import Mailer, MailQueue, OutgoingMail, SendOutcome, Stop
from digest.errors import DeliverySetupError, DigestError
from digest.mailbuild import BuiltMail, MailBuilder
from digest.plan import MailJob, RunContext, SubscriberPlan, plan_subscriber
from digest.run.report import Progress, RunReport, SubscriberReport
from digest.schedule import Due
from digest.store import Recorder

log = logging.getLogger(__name__)

QUEUE_SIZE = 64  # built mails waiting for an SMTP worker
BUILD_AHEAD = 32  # mails being built at once (in the render pool)

_Building = deque[tuple[MailJob, SubscriberReport, "asyncio.Future[BuiltMail] | None"]]


class _Lines:
    """The report's lines of the digests in flight, and what each outcome makes of them."""

    def __init__(self, report: RunReport, progress: Progress | None, *, dry_run: bool) -> None:
        self.report = report
        self.progress = progress
        self.dry_run = dry_run
        self.waiting: dict[tuple[str, str], SubscriberReport] = {}  # queued, no outcome yet

    def add(self, line: SubscriberReport) -> None:
        self.report.subscribers.append(line)

    def planned(self, plan: SubscriberPlan, job: MailJob, *, keep_papers: bool) -> SubscriberReport:
        line = SubscriberReport(
            plan.email,
            job.key[1],
            "dry-run" if self.dry_run else "pending",
            papers=list(job.ranked) if keep_papers else [],
            paper_count=len(job.log.paper_ids),
            candidates=plan.candidates if job.log.kind == "digest" else 0,
            detail=job.note,
            message_id=job.log.message_id,
        )
        self.add(line)
        self.waiting[job.key] = line
        return line

    def outcome(self, outcome: SendOutcome) -> None:
        line = self.waiting.pop(outcome.mail.key)
        if self.dry_run:
            line.file = str(Path(outcome.detail).with_suffix(".html"))
        else:
            line.status = outcome.status
            # A server's "250 OK" says nothing; an outbox path, a refusal or an error does.
            if outcome.status != "sent" or outcome.detail.startswith("written to"):
                line.add_detail(outcome.detail)
        if self.progress is not None:
            self.progress(self.report, line)

    def unsent(self, detail: str) -> None:
        """Those queued that got no outcome: they were never sent; the next run sends them."""
        for line in self.waiting.values():
            if line.status == "pending":
                line.add_detail(detail)
        self.waiting.clear()


async def stream_digests(
    ctx: RunContext,
    due: Sequence[tuple[Subscriber, Due]],
    sink: Mailer | None,
    builder: MailBuilder,
    recorder: Recorder,
    report: RunReport,
    stop: Stop,
    progress: Progress | None,
) -> None:
    """Plan, build and deliver every subscriber's mails; `sink` None plans only (a preview
    that writes no files)."""
    queue: MailQueue = asyncio.Queue(maxsize=QUEUE_SIZE)
    lines = _Lines(report, progress, dry_run=ctx.options.dry_run)

    def on_attempt(mail: OutgoingMail) -> None:
        recorder.attempt(_job(mail).log, mail.data)

    def on_outcome(outcome: SendOutcome) -> None:
        m = outcome
        recorder.outcome(
            _job(m.mail).log, m.status, code=m.code, detail=m.detail, unknown=m.unknown
        )
        lines.outcome(outcome)

    producer = asyncio.create_task(
        _produce(ctx, due, queue, builder, recorder, lines, stop, build=sink is not None)
    )
    consumer = None
    if sink is not None:
        consumer = asyncio.create_task(
            sink.deliver_stream(queue, on_attempt=on_attempt, on_outcome=on_outcome, stop=stop)
        )
    try:
        await _finish(producer, consumer, queue, report, lines, stop)
    finally:
        for task in (producer, consumer):
            if task is not None and not task.done():
                task.cancel()


async def _finish(
    producer: asyncio.Task[None],
    consumer: asyncio.Task[None] | None,
    queue: MailQueue,
    report: RunReport,
    lines: _Lines,
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
    if not producer.cancelled() and (error := producer.exception()) is not None:
        raise error
    if stop.is_set():
        lines.unsent(f"not sent: {stop.reason}; the next run sends it")


def _job(mail: OutgoingMail) -> MailJob:
    job = mail.context
    assert isinstance(job, MailJob)
    return job


async def _produce(
    ctx: RunContext,
    due: Sequence[tuple[Subscriber, Due]],
    queue: MailQueue,
    builder: MailBuilder,
    recorder: Recorder,
    lines: _Lines,
    stop: Stop,
    *,
    build: bool,
) -> None:
    """Plan each subscriber's digest in turn and queue its mails, in order, while up to
    BUILD_AHEAD of them are being built; ends the queue with None."""
    building: _Building = deque()
    sender = ctx.config.digest.from_email
    for sub, sub_due in due:
        if stop.is_set():
            break
        try:
            plan = plan_subscriber(ctx, sub, sub_due)
        except DigestError:
            raise  # the state cannot be read or written: stop the run
        except Exception as exc:  # one subscriber's digest must not stop the others
            log.info("planning the digest of %s failed", sub.email, exc_info=True)
            lines.add(SubscriberReport(sub.email, "", "failed", detail=f"not built: {exc!r}"))
            continue
        if plan.record_empty:
            recorder.empty(plan.email, plan.digest_date, upto_seq=plan.upto_seq)
        if plan.status:
            lines.add(
                SubscriberReport(
                    plan.email,
                    plan.digest_date,
                    plan.status,
                    candidates=plan.candidates,
                    detail=plan.detail,
                )
            )
        for job in plan.jobs:
            line = lines.planned(plan, job, keep_papers=ctx.options.keep_papers)
            if not build:
                continue
            future = None
            if job.data is None:
                assert job.content is not None and job.headers is not None
                future = builder.submit(job.content, job.headers)
            building.append((job, line, future))
            while len(building) > BUILD_AHEAD or (building and _ready(building[0][2])):
                await _ship_oldest(building, queue, recorder, stop, sender)
        await asyncio.sleep(0)  # let the SMTP workers and signals in between subscribers
    while building and not stop.is_set():
        await _ship_oldest(building, queue, recorder, stop, sender)
    await _put_unless_stopped(queue, None, stop)


async def _ship_oldest(
    building: _Building, queue: MailQueue, recorder: Recorder, stop: Stop, sender: str
) -> None:
    job, line, future = building.popleft()
    try:
        built = None if future is None else await future
    except Exception as exc:  # one subscriber's digest must not stop the others
        log.info("building the digest of %s failed", job.key[0], exc_info=True)
        line.status, line.detail = "failed", f"not built: {exc!r}"
        return
    data = job.data
    if built is not None:
        data, job.log.packed = built.wire, built.packed
    assert data is not None
    recorder.queued(job.log)
    mail = OutgoingMail(
        key=job.key,
        recipient=job.recipient,
        data=data,
        sender=sender,
        message_id=job.log.message_id,
        context=job,
    )
    await _put_unless_stopped(queue, mail, stop)


async def _put_unless_stopped(queue: MailQueue, item: OutgoingMail | None, stop: Stop) -> None:
    """Queue an item, waiting for room; once the run stops nobody takes from the queue, so
    stop waiting then (a None still goes in if there is room, for a worker waiting on get)."""
    while not stop.is_set():
        if not queue.full():
            queue.put_nowait(item)
            return
        putting = asyncio.ensure_future(queue.put(item))
        stopping = asyncio.ensure_future(stop.requested.wait())
        await asyncio.wait({putting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if putting.done():
            return
        putting.cancel()
    if item is None and not queue.full():
        queue.put_nowait(None)


def _ready(future: asyncio.Future[BuiltMail] | None) -> bool:
    return future is None or future.done()
