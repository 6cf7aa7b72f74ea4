"""One run, left to right: open the state -> gather (fetch, record) -> the run's context
(ranker, trending, links) -> stream (plan, build, deliver, record) -> the report.

    report = send_now(config, RunOptions(...), Deps(...))    # the CLI and tests
    report = await run_digest(config, options, deps, stop=stop)   # the daemon

A dry run and a preview run the very same steps against an in-memory copy of the state and
write the digests to files instead of mailing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from digest.config import Config, Subscriber, WebConfig, check_secrets
from digest.deliver import Mailer, Stop, make_mailer
from digest.errors import EXIT_FAILED, DigestError, StateError, UsageError
from digest.heap import run_heap, settle
from digest.mailbuild import MailBuilder
from digest.models import DigestLinks
from digest.plan import RunContext, Trending
from digest.rank import Ranker, run_papers
from digest.rank.embed import EmbeddingModel, ModelUnavailable
from digest.rank.embed_process import start_model_process
from digest.rank.ranker import BACKGROUND_PAPERS
from digest.run.claims import Claims, new_worker_id, register
from digest.run.gather import Gathered, gather_papers, will_fetch
from digest.run.model import run_model, start_soon
from digest.run.options import SHIPPED_MODEL, Deps, Mode, RunOptions
from digest.run.prepare import embed_ahead
from digest.run.preview import PreviewWriter
from digest.run.report import Progress, RunReport, SubscriberReport
from digest.run.stream import stream_digests
from digest.schedule import Due
from digest.store import Recorder, Store, due_now
from digest.web import links as web_links
from digest.web.tokens import require_secret

log = logging.getLogger(__name__)

WEEK_DAYS = 7  # the papers a weekly digest ranks are mostly this recent


def send_now(
    config: Config,
    options: RunOptions | None = None,
    deps: Deps | None = None,
    *,
    progress: Progress | None = None,
) -> RunReport:
    """Synchronous entry point of `run_digest` (the CLI and tests call this).

    SIGTERM and SIGINT stop it cleanly: no new SMTP transaction starts, the ones in flight
    finish and are recorded, and the rest stays pending for the next run.
    """

    async def main() -> RunReport:
        stop = Stop.new()
        with _stop_on_signals(stop):
            return await run_digest(
                config, options or RunOptions(), deps or Deps(), stop=stop, progress=progress
            )

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


async def run_digest(
    config: Config,
    options: RunOptions,
    deps: Deps,
    *,
    stop: Stop | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """Run the whole flow once. Raises DigestError only for what stops a run before it starts
    (bad usage, secrets missing, state unusable or replaced) or a state that cannot be written
    mid-run; everything else is in the report."""
    started = deps.clock()
    if not options.dry_run:
        check_secrets(config)
    stop = stop or Stop.new()
    report = RunReport(command=options.command, dry_run=options.dry_run)
    async with AsyncExitStack() as stack:
        stack.enter_context(run_heap())
        store = open_state(stack, config, options, deps)
        subscribers = _readers(config, store, options, started)
        claims = _claims(stack, config, store, options, deps)
        run_id = store.start_run(options.command, now=started, worker=claims.worker)
        # The render workers start now: they load while the sources are fetched and ranked.
        builder = MailBuilder.for_run(len(subscribers) if options.builds_mail else 0)
        stack.callback(builder.close)
        builder.start(config.digest.templates)
        # Started when first needed: a state prepared ahead needs no model at all.
        model = run_model(config, deps)
        if model is not None:
            stack.callback(model.close)
        try:
            if options.dry_run:
                store.seal_interrupted(now=started)  # what the claims would seal, on the copy
            store.prune_messages(now=started)
            if _cold(config, store, options, started):
                start_soon(model)  # loads while the sources are fetched
            gathered = await gather_papers(
                config,
                store,
                deps.http,  # None: a client of its own, opened only if a source is asked
                started,
                deps.clock,
                worker=claims.worker or "dry-run",
                backoff=options.fetch_backoff,
                retries=options.fetch_retries,
                reuse=options.fetch_reuse,
                fetch=options.fetch,
            )
            report.sources, report.new_papers = gathered.sources, gathered.new
            due = _due(config, store, options, subscribers, gathered, started, report)
            idle = _idle(options, due)
            if idle and options.mode is Mode.SEND and options.fetch:
                # Ready for the next send: what this fetch recorded, and the profiles.
                report.embedded = await embed_ahead(config, deps, model, subscribers, started, stop)
            ctx = _context(config, store, options, started, gathered, due, model, idle=idle)
            stack.callback(ctx.ranker.close)
            sink = _sink(config, options, deps, report)
            settle()  # the day's papers, their index and the profiles live until the run ends
            recorder = Recorder(store, deps.clock, dry_run=options.dry_run, worker=claims.worker)
            await stream_digests(
                ctx,
                due,
                sink,
                builder,
                recorder,
                claims,
                report,
                stop,
                progress,
                wait_for_others=options.wait_for_others,
            )
        except BaseException as exc:
            summary = f"stopped by {type(exc).__name__}: {exc}"
            with contextlib.suppress(DigestError):
                store.finish_run(run_id, exit_code=EXIT_FAILED, summary=summary, now=deps.clock())
            raise
        report.stopped = stop.reason
        summary = report.summary()
        store.finish_run(run_id, exit_code=report.exit_code, summary=summary, now=deps.clock())
        if claims.store is not None:
            store.finish_worker(claims.worker, now=deps.clock(), last_run=summary)
    return report


def open_state(stack: AsyncExitStack, config: Config, options: RunOptions, deps: Deps) -> Store:
    """The state for this run: a copy for a dry run, else the state itself. A daemon names
    the state it started with (`options.state_id`): a state that is gone or was replaced
    stops the run before it sends anything."""
    opener = deps.state or Store
    if options.dry_run:
        store = opener.open_copy(config.digest.state)
        stack.callback(store.close)
        return store
    store = opener.open(config.digest.state, create=not options.state_id)
    stack.callback(store.close)
    if options.state_id and store.state_id() != options.state_id:
        raise StateError(
            f"the state {config.digest.state} is not the one this daemon started with (it was "
            "replaced); nothing was sent, so no digest goes out twice",
            fix="restart the daemon to use this state on purpose",
        )
    return store


def _readers(config: Config, store: Store, options: RunOptions, now: datetime) -> list[Subscriber]:
    """The run's readers, from the state: the config's synced in first (the config wins for
    the readers it lists), then everyone active, or those --only names."""
    if options.sync_readers:
        store.sync_config_readers(
            config.subscribers,
            now=now,
            lookback_days=config.digest.lookback_days,
            page_edits=config.web is not None and config.web.profile_edit,
        )
    if not options.only:
        return store.active_readers()
    readers = store.active_readers(options.only)
    missing = sorted({e.lower() for e in options.only} - {r.email.lower() for r in readers})
    if missing:
        raise UsageError(
            f"no subscriber {missing[0]!r} in the state",
            fix="name a subscriber `digest subscribers list` shows as active",
        )
    return readers


def _claims(
    stack: AsyncExitStack, config: Config, store: Store, options: RunOptions, deps: Deps
) -> Claims:
    """This run's claims on readers, kept alive by a heartbeat until the run ends; none for a
    dry run (it works on a copy). A send-now is a worker of its own; the daemon's runs are
    the daemon's."""
    if options.dry_run:
        return Claims.none(deps.clock)
    worker = options.worker_id or new_worker_id()
    if not options.worker_id:
        register(store, worker, options.command, deps.clock)
        stack.callback(lambda: store.stop_worker(worker, now=deps.clock()))
    lease = timedelta(seconds=config.digest.lease_seconds)
    claims = Claims(store, worker, deps.clock, lease)
    done = asyncio.Event()
    beating = asyncio.ensure_future(claims.beat_until(done))
    stack.callback(beating.cancel)
    stack.callback(done.set)
    return claims


