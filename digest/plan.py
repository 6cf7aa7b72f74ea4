"""Decide one subscriber's mails for a run. Reads the state; never writes it.

    plan = plan_subscriber(ctx, subscriber)

The plan says which mails to send (each with everything needed to build or repeat it) and
whether an empty day is to be recorded. The pipeline records it and sends the mails:

- A digest sent once whose outcome is unknown (sealed) is repeated byte for byte, whatever the
  date of this run; its papers are never put in another digest.
- A digest already sent for the date is not sent again, unless --force: then a new mail with the
  same papers and a new Message-ID goes out, recorded as a resend beside it.
- Otherwise the candidates (papers first seen since the subscriber's watermark or start point)
  are ranked; the top ones make a new digest with a new Message-ID. Nothing to send records an
  empty day, except when a source failed: then the day stays open, so the next run that day
  can still send it (and never a false "nothing new" mail).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from digest.config import Config, Subscriber
from digest.mailbuild import MailHeaders
from digest.message import make_message_id
from digest.models import DigestContent, DigestLinks, Paper, RankedPaper
from digest.rank import Ranker, run_papers
from digest.rank.embed import EmbeddingModel
from digest.schedule import SETTLED_STATUSES, describe_instant, due_digest, last_send_date
from digest.store import DigestRecord, Store
from digest.web.links import digest_links
from digest.web.links import unsubscribe_url as web_unsubscribe_url
from digest.web.tokens import require_secret

if TYPE_CHECKING:
    from digest.pipeline import RunOptions

log = logging.getLogger(__name__)

TRENDING = 5  # "trending today": the day's most upvoted papers a reader did not get


@dataclass
class MailJob:
    """One mail to send for a subscriber."""

    kind: Literal["digest", "force"]  # a digest (new, or repeated exactly), or a forced resend
    key: tuple[str, str]  # (subscriber email, digest date ISO)
    recipient: str
    message_id: str
    upto_seq: int
    paper_ids: list[str]
    content: DigestContent | None = None  # to build; None when `data` is given
    headers: MailHeaders | None = None
    data: bytes | None = None  # the exact bytes to repeat (a sealed digest)
    packed: bytes | None = None  # the built bytes as the send log keeps them (set once built)
    ranked: Sequence[RankedPaper] = ()
    note: str = ""
    resend_id: int | None = None  # set when a forced resend is first recorded


@dataclass
class SubscriberPlan:
    email: str
    digest_date: str
    jobs: list[MailJob] = field(default_factory=list)
    # Set when the plan itself is the outcome: "already-sent", "nothing-new", "not-due", ...
    status: str = ""
    detail: str = ""
    record_empty: bool = False
    upto_seq: int = 0
    candidates: int = 0
    keep_papers: bool = False


@dataclass
class RunContext:
    """What every subscriber's plan in a run shares; built once per run."""

    config: Config
    store: Store
    options: RunOptions
    now: datetime  # when the run started: the digest's Date header and its default date
    upto_seq: int  # the newest paper recorded before planning began
    sources_failed: bool
    trending: list[Paper]  # the run's papers by upvotes, most first
    sender: str  # the envelope MAIL FROM
    preview: bool  # `digest preview`: show the coming digest when today's is done
    ranker: Ranker  # papers indexed and embedded once, profiles compiled once
    unsubscribed: dict[str, str]  # readers who left on the web side: email -> when
    web_secret: bytes  # signs the web links (b"" when [web] is not configured)

    @classmethod
    def build(
        cls,
        config: Config,
        store: Store,
        options: RunOptions,
        *,
        now: datetime,
        fetched: Sequence[Paper],
        sources_failed: bool,
        subscribers: Sequence[Subscriber],
        preview: bool = False,
        model: EmbeddingModel | None = None,
    ) -> RunContext:
        """`model`: the embedding model the run started (rank.start_model_process); None
        ranks by keywords."""
        upvoted = [p for p in fetched if p.upvotes]
        upvoted.sort(key=lambda p: (-(p.upvotes or 0), p.id))
        return cls(
            config=config,
            store=store,
            options=options,
            now=now,
            upto_seq=store.max_seq(),
            sources_failed=sources_failed,
            trending=upvoted[: TRENDING * 4],
            sender=config.digest.from_email,
            preview=preview,
            # Index and embed the papers the run's subscribers may get, once (embeddings are
            # stored); an older candidate is prepared when it comes up.
            ranker=Ranker.for_run(
                store,
                run_papers(store, lookback_days=config.digest.lookback_days, now=now),
                subscribers=subscribers,
                model=model,
            ),
            unsubscribed=store.unsubscribed(),
            web_secret=require_secret(config.web) if config.web is not None else b"",
        )

    def rank(self, candidates: Sequence[Paper], sub: Subscriber) -> list[RankedPaper]:
        """Ranked and cut, with the reader's likes and dislikes from the web side."""
        return self.ranker.rank(candidates, sub, self.store.feedback(sub.email))


