"""One run: fetch the sources, record what is new, and stream each subscriber's digest out.

    fetch -> merge -> record (papers first seen now)
      -> per subscriber, streamed: plan (what is due, candidates since their watermark, rank)
         -> build the wire bytes (a worker process when the list is long) -> bounded queue
         -> SMTP workers -> record: 'sending' before each transaction, 'sent' right after

Nothing per subscriber is kept once its mail is recorded, so memory does not grow with the list;
the report keeps one small line per digest. A dry run (and `preview`) runs the very same steps
against an in-memory copy of the state and writes the digests to files instead of mailing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx

from digest.config import Config, Subscriber, check_secrets
from digest.deliver import (
    Mailer,
    MailQueue,
    OutgoingMail,
    SendOutcome,
    Stop,
    make_mailer,
    outbox_filename,
)
from digest.errors import EXIT_FAILED, EXIT_OK, DeliverySetupError, DigestError, UsageError
from digest.heap import run_heap, settle
from digest.lock import async_run_lock
from digest.mailbuild import BuiltMail, MailBuilder
from digest.models import Paper
from digest.plan import MailJob, RunContext, SubscriberPlan, plan_subscriber
from digest.rank.embed import EmbeddingModel, ModelUnavailable
from digest.rank.embed_process import start_model_process
from digest.sources import SourceResult, Validators, fetch_all, make_client, merge_papers
from digest.store import Store, utc_now

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
QUEUE_SIZE = 64  # built mails waiting for an SMTP worker
BUILD_AHEAD = 32  # mails being built at once (in the render pool)


@dataclass
class RunOptions:
    digest_date: date | None = None  # the digest's label and key (default: the one due now)
    dry_run: bool = False
    only: tuple[str, ...] = ()  # subscriber emails; empty = everyone
    force: bool = False  # send again a digest already sent for that date
    now: datetime | None = None  # a fixed clock, for tests
    clock: Clock | None = None  # the run's one clock; default: `now`, else the system's
    keep_papers: bool = False  # keep each subscriber's ranked papers in the report (preview)
    catch_up: timedelta | None = None  # the daemon: a send time older than this is missed
    # The daemon: a failed source holds the digests back (retried within catch_up) instead of
    # sending without that source's papers.
    defer_on_source_failure: bool = False

    def make_clock(self) -> Clock:
        if self.clock is not None:
            return self.clock
        fixed = self.now
        return (lambda: fixed) if fixed is not None else utc_now


@dataclass
class SourceReport:
    name: str
    status: str  # "ok" | "not-modified" | "failed"
    papers: int = 0
    error: DigestError | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class SubscriberReport:
    email: str
    digest_date: str
    # "sent" | "pending" | "failed" | "already-sent" | "nothing-new" | "dry-run" | "not-due"
    # | "unsubscribed" | "deferred" (the daemon holds it back while a source fails)
    status: str
    papers: list[Any] = field(default_factory=list)  # RankedPaper, only with keep_papers
    paper_count: int = 0
    candidates: int = 0
    detail: str = ""
    message_id: str = ""
    file: str = ""  # the .html a dry run wrote


@dataclass
class RunReport:
    command: str
    dry_run: bool
    sources: list[SourceReport] = field(default_factory=list)
    subscribers: list[SubscriberReport] = field(default_factory=list)
    new_papers: int = 0
    fatal: DigestError | None = None  # stopped the deliveries (login refused, TLS refused)
    stopped: str = ""  # why the run stopped early (a signal, the deadline)
    output_dir: Path | None = None

    @property
    def exit_code(self) -> int:
        failed = (
            self.fatal is not None
            or bool(self.stopped)
            or any(s.status == "failed" for s in self.sources)
            or any(s.status in ("pending", "failed") for s in self.subscribers)
        )
        return EXIT_FAILED if failed else EXIT_OK

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sub in self.subscribers:
            counts[sub.status] = counts.get(sub.status, 0) + 1
        return counts

    def summary(self) -> str:
        parts = [f"{self.new_papers} new papers"]
        parts += [f"{n} {status}" for status, n in self.counts().items()]
        failed = [s.name for s in self.sources if s.status == "failed"]
        if failed:
            parts.append(f"failed sources: {', '.join(failed)}")
        if self.stopped:
            parts.append(f"stopped: {self.stopped}")
        return ", ".join(parts)


Progress = Callable[[RunReport, SubscriberReport], None]


# --- the run ---------------------------------------------------------------------------------


def send_now(config: Config, options: RunOptions | None = None, **kwargs: Any) -> RunReport:
    """Synchronous entry point of `run_digest` (the CLI and tests call this).

    SIGTERM and SIGINT stop it cleanly: no new SMTP transaction starts, the ones in flight
    finish and are recorded, and the rest stays pending for the next run.
    """

    async def main() -> RunReport:
        stop = kwargs.pop("stop", None) or Stop.new()
        with _stop_on_signals(stop):
            return await run_digest(config, options or RunOptions(), stop=stop, **kwargs)

    return asyncio.run(main())


@contextlib.contextmanager
def _stop_on_signals(stop: Stop) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set in the main thread
        return
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set, f"stopped by {sig.name}")
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def start_model() -> EmbeddingModel | None:
    """The shipped model in its own process (tests start theirs, or none)."""
    return start_model_process()


def _start_model(factory: Callable[[], EmbeddingModel | None]) -> EmbeddingModel | None:
    """The run's embedding model, starting to load now; None ranks by keywords (with one
    warning when it cannot start)."""
    try:
        return factory()
    except ModelUnavailable as exc:
        log.warning("ranking by keywords only: the embedding model is unavailable (%s)", exc)
        return None


async def run_digest(
    config: Config,
    options: RunOptions,
    *,
    client: httpx.AsyncClient | None = None,
    mailer: Mailer | None = None,
    command: str = "send-now",
    output_dir: Path | None = None,
    deliver: bool = True,
    lock_timeout: float = 600.0,
    fetch_backoff: float = 1.0,
    fetch_retries: int = 3,
    stop: Stop | None = None,
    progress: Progress | None = None,
    lock_held: bool = False,
    model: Callable[[], EmbeddingModel | None] | None = None,
) -> RunReport:
    """Run the whole flow once. Raises DigestError only for what stops a run before it starts
    (bad usage, secrets missing, state file unusable, lock held) or a state file that cannot be
    written mid-run; everything else is in the report. `lock_held`: the caller (the daemon)
    holds the state lock for its lifetime."""
    clock = options.make_clock()
    started = clock()
    subscribers = select_subscribers(config, options.only)
    real_send = deliver and not options.dry_run
    if real_send:
        check_secrets(config)
    stop = stop or Stop.new()
    report = RunReport(command=command, dry_run=options.dry_run)
    async with AsyncExitStack() as stack:
        stack.enter_context(run_heap())
        if options.dry_run:
            store = Store.open_copy(config.digest.state)
        else:
            if not lock_held:  # waiting for another run never blocks the event loop
                await stack.enter_async_context(
                    async_run_lock(config.digest.state, timeout=lock_timeout)
                )
            store = Store.open(config.digest.state)
        stack.callback(store.close)
        if client is None:
            client = await stack.enter_async_context(make_client())
        run_id = store.start_run(command, now=started)
        # The render workers start now: they load while the sources are fetched and ranked.
        builder = MailBuilder.for_run(len(subscribers) if deliver else 0)
        stack.callback(builder.close)
        builder.start(config.digest.templates)
        # So does the embedding model, in its own process (closed when the run ends).
        embedder = _start_model(model or start_model)
        if embedder is not None:
            stack.callback(embedder.close)
        try:
            store.seal_interrupted(now=started)
            store.prune_messages(now=started)
            fetched = await _gather_papers(
                config, store, client, report, started, backoff=fetch_backoff, retries=fetch_retries
            )
            failed = [s.name for s in report.sources if s.status == "failed"]
            if options.defer_on_source_failure and failed:
                report.subscribers += [
                    SubscriberReport(
                        sub.email, "", "deferred", detail=f"source failed: {', '.join(failed)}"
                    )
                    for sub in subscribers
                ]
                subscribers = []
            store.register_subscribers(
                [s.email for s in subscribers],
                now=started,
                lookback_days=config.digest.lookback_days,
            )
            ctx = RunContext.build(
                config,
                store,
                options,
                now=started,
                fetched=fetched,
                sources_failed=any(s.status == "failed" for s in report.sources),
                subscribers=subscribers,
                preview=command == "preview",
                model=embedder,
            )
            sink: Mailer | None = None
            if options.dry_run:
                if deliver:
                    report.output_dir = output_dir or Path(
                        tempfile.mkdtemp(prefix="digest-dry-run-")
                    )
                    sink = PreviewWriter(report.output_dir)
            elif deliver:
                sink = mailer or make_mailer(config.delivery)
            settle()  # the day's papers, their index and the profiles live until the run ends
            await _stream(ctx, subscribers, sink, builder, report, stop, clock, progress)
        except BaseException as exc:
            summary = f"stopped by {type(exc).__name__}: {exc}"
            with contextlib.suppress(DigestError):
                store.finish_run(run_id, exit_code=EXIT_FAILED, summary=summary, now=clock())
            raise
        report.stopped = stop.reason
        store.finish_run(run_id, exit_code=report.exit_code, summary=report.summary(), now=clock())
    return report


def select_subscribers(config: Config, only: Sequence[str]) -> list[Subscriber]:
    """The configured subscribers, or those named by --only: each once, whatever the case."""
    if not only:
        return list(config.subscribers)
    chosen: dict[str, Subscriber] = {}
    try:
        for email in only:
            sub = config.subscriber(email)
            chosen.setdefault(sub.email.lower(), sub)
    except DigestError as exc:
        raise UsageError(exc.message, fix=exc.fix) from None
    return list(chosen.values())


async def _gather_papers(
    config: Config,
    store: Store,
    client: httpx.AsyncClient,
    report: RunReport,
    now: datetime,
    *,
    backoff: float,
    retries: int,
) -> list[Paper]:
    """Fetch every source and record its papers. Returns the papers fetched in this run."""
    known: dict[str, Validators] = {}
    for source in config.sources:
        state = store.source_state(source.name)
        if state and (state.etag or state.last_modified):
            known[source.name] = Validators(state.etag, state.last_modified)
    results: list[SourceResult] = await fetch_all(
        config.sources, client, known, backoff=backoff, retries=retries
    )

    healthy: list[SourceResult] = []
    for result in results:
        name = result.source.name
        if result.error is not None:
            report.sources.append(SourceReport(name, "failed", error=result.error))
            store.record_source_error(name, str(result.error), now=now)
        elif result.not_modified:
            report.sources.append(SourceReport(name, "not-modified", warnings=result.warnings))
            store.record_source_not_modified(name, now=now)
        else:
            healthy.append(result)
            report.sources.append(
                SourceReport(name, "ok", papers=len(result.papers), warnings=result.warnings)
            )

    fresh = merge_papers(p for r in healthy for p in r.papers)
    stored = store.get_papers(p.id for p in fresh)
    # A paper seen again keeps what earlier sources knew of it (HF upvotes, categories, ...).
    papers: list[Paper] = [
        merge_papers([stored[p.id], p])[0] if p.id in stored else p for p in fresh
    ]
    # Every healthy source is recorded as fetched; its validators (if any) with the papers.
    validators = {
        r.source.name: (r.validators.etag, r.validators.last_modified)
        if r.validators is not None
        else (None, None)
        for r in healthy
    }
    report.new_papers = store.record_papers(papers, now=now, validators=validators)
    return papers


# --- streaming: plan -> build -> queue -> deliver -> record ------------------------------------


async def _stream(
    ctx: RunContext,
    subscribers: Sequence[Subscriber],
    sink: Mailer | None,
    builder: MailBuilder,
    report: RunReport,
    stop: Stop,
    clock: Clock,
    progress: Progress | None,
) -> None:
    queue: MailQueue = asyncio.Queue(maxsize=QUEUE_SIZE)
    recorder = _Recorder(ctx.store, report, clock, dry_run=ctx.options.dry_run, progress=progress)
    producer = asyncio.create_task(
        _produce(ctx, subscribers, queue, builder, recorder, stop, build=sink is not None)
    )
    consumer: asyncio.Task[None] | None = None
    if sink is not None:
        consumer = asyncio.create_task(
            sink.deliver_stream(
                queue, on_attempt=recorder.on_attempt, on_outcome=recorder.on_outcome, stop=stop
            )
        )
    try:
        tasks: set[asyncio.Task[None]] = {producer} | ({consumer} if consumer else set())
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        if consumer is not None and consumer in done and not producer.done():
            # The mailer stopped for good (login refused, a bug): nothing more can go out.
            producer.cancel()
        if producer in done and producer.exception() is not None and consumer is not None:
            stop.set(f"the run failed: {producer.exception()}")
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        await asyncio.gather(producer, return_exceptions=True)
        if consumer is not None:
            try:
                await consumer
            except DeliverySetupError as exc:
                # Login or TLS refused: nothing more can be sent this run. What was not sent
                # stays pending in the send log and goes out on the next run.
                report.fatal = exc
                recorder.unsent("not sent: the mail server cannot be used, see below")
        if not producer.cancelled() and producer.exception() is not None:
            raise producer.exception()  # type: ignore[misc]
        if stop.is_set():
            recorder.unsent(f"not sent: {stop.reason}; the next run sends it")
    finally:
        for task in (producer, consumer):
            if task is not None and not task.done():
                task.cancel()
        builder.close()
        ctx.ranker.close()


async def _produce(
    ctx: RunContext,
    subscribers: Sequence[Subscriber],
    queue: MailQueue,
    builder: MailBuilder,
    recorder: _Recorder,
    stop: Stop,
    *,
    build: bool,
) -> None:
    """Plan each subscriber's digest in turn and queue its mails, in order, while up to
    BUILD_AHEAD of them are being built; ends the queue with None."""
    building: deque[tuple[MailJob, SubscriberReport, asyncio.Future[BuiltMail] | None]] = deque()

    async def ship_oldest() -> None:
        job, sub_report, future = building.popleft()
        try:
            built = None if future is None else await future
        except Exception as exc:  # one subscriber's digest must not stop the others
            log.info("building the digest of %s failed", job.key[0], exc_info=True)
            sub_report.status, sub_report.detail = "failed", f"not built: {exc!r}"
            return
        data = job.data
        if built is not None:
            data, job.packed = built.wire, built.packed
        assert data is not None
        recorder.queued(job)
        mail = OutgoingMail(
            key=job.key,
            recipient=job.recipient,
            data=data,
            sender=ctx.sender,
            message_id=job.message_id,
            context=job,
        )
        await _put_unless_stopped(queue, mail, stop)

    for sub in subscribers:
        if stop.is_set():
            break
        try:
            plan = plan_subscriber(ctx, sub)
        except DigestError:
            raise  # the state cannot be read or written: stop the run
        except Exception as exc:  # one subscriber's digest must not stop the others
            log.info("planning the digest of %s failed", sub.email, exc_info=True)
            recorder.add(SubscriberReport(sub.email, "", "failed", detail=f"not built: {exc!r}"))
            continue
        for job, sub_report in recorder.apply(plan):
            if not build:
                continue
            future = None
            if job.data is None:
                assert job.content is not None and job.headers is not None
                future = builder.submit(job.content, job.headers)
            building.append((job, sub_report, future))
            while len(building) > BUILD_AHEAD or (building and _ready(building[0][2])):
                await ship_oldest()
        await asyncio.sleep(0)  # let the SMTP workers and signals in between subscribers
    while building and not stop.is_set():
        await ship_oldest()
    await _put_unless_stopped(queue, None, stop)


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


class _Recorder:
    """Writes a plan's state changes and the delivery outcomes; keeps the report's lines."""

    def __init__(
        self,
        store: Store,
        report: RunReport,
        clock: Clock,
        *,
        dry_run: bool,
        progress: Progress | None,
    ) -> None:
        self.store = store
        self.report = report
        self.clock = clock
        self.dry_run = dry_run
        self.progress = progress
        self.waiting: dict[tuple[str, str], SubscriberReport] = {}  # queued, no outcome yet

    def add(self, sub_report: SubscriberReport) -> None:
        self.report.subscribers.append(sub_report)

    def apply(self, plan: SubscriberPlan) -> list[tuple[MailJob, SubscriberReport]]:
        """Record what the plan decided without sending; return its mails with their lines."""
        if plan.record_empty:
            self.store.record_empty(
                plan.email, plan.digest_date, upto_seq=plan.upto_seq, now=self.clock()
            )
        if plan.status:
            self.add(
                SubscriberReport(
                    plan.email,
                    plan.digest_date,
                    plan.status,
                    candidates=plan.candidates,
                    detail=plan.detail,
                )
            )
        out = []
        for job in plan.jobs:
            sub_report = SubscriberReport(
                plan.email,
                job.key[1],
                "dry-run" if self.dry_run else "pending",
                papers=list(job.ranked) if plan.keep_papers else [],
                paper_count=len(job.paper_ids),
                candidates=plan.candidates if job.kind == "digest" else 0,
                detail=job.note,
                message_id=job.message_id,
            )
            self.add(sub_report)
            self.waiting[job.key] = sub_report
            out.append((job, sub_report))
        return out

    def queued(self, job: MailJob) -> None:
        """A new digest was built and goes into the queue: it is 'pending' in the send log."""
        if job.kind == "digest" and job.content is not None and not self.dry_run:
            self.store.prepare_digest(
                job.key[0],
                job.key[1],
                message_id=job.message_id,
                upto_seq=job.upto_seq,
                paper_ids=job.paper_ids,
                now=self.clock(),
            )

    def on_attempt(self, mail: OutgoingMail) -> None:
        job = mail.context
        assert isinstance(job, MailJob)
        if self.dry_run:
            return
        now = self.clock()
        if job.kind == "force":
            if job.resend_id is None:
                job.resend_id = self.store.begin_resend(
                    mail.key[0],
                    mail.key[1],
                    message_id=mail.message_id,
                    message=mail.data,
                    packed=job.packed,
                    now=now,
                )
            self.store.mark_resend(job.resend_id, status="sending", now=now)
        else:
            self.store.begin_send(
                mail.key[0],
                mail.key[1],
                message_id=mail.message_id,
                upto_seq=job.upto_seq,
                paper_ids=job.paper_ids,
                message=mail.data,
                packed=job.packed,
                now=now,
            )

    def on_outcome(self, outcome: SendOutcome) -> None:
        mail, job = outcome.mail, outcome.mail.context
        assert isinstance(job, MailJob)
        sub_report = self.waiting.pop(mail.key)
        if self.dry_run:
            sub_report.file = str(Path(outcome.detail).with_suffix(".html"))
        else:
            now = self.clock()
            if job.kind == "force":
                if job.resend_id is not None:
                    self.store.mark_resend(
                        job.resend_id,
                        status=outcome.status,
                        now=now,
                        code=outcome.code,
                        error="" if outcome.status == "sent" else outcome.detail,
                    )
            elif outcome.status == "sent":
                self.store.mark_sent(*mail.key, now=now, code=outcome.code)
            else:
                self.store.mark_unsent(
                    *mail.key,
                    status=outcome.status,
                    code=outcome.code,
                    error=outcome.detail,
                    now=now,
                    unknown=outcome.unknown,
                )
            sub_report.status = outcome.status
            # A server's "250 OK" says nothing; an outbox path, a refusal or an error does.
            if outcome.status != "sent" or outcome.detail.startswith("written to"):
                sub_report.detail = _join(sub_report.detail, outcome.detail)
        if self.progress is not None:
            self.progress(self.report, sub_report)

    def unsent(self, detail: str) -> None:
        """Those queued that got no outcome: they were never sent; the next run sends them."""
        for sub_report in self.waiting.values():
            if sub_report.status == "pending":
                sub_report.detail = _join(sub_report.detail, detail)
        self.waiting.clear()


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first and second else first or second


class PreviewWriter:
    """A dry run's "mailer": writes each digest as .eml and .html into a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def deliver_stream(
        self,
        queue: MailQueue,
        *,
        on_attempt: Callable[[OutgoingMail], None],
        on_outcome: Callable[[SendOutcome], None],
        stop: Stop | None = None,
    ) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        while (mail := await queue.get()) is not None:
            eml_path = self.folder / outbox_filename(mail)  # the name the outbox would give it
            eml_path.write_bytes(mail.data)
            eml_path.with_suffix(".html").write_text(html_part(mail.data), encoding="utf-8")
            on_attempt(mail)
            on_outcome(SendOutcome(mail, "sent", 1, detail=str(eml_path)))


def html_part(data: bytes) -> str:
    """The HTML part of a message's wire bytes ("" when it has none)."""
    message = message_from_bytes(data, policy=default_policy)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("html",))
    return part.get_content() if part is not None else ""
