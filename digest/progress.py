"""What a person sees while `send-now` works through a long list.

On a terminal: a progress bar (rich) with sent, failed, remaining and the rate. Off a terminal
(cron, systemd, a pipe): one log line per LOG_EVERY mails; the CLI prints the summary line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from digest.run.report import Progress as OnOutcome
from digest.run.report import RunReport, SubscriberReport

LOG_EVERY = 1000  # mails, off a terminal
BAR_FROM = 20  # subscribers: fewer finish before a bar would be worth drawing
_DONE = ("sent", "failed", "pending", "dry-run")


class _Tally:
    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0
        self.failed = 0
        self.started = time.monotonic()

    def add(self, sub: SubscriberReport) -> None:
        if sub.status in ("sent", "dry-run"):
            self.sent += 1
        elif sub.status in _DONE:
            self.failed += 1

    @property
    def done(self) -> int:
        return self.sent + self.failed

    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-6)


@contextmanager
def run_progress(total: int) -> Iterator[OnOutcome | None]:
    """A `progress` callback for run_digest (None when there is nothing worth showing)."""
    if total < BAR_FROM:
        yield None
        return
    tally = _Tally(total)
    if not sys.stderr.isatty():

        def log_line(report: RunReport, sub: SubscriberReport) -> None:
            tally.add(sub)
            if tally.done % LOG_EVERY == 0:
                click.echo(
                    f"digest: {tally.done} mails done: {tally.sent} sent, {tally.failed} not sent, "
                    f"{tally.rate():.0f}/s",
                    err=True,
                )

        yield log_line
        return
    bar = Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[sent]} sent · {task.fields[failed]} not sent"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        transient=True,
    )
    task = bar.add_task("send", total=total, sent=0, failed=0, rate="")

    def update(report: RunReport, sub: SubscriberReport) -> None:
        tally.add(sub)
        bar.update(
            task,
            completed=tally.done,
            sent=tally.sent,
            failed=tally.failed,
            rate=f"{tally.rate():.0f}/s",
        )

    with bar:
        yield update