@dataclass(frozen=True)
class DueDate:
    day: str | None  # the digest date to send now; None: nothing is due
    note: str  # when nothing is due, why and when next; else when the next one is
    existing: DigestRecord | None = None  # that date's send-log row, if it has one


def due_date(ctx: RunContext, sub: Subscriber) -> DueDate:
    """--date, else the digest due now by the subscriber's send_at in their time zone (one
    pure function, digest.schedule, that send-now and the daemon share)."""
    options = ctx.options
    if options.digest_date is not None:
        day = options.digest_date.isoformat()
        return DueDate(day, "", ctx.store.get_digest(sub.email, day))
    last = last_send_date(sub.tz, sub.send_at, ctx.now)
    existing = ctx.store.get_digest(sub.email, last)
    settled = {last} if existing and existing.status in SETTLED_STATUSES else set()
    due = due_digest(sub.tz, sub.send_at, ctx.now, settled, catch_up=options.catch_up)
    sent = existing is not None and existing.status == "sent"
    next_note = f"next: {describe_instant(due.next_at, sub.tz)}"
    if due.date is None and ctx.preview:
        # Preview shows what the subscriber gets next: the coming digest.
        coming = (last + timedelta(days=1)).isoformat()
        return DueDate(coming, next_note, ctx.store.get_digest(sub.email, coming))
    if due.date is None and not sent and not (options.force and due.missed is None):
        why = f"not due ({next_note})"
        if due.missed is not None:
            why = f"{due.missed} missed by more than the catch-up window; " + why
        elif existing is not None:
            why = f"{last} already {existing.status}; " + why
        return DueDate(None, why)
    return DueDate(last.isoformat(), next_note, existing)


def plan_subscriber(ctx: RunContext, sub: Subscriber) -> SubscriberPlan:
    store, options = ctx.store, ctx.options
    due = due_date(ctx, sub)
    plan = SubscriberPlan(
        sub.email, due.day or "", upto_seq=ctx.upto_seq, keep_papers=options.keep_papers
    )
    left = ctx.unsubscribed.get(sub.email.lower())
    if left is not None:  # left on the web side: the state wins over the config
        plan.status, plan.detail = "unsubscribed", f"unsubscribed at {left}"
        return plan
    # A digest sent once with an unknown outcome is owed, due or not: repeat it exactly.
    sealed = store.sealed_digests(sub.email)
    repeats = [_repeat(ctx, sub, record) for record in sealed]
    plan.jobs += [job for job in repeats if job is not None]
    if due.day is None:
        plan.status, plan.detail = "not-due", due.note
        return plan
    day, existing = due.day, due.existing
    if existing is not None and existing.status == "sent":
        if options.force:
            plan.jobs.append(_forced(ctx, sub, day, existing.paper_ids))
        else:
            plan.status = "already-sent"
            plan.detail = f"sent at {existing.sent_at}; --force sends it again; {due.note}"
        return plan
    if existing is not None and existing.resend_due:
        return plan  # this date's digest is being repeated exactly (above)

    candidates = store.candidates(sub.email, upto_seq=ctx.upto_seq, sealed=sealed)
    plan.candidates = len(candidates)
    ranked = ctx.rank(candidates, sub)
    if not ranked:
        if ctx.sources_failed:
            # Never a false "nothing new": a failed source may hold this reader's papers.
            plan.status = "nothing-new"
            plan.detail = "a source failed, so the day stays open; the next run tries again"
            return plan
        if not ctx.config.digest.send_empty:
            # Nothing to mail, but the candidates were considered: they are not offered again.
            plan.status, plan.record_empty = "nothing-new", True
            return plan
    plan.jobs.append(_new_digest(ctx, sub, day, ranked, len(candidates)))
    return plan