def start_model(deps: Deps, *, semantic: bool = True) -> EmbeddingModel | None:
    """The run's embedding model, starting to load now; None ranks by keywords (with one
    warning when the model was wanted but cannot start). `semantic`: the config's
    [digest] semantic (false: keywords only, the model never loaded)."""
    factory = start_model_process if deps.model is SHIPPED_MODEL else deps.model
    if factory is None or not semantic:
        return None
    try:
        return factory()
    except ModelUnavailable as exc:
        log.warning("ranking by keywords only: the embedding model is unavailable (%s)", exc)
        return None


def _cold(config: Config, store: Store, options: RunOptions, now: datetime) -> bool:
    """A new state that is about to fetch: its first papers are all to embed, so the model
    starts loading at once. Otherwise it starts when the ranking finds a vector missing."""
    fresh = store.max_seq() == 0
    return fresh and will_fetch(config, store, now, reuse=options.fetch_reuse, fetch=options.fetch)


def _idle(options: RunOptions, due: Sequence[tuple[Subscriber, Due]]) -> bool:
    """No reader gets a new digest from this run (a sealed one may still be repeated): it
    ranks nothing, and a send-now that may fetch prepares the next send instead."""
    return (
        options.mode is not Mode.PREVIEW
        and options.digest_date is None
        and not options.force
        and all(d.date is None for _, d in due)
    )


