"""One run: fetch the sources, record what is new, and send each subscriber their digest.

    fetch -> merge -> record (papers first seen now) -> per subscriber: candidates since their
    watermark -> rank -> render -> deliver -> record the outcome (the watermark moves only
    when the digest was accepted)

A dry run (and `preview`) runs the very same steps against an in-memory copy of the state and
writes the digests to files instead of mailing them, so it changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from digest.config import Config, Subscriber
from digest.deliver import Mailer, OutgoingMail, SendOutcome, make_mailer, outbox_filename
from digest.errors import EXIT_FAILED, EXIT_OK, DeliverySetupError, DigestError, UsageError
from digest.lock import async_run_lock
from digest.message import build_message, make_message_id
from digest.models import DigestContent, Paper, RankedPaper
from digest.rank import rank_papers
from digest.render import render_digest
from digest.schedule import SETTLED_STATUSES, describe_instant, due_digest, last_send_date
from digest.sources import SourceResult, Validators, fetch_all, make_client, merge_papers
from digest.store import Store, utc_now

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    digest_date: date | None = None  # default: the digest due now (digest.schedule)
    dry_run: bool = False
    only: tuple[str, ...] = ()  # subscriber emails; empty = everyone
    force: bool = False  # send again a digest already sent for that date
    now: datetime | None = None  # the clock, for tests
    catch_up: timedelta | None = None  # the daemon: a send time older than this is missed
    # The daemon: a failed source holds the digests back (retried within catch_up) instead of
    # sending without that source's papers.
    defer_on_source_failure: bool = False


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
    # | "deferred" (the daemon holds it back while a source fails)
    status: str
    papers: list[RankedPaper] = field(default_factory=list)
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
    output_dir: Path | None = None

    @property
    def exit_code(self) -> int:
        failed = (
            self.fatal is not None
            or any(s.status == "failed" for s in self.sources)
            or any(s.status in ("pending", "failed") for s in self.subscribers)
        )
        return EXIT_FAILED if failed else EXIT_OK

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for sub in self.subscribers:
            counts[sub.status] = counts.get(sub.status, 0) + 1
        parts = [f"{self.new_papers} new papers"]
        parts += [f"{n} {status}" for status, n in counts.items()]
        failed = [s.name for s in self.sources if s.status == "failed"]
        if failed:
            parts.append(f"failed sources: {', '.join(failed)}")
        return ", ".join(parts)


# --- the run ---------------------------------------------------------------------------------


def send_now(config: Config, options: RunOptions | None = None, **kwargs: Any) -> RunReport:
    """Synchronous entry point of `run_digest` (the CLI and tests call this)."""
    return asyncio.run(run_digest(config, options or RunOptions(), **kwargs))


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
    lock_held: bool = False,
    stop: asyncio.Event | None = None,
) -> RunReport:
    """Run the whole flow once. Raises DigestError only for what stops a run before it starts
    (bad usage, state file unusable, lock held); everything else is in the report.

    `lock_held`: the caller (the daemon) holds the state lock already. `stop` is accepted for
    the daemon's SIGTERM; in this branch a run always finishes its mails (lead merges the
    real stop)."""
    now = options.now or utc_now()
    subscribers = select_subscribers(config, options.only)
    report = RunReport(command=command, dry_run=options.dry_run)
    async with AsyncExitStack() as stack:
        if options.dry_run:
            store = Store.open_copy(config.digest.state)
        else:
            if not lock_held:
                await stack.enter_async_context(
                    async_run_lock(config.digest.state, timeout=lock_timeout)
                )
            store = Store.open(config.digest.state)
        stack.callback(store.close)
        if client is None:
            client = await stack.enter_async_context(make_client())
        run_id = store.start_run(command, now=now)
        try:
            await _gather_papers(
                config, store, client, report, now, backoff=fetch_backoff, retries=fetch_retries
            )
            upto_seq = store.max_seq()
            mails = []
            if options.defer_on_source_failure and any(
                s.status == "failed" for s in report.sources
            ):
                failed = ", ".join(s.name for s in report.sources if s.status == "failed")
                report.subscribers += [
                    SubscriberReport(sub.email, "", "deferred", detail=f"source failed: {failed}")
                    for sub in subscribers
                ]
                subscribers = []
            for sub in subscribers:
                try:
                    mail = _compose(config, store, sub, options, upto_seq, now, report)
                except Exception as exc:  # one subscriber's digest must not stop the others
                    log.info("composing the digest of %s failed", sub.email, exc_info=True)
                    report.subscribers.append(
                        SubscriberReport(sub.email, "", "failed", detail=f"not built: {exc!r}")
                    )
                    continue
                if mail is not None:
                    mails.append(mail)
            if options.dry_run or not deliver:
                if deliver:
                    report.output_dir = _write_previews(mails, report, output_dir)
            elif mails:
                await _deliver(config, store, mails, mailer, report)
        except BaseException as exc:
            summary = f"stopped by {type(exc).__name__}: {exc}"
            store.finish_run(run_id, exit_code=EXIT_FAILED, summary=summary, now=now)
            raise
        store.finish_run(run_id, exit_code=report.exit_code, summary=report.summary(), now=now)
    return report


def select_subscribers(config: Config, only: Sequence[str]) -> list[Subscriber]:
    if not only:
        return list(config.subscribers)
    try:
        return [config.subscriber(email) for email in only]
    except DigestError as exc:
        raise UsageError(exc.message, fix=exc.fix) from None


async def _gather_papers(
    config: Config,
    store: Store,
    client: httpx.AsyncClient,
    report: RunReport,
    now: datetime,
    *,
    backoff: float,
    retries: int,
) -> None:
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


def _compose(
    config: Config,
    store: Store,
    sub: Subscriber,
    options: RunOptions,
    upto_seq: int,
    now: datetime,
    report: RunReport,
) -> OutgoingMail | None:
    """Decide and build this subscriber's digest; record it as pending in the send log."""
    next_note = ""
    if options.digest_date is not None:
        day = options.digest_date.isoformat()
        existing = store.get_digest(sub.email, day)
    else:
        # The digest due now (digest.schedule); a settled date is only redone with --force.
        last = last_send_date(sub.tz, sub.send_at, now)
        existing = store.get_digest(sub.email, last)
        settled = {last} if existing and existing.status in SETTLED_STATUSES else set()
        due = due_digest(sub.tz, sub.send_at, now, settled, catch_up=options.catch_up)
        sent = existing is not None and existing.status == "sent"
        if due.date is None and report.command == "preview":
            # Preview shows what the subscriber gets next: the coming digest.
            last += timedelta(days=1)
            existing, sent = store.get_digest(sub.email, last), False
        elif due.date is None and not sent and not (options.force and due.missed is None):
            detail = f"not due (next: {describe_instant(due.next_at, sub.tz)})"
            if due.missed is not None:
                detail = f"{due.missed} missed by more than the catch-up window; " + detail
            elif existing is not None:
                detail = f"{last} already {existing.status}; " + detail
            report.subscribers.append(SubscriberReport(sub.email, "", "not-due", detail=detail))
            return None
        day = last.isoformat()
        next_note = f"; next: {describe_instant(due.next_at, sub.tz)}"
    if existing and existing.status == "sent" and not options.force:
        report.subscribers.append(
            SubscriberReport(
                sub.email,
                day,
                "already-sent",
                detail=f"sent at {existing.sent_at}; --force sends it again{next_note}",
                message_id=existing.message_id,
            )
        )
        return None
    candidates = store.candidates(
        sub.email,
        upto_seq=upto_seq,
        lookback_days=config.digest.lookback_days,
        now=now,
        resend_date=day if options.force and existing else None,
    )
    ranked = rank_papers(candidates, sub)
    if not ranked and not config.digest.send_empty:
        # Nothing to mail, but the candidates were considered: they are not offered again.
        store.prepare_digest(
            sub.email, day, message_id="", upto_seq=upto_seq, paper_ids=[], now=now, status="empty"
        )
        report.subscribers.append(
            SubscriberReport(sub.email, day, "nothing-new", candidates=len(candidates))
        )
        return None

    # A retried digest keeps its Message-ID, so a duplicate from a crash is recognisable.
    if existing and existing.message_id and existing.status != "sent":
        message_id = existing.message_id
    else:
        message_id = make_message_id(config.digest.from_email)
    unsubscribe_mailto = config.digest.unsubscribe_mailto or config.digest.from_email
    # "{email}" in the URL makes it per subscriber, so a one-click POST says who it was.
    unsubscribe_url = config.digest.unsubscribe_url.replace("{email}", quote(sub.email, safe=""))
    content = DigestContent(
        subscriber_email=sub.email,
        subscriber_name=sub.name,
        digest_date=date.fromisoformat(day),
        papers=ranked,
        candidates_count=len(candidates),
        unsubscribe_mailto=unsubscribe_mailto,
        unsubscribe_url=unsubscribe_url,
    )
    message = build_message(
        render_digest(content),
        from_addr=config.digest.from_addr,
        to_addr=sub.email,
        to_name=sub.name,
        message_id=message_id,
        date=now,
        unsubscribe_mailto=unsubscribe_mailto,
        unsubscribe_url=unsubscribe_url,
    )
    store.prepare_digest(
        sub.email,
        day,
        message_id=message_id,
        upto_seq=upto_seq,
        paper_ids=[r.paper.id for r in ranked],
        now=now,
    )
    report.subscribers.append(
        SubscriberReport(
            sub.email,
            day,
            "dry-run" if options.dry_run else "pending",
            papers=ranked,
            candidates=len(candidates),
            message_id=message_id,
        )
    )
    return OutgoingMail(key=(sub.email, day), recipient=sub.email, message=message)


