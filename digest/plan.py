"""Decide one subscriber's mails for a run. Reads the state; writes nothing itself (the send
log is written by the run's Recorder from the plan; ranking may store the embeddings it made).

    plan = plan_subscriber(ctx, subscriber, due)

The plan says which mails to send (each with everything needed to build or repeat it) and
whether an empty day is to be recorded:

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
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import quote

from digest.config import Config, Subscriber
from digest.mailbuild import MailHeaders
from digest.message import make_message_id
from digest.models import DigestContent, DigestLinks, Paper, RankedPaper
from digest.rank import Ranker
from digest.schedule import Due, describe_instant
from digest.store import DigestRecord, DigestStatus, LoggedMail, Store

if TYPE_CHECKING:  # (digest.run imports this module: no cycle at run time)
    from digest.run.options import RunOptions

log = logging.getLogger(__name__)

TRENDING = 5  # "trending today": the day's most upvoted papers a reader was never sent
TRENDING_POOL = 50  # the most upvoted papers of the day they are chosen from


class Links(Protocol):
    """The signed links a mail carries to the web side (digest.web.links makes them)."""

    def unsubscribe_url(self, email: str) -> str: ...

    def digest_links(self, email: str, day: str, paper_ids: Sequence[str]) -> DigestLinks: ...


@dataclass
class MailJob:
    """One mail to send for a subscriber: what the send log records, and what builds it."""

    log: LoggedMail
    recipient: str
    content: DigestContent | None = None  # to build; None when `data` is given
    headers: MailHeaders | None = None
    data: bytes | None = None  # the exact bytes to repeat (a sealed digest)
    ranked: Sequence[RankedPaper] = ()
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.log.key


@dataclass
class SubscriberPlan:
    email: str
    digest_date: str
    jobs: list[MailJob] = field(default_factory=list)
    # Set when the plan itself is the outcome: "already-sent", "nothing-new", "not-due",
    # "skipped" (nothing to send while a source failed: the day stays open), ...
    status: str = ""
    detail: str = ""
    record_empty: bool = False
    upto_seq: int = 0
    candidates: int = 0


@dataclass
class Trending:
    """ "Trending today": the papers the sources list now, most upvoted first, and each
    reader's first TRENDING of them that they were never sent (nor hold in a sealed digest,
    nor get in this one). What the readers were sent is looked up a claim batch at a time,
    so it costs one query per batch, not one per reader, and memory stays flat."""

    papers: list[Paper]  # at most TRENDING_POOL
    _sent: dict[str, set[str]] = field(default_factory=dict)  # of the last batch looked up

    @classmethod
    def of(cls, listed: Sequence[Paper]) -> Trending:
        upvoted = sorted((p for p in listed if p.upvotes), key=lambda p: (-(p.upvotes or 0), p.id))
        return cls(upvoted[:TRENDING_POOL])

    def look_up(self, store: Store, emails: Sequence[str]) -> None:
        """Read which of the papers these readers were sent (replacing the last batch's)."""
        self._sent = {email.lower(): set() for email in emails}
        if self.papers and emails:
            for sub, pid in store.sent_among(emails, [p.id for p in self.papers]):
                self._sent.setdefault(sub, set()).add(pid)

    def pick(self, store: Store, email: str, chosen: set[str]) -> list[Paper]:
        """This reader's trending papers: none they were sent or get now (`chosen`)."""
        key = email.lower()
        if key not in self._sent:  # planned outside a looked-up batch
            self.look_up(store, [email])
        sent = self._sent[key]
        return [p for p in self.papers if p.id not in sent and p.id not in chosen][:TRENDING]


@dataclass
class RunContext:
    """What every subscriber's plan in a run shares; built once per run."""

    config: Config
    store: Store
    options: RunOptions
    now: datetime  # when the run started: the digest's Date header and its default date
    upto_seq: int  # the newest paper recorded before planning began
    sources_failed: bool
    trending: Trending  # the day's most upvoted papers, and who was sent which
    ranker: Ranker  # papers indexed and embedded once, profiles compiled once
    unsubscribed: dict[str, str]  # readers who left on the web side: email -> when
    links: Links | None  # None: [web] is not configured, mails carry no web links

    def rank(self, candidates: Sequence[Paper], sub: Subscriber) -> list[RankedPaper]:
        """Ranked and cut, with the reader's likes and dislikes from the web side."""
        return self.ranker.rank(candidates, sub, self.store.feedback(sub.email))


@dataclass(frozen=True)
class DueDate:
    day: str | None  # the digest date to send now; None: nothing is due
    note: str  # when nothing is due, why and when next; else when the next one is
    existing: DigestRecord | None = None  # that date's send-log row, if it has one


def due_date(ctx: RunContext, sub: Subscriber, due: Due) -> DueDate:
    """--date, else the digest due now (`due`: digest.store.due_now for this subscriber, the
    one rule send-now and the daemon share)."""
    options, store = ctx.options, ctx.store
    if options.digest_date is not None:
        day = options.digest_date.isoformat()
        return DueDate(day, "", store.get_digest(sub.email, day))
    existing = store.get_digest(sub.email, due.last)
    sent = existing is not None and existing.status == DigestStatus.SENT
    next_note = f"next: {describe_instant(due.next_at, sub.tz)}"
    if sub.cadence.weekly:
        next_note += f" ({replace(sub.cadence, paused_until=None).describe()})"
    if due.date is None and options.shows_coming:
        # Preview shows what the subscriber gets next: the coming digest.
        coming = (due.next_date or due.last + timedelta(days=1)).isoformat()
        return DueDate(coming, next_note, store.get_digest(sub.email, coming))
    if due.paused_until is not None:  # paused: nothing, not even --force (--date names one)
        return DueDate(None, f"paused until {due.paused_until}; not due ({next_note})")
    if due.date is None and not sent and not (options.force and due.settled):
        why = f"not due ({next_note})"
        if due.missed is not None:
            why = f"{due.missed} missed by more than the catch-up window; " + why
        elif existing is not None:
            why = f"{due.last} already {existing.status}; " + why
        return DueDate(None, why)
    return DueDate(due.last.isoformat(), next_note, existing)


def plan_subscriber(ctx: RunContext, sub: Subscriber, due: Due) -> SubscriberPlan:
    store, options = ctx.store, ctx.options
    when = due_date(ctx, sub, due)
    plan = SubscriberPlan(sub.email, when.day or "", upto_seq=ctx.upto_seq)
    left = ctx.unsubscribed.get(sub.email.lower())
    if left is not None:  # left on the web side: the state wins over the config
        plan.status, plan.detail = "unsubscribed", f"left at {left}"
        return plan
    # A digest sent once with an unknown outcome is owed, due or not: repeat it exactly.
    sealed = store.sealed_digests(sub.email)
    repeats = [_repeat(ctx, sub, record) for record in sealed]
    plan.jobs += [job for job in repeats if job is not None]
    if when.day is None:
        plan.status, plan.detail = "not-due", when.note
        return plan
    day, existing = when.day, when.existing
    if existing is not None and existing.status == DigestStatus.SENT:
        if options.force:
            plan.jobs.append(_forced(ctx, sub, day, existing.paper_ids))
        else:
            plan.status = "already-sent"
            plan.detail = f"sent at {existing.sent_at}; --force sends it again; {when.note}"
        return plan
    if existing is not None and existing.resend_due:
        return plan  # this date's digest is being repeated exactly (above)

    candidates = store.candidates(sub.email, upto_seq=ctx.upto_seq, sealed=sealed)
    plan.candidates = len(candidates)
    ranked = ctx.rank(candidates, sub)
    held = {pid for record in sealed for pid in record.paper_ids}  # may have been delivered
    if not ranked:
        if ctx.sources_failed:
            # Never a false "nothing new": a failed source may hold this reader's papers.
            plan.status = "skipped"
            plan.detail = "a source failed: the day stays open and the next run sends it"
            return plan
        if not ctx.config.digest.send_empty:
            # Nothing to mail, but the candidates were considered: they are not offered again.
            plan.status, plan.record_empty = "nothing-new", True
            return plan
    plan.jobs.append(_job(ctx, sub, day, "digest", ranked, len(candidates), held=held))
    return plan


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
    held: set[str] | None = None,
) -> MailJob:
    """A new mail of these papers, with a new Message-ID. `held`: papers of this reader's
    sealed digests (trending names none of them)."""
    message_id = make_message_id(ctx.config.digest.from_email)
    content, headers = _content(ctx, sub, day, ranked, candidates, message_id, held or set())
    return MailJob(
        log=LoggedMail(
            kind=kind,
            subscriber=sub.email,
            digest_date=day,
            message_id=message_id,
            upto_seq=ctx.upto_seq,
            paper_ids=[r.paper.id for r in ranked],
            new=True,
        ),
        recipient=sub.email,
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
        log=LoggedMail(
            kind="digest",
            subscriber=sub.email,
            digest_date=record.digest_date,
            message_id=record.message_id,
            upto_seq=record.upto_seq,
            paper_ids=list(record.paper_ids),
            new=False,
        ),
        recipient=sub.email,
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
    held: set[str],
) -> tuple[DigestContent, MailHeaders]:
    digest = ctx.config.digest
    unsubscribe_mailto = digest.unsubscribe_mailto or digest.from_email
    # "{email}" in the URL makes it per subscriber, so a one-click POST says who it was.
    unsubscribe_url = digest.unsubscribe_url.replace("{email}", quote(sub.email, safe=""))
    links = DigestLinks()
    if ctx.links is not None:  # signed links to the web side
        unsubscribe_url = ctx.links.unsubscribe_url(sub.email)
        links = ctx.links.digest_links(sub.email, day, [r.paper.id for r in ranked])
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
        trending=ctx.trending.pick(ctx.store, sub.email, chosen | held),
        links=links,
        weekly=sub.cadence.weekly,
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
