"""What a run reports: one line per source and per digest, built from outcomes, and its exit
code. The report is read by the CLI, the daemon's log and the tests; the run never decides
from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digest.errors import EXIT_FAILED, EXIT_OK, DigestError


@dataclass
class SourceReport:
    name: str
    status: str  # "ok" | "not-modified" | "failed"
    papers: int = 0
    error: DigestError | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """Why it failed, without the source's name the message starts with ("" if it did
        not fail)."""
        if self.error is None:
            return ""
        message = self.error.message
        return message.removeprefix(f"{self.name}: ")


@dataclass
class Embedded:
    """What a run embedded ahead of a send (digest.run.prepare)."""

    papers: int = 0
    profiles: int = 0
    problem: str = ""  # the model failed: what is left is embedded by the send itself

    def describe(self) -> str:
        text = f"embedded {self.papers} papers, {self.profiles} profiles"
        return f"{text} ({self.problem})" if self.problem else text


@dataclass
class SubscriberReport:
    email: str
    digest_date: str
    # "sent" | "pending" | "failed" | "already-sent" | "nothing-new" | "dry-run" | "not-due"
    # | "unsubscribed" | "deferred" (the daemon holds it back while a source fails)
    # | "skipped" (send-now: nothing to send while a source failed; the day stays open)
    status: str
    papers: list[Any] = field(default_factory=list)  # RankedPaper, only in a preview
    paper_count: int = 0
    candidates: int = 0
    detail: str = ""
    message_id: str = ""
    file: str = ""  # the .html a dry run wrote

    def add_detail(self, more: str) -> None:
        self.detail = f"{self.detail}; {more}" if self.detail and more else self.detail or more


@dataclass
class RunReport:
    command: str
    dry_run: bool
    sources: list[SourceReport] = field(default_factory=list)
    subscribers: list[SubscriberReport] = field(default_factory=list)
    new_papers: int = 0
    embedded: Embedded = field(default_factory=Embedded)  # ahead, when nothing was due
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
        parts = [f"{self.new_papers} new paper{'' if self.new_papers == 1 else 's'}"]
        parts += [f"{n} {status}" for status, n in self.counts().items()]
        # Each failed source with its reason: the summary is what `digest status` shows.
        failed = [
            f"{s.name} ({s.reason or 'failed'})" for s in self.sources if s.status == "failed"
        ]
        if failed:
            parts.append(f"failed source{'' if len(failed) == 1 else 's'}: {'; '.join(failed)}")
        if self.stopped:
            parts.append(f"stopped: {self.stopped}")
        return ", ".join(parts)


# Called after each digest's outcome (the CLI's progress bar).
Progress = Callable[[RunReport, SubscriberReport], None]