def _new_digest(
    ctx: RunContext, sub: Subscriber, day: str, ranked: list[RankedPaper], candidates: int
) -> MailJob:
    return _job(ctx, sub, day, "digest", ranked, candidates)


def _forced(ctx: RunContext, sub: Subscriber, day: str, paper_ids: Sequence[str]) -> MailJob:
    """--force: the papers of the sent digest again, in a new mail with a new Message-ID."""
    papers = ctx.store.get_papers(paper_ids)
    wanted = [papers[pid] for pid in paper_ids if pid in papers]
    ranked = {r.paper.id: r for r in ctx.rank(wanted, sub)}
    # Every paper of the sent digest goes out again, in its order, with its reasons if any.
    again = [ranked.get(p.id) or RankedPaper(p, 0.0, []) for p in wanted]
    return _job(ctx, sub, day, "force", again, len(again), note="sent again (--force)")


def _job(
    ctx: RunContext,
    sub: Subscriber,
    day: str,
    kind: Literal["digest", "force"],
    ranked: list[RankedPaper],
    candidates: int,
    note: str = "",
) -> MailJob:
    """A new mail of these papers, with a new Message-ID."""
    message_id = make_message_id(ctx.config.digest.from_email)
    content, headers = _content(ctx, sub, day, ranked, candidates, message_id)
    return MailJob(
        kind=kind,
        key=(sub.email, day),
        recipient=sub.email,
        message_id=message_id,
        upto_seq=ctx.upto_seq,
        paper_ids=[r.paper.id for r in ranked],
        content=content,
        headers=headers,
        ranked=ranked,
        note=note,
    )


def _repeat(ctx: RunContext, sub: Subscriber, record: DigestRecord) -> MailJob | None:
    data = ctx.store.message_bytes(sub.email, record.digest_date)
    if data is None:
        # Written by a version that kept no bytes: it cannot be repeated exactly, so it is not
        # repeated at all (its papers stay offered: they may have been delivered).
        log.warning(
            "the digest %s of %s may have been delivered but cannot be repeated exactly",
            record.digest_date,
            sub.email,
        )
        return None
    return MailJob(
        kind="digest",
        key=(sub.email, record.digest_date),
        recipient=sub.email,
        message_id=record.message_id,
        upto_seq=record.upto_seq,
        paper_ids=list(record.paper_ids),
        data=data,
        note="repeated exactly: the last send's outcome was unknown",
    )


def _content(
    ctx: RunContext,
    sub: Subscriber,
    day: str,
    ranked: list[RankedPaper],
    candidates: int,
    message_id: str,
) -> tuple[DigestContent, MailHeaders]:
    digest = ctx.config.digest
    unsubscribe_mailto = digest.unsubscribe_mailto or digest.from_email
    # "{email}" in the URL makes it per subscriber, so a one-click POST says who it was.
    unsubscribe_url = digest.unsubscribe_url.replace("{email}", quote(sub.email, safe=""))
    links = DigestLinks()
    web = ctx.config.web
    if web is not None:  # signed links to the web side (digest.web)
        unsubscribe_url = web_unsubscribe_url(web, ctx.web_secret, sub.email)
        links = digest_links(web, ctx.web_secret, sub.email, day, [r.paper.id for r in ranked])
    chosen = {r.paper.id for r in ranked}
    content = DigestContent(
        subscriber_email=sub.email,
        subscriber_name=sub.name,
        digest_date=date.fromisoformat(day),
        papers=ranked,
        candidates_count=candidates,
        unsubscribe_mailto=unsubscribe_mailto,
        unsubscribe_url=unsubscribe_url,
        profile=sorted(sub.keywords.items(), key=lambda kv: (-kv[1], kv[0])),
        trending=[p for p in ctx.trending if p.id not in chosen][:TRENDING],
        links=links,
    )
    headers = MailHeaders(
        from_addr=digest.from_addr,
        to_addr=sub.email,
        to_name=sub.name,
        message_id=message_id,
        date=ctx.now,
        unsubscribe_mailto=unsubscribe_mailto,
        unsubscribe_url=unsubscribe_url,
        templates_dir=digest.templates,
    )
    return content, headers