def _due(
    config: Config,
    store: Store,
    options: RunOptions,
    subscribers: Sequence[Subscriber],
    gathered: Gathered,
    now: datetime,
    report: RunReport,
) -> list[tuple[Subscriber, Due]]:
    """Each subscriber with what the schedule says of them now (their start point fixed the
    first time they are seen). The daemon holds everyone back while a source fails."""
    if options.defer_on_source_failure and gathered.failed:
        detail = f"source failed: {', '.join(gathered.failed)}"
        report.subscribers += [
            SubscriberReport(sub.email, "", "deferred", detail=detail) for sub in subscribers
        ]
        return []
    dues = due_now(store, subscribers, now, catch_up=options.catch_up)
    return list(zip(subscribers, dues, strict=True))


def _context(
    config: Config,
    store: Store,
    options: RunOptions,
    now: datetime,
    gathered: Gathered,
    due: Sequence[tuple[Subscriber, Due]],
    model: EmbeddingModel | None,
    *,
    idle: bool,
) -> RunContext:
    # Index and embed the papers the run's subscribers may get, once (embeddings are stored);
    # an older candidate is prepared when it comes up. A run that ranks nothing indexes nothing.
    days = config.digest.lookback_days
    if any(d.date is not None and sub.cadence.weekly for sub, d in due):
        days = max(days, WEEK_DAYS)  # a weekly digest ranks the week's papers: all at once
    papers = [] if idle else run_papers(store, lookback_days=days, now=now)
    ranker = Ranker.for_run(
        store,
        papers,
        subscribers=[] if idle else [sub for sub, _ in due],
        model=None if idle else model,
        background=0 if idle else BACKGROUND_PAPERS,
        models=store,
    )
    return RunContext(
        config=config,
        store=store,
        options=options,
        now=now,
        upto_seq=store.max_seq(),
        sources_failed=bool(gathered.failed),
        trending=Trending.of(gathered.papers),
        ranker=ranker,
        unsubscribed=store.unsubscribed(),
        links=_signed_links(config),
    )


def _sink(config: Config, options: RunOptions, deps: Deps, report: RunReport) -> Mailer | None:
    """Where the built mails go: the mailer; a folder for a dry run; nowhere for a preview
    without --out (it only plans)."""
    if options.dry_run:
        if not options.writes_files:
            return None
        report.output_dir = options.output_dir or Path(tempfile.mkdtemp(prefix="digest-dry-run-"))
        return PreviewWriter(report.output_dir)
    return deps.mailer or make_mailer(config.delivery)


def _signed_links(config: Config) -> _SignedLinks | None:
    if config.web is None:
        return None
    readers = frozenset(s.email.lower() for s in config.subscribers)
    return _SignedLinks(config.web, require_secret(config.web), readers)


@dataclass(frozen=True)
class _SignedLinks:
    """digest.plan.Links over the web side's signed links."""

    web: WebConfig
    secret: bytes
    config_readers: frozenset[str]  # lowercased: they get a profile link if profile_edit

    def unsubscribe_url(self, email: str) -> str:
        return web_links.unsubscribe_url(self.web, self.secret, email)

    def digest_links(self, email: str, day: str, paper_ids: Sequence[str]) -> DigestLinks:
        profile = self.web.profile_edit or email.lower() not in self.config_readers
        return web_links.digest_links(self.web, self.secret, email, day, paper_ids, profile=profile)
