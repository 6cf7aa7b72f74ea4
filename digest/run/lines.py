"""The report's lines of a run's digests: one per digest, updated by its outcome."""

from __future__ import annotations

from pathlib import Path

from digest.deliver import SendOutcome
from digest.plan import MailJob, SubscriberPlan
from digest.run.report import Progress, RunReport, SubscriberReport


class Lines:
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