async def _deliver(
    config: Config,
    store: Store,
    mails: list[OutgoingMail],
    mailer: Mailer | None,
    report: RunReport,
) -> None:
    by_key = {(r.email, r.digest_date): r for r in report.subscribers}

    def on_attempt(mail: OutgoingMail) -> None:
        store.mark_sending(*mail.key, now=utc_now())

    def on_outcome(outcome: SendOutcome) -> None:
        email, day = outcome.mail.key
        if outcome.status == "sent":
            store.mark_sent(email, day, now=utc_now(), code=outcome.code)
        else:
            store.mark_unsent(
                email,
                day,
                status=outcome.status,
                code=outcome.code,
                error=outcome.detail,
                now=utc_now(),
            )
        sub_report = by_key[outcome.mail.key]
        sub_report.status = outcome.status
        # A server's "250 OK" says nothing; an outbox path, a refusal or an error does.
        if outcome.status != "sent" or config.delivery.method == "outbox":
            sub_report.detail = outcome.detail

    try:
        await (mailer or make_mailer(config.delivery)).deliver(
            mails, on_attempt=on_attempt, on_outcome=on_outcome
        )
    except DeliverySetupError as exc:
        # Login or TLS refused: nothing more can be sent this run. What was not sent stays
        # pending in the send log and goes out on the next run.
        report.fatal = exc
        for sub_report in report.subscribers:
            if sub_report.status == "pending":
                sub_report.detail = "not sent: the mail server cannot be used, see below"


def _write_previews(
    mails: list[OutgoingMail], report: RunReport, output_dir: Path | None
) -> Path | None:
    if not mails:
        return output_dir
    out = output_dir or Path(tempfile.mkdtemp(prefix="digest-dry-run-"))
    out.mkdir(parents=True, exist_ok=True)
    by_key = {(r.email, r.digest_date): r for r in report.subscribers}
    for mail in mails:
        eml_path = out / outbox_filename(mail)  # the name the outbox would give it
        eml_path.write_bytes(mail.message.as_bytes())
        html_path = eml_path.with_suffix(".html")
        html_path.write_text(_html_part(mail.message), encoding="utf-8")
        by_key[mail.key].file = str(html_path)
    return out


def _html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    return part.get_content() if part is not None else ""  # type: ignore[union-attr]
