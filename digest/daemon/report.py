"""What the daemon says in its log: one line per send group, each missed digest once."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from digest.daemon.plan import group_key, group_label
from digest.errors import EXIT_OK
from digest.run import RunReport
from digest.run.ahead import AheadReport
from digest.schedule import Due, describe_instant
from digest.store import ReaderSchedule

log = logging.getLogger("digest.daemon")


def log_missed(reader: ReaderSchedule, due: Due, now: datetime, catch_up_hours: float) -> None:
    assert due.missed is not None
    log.warning(
        "missed: %s digest %s (due %s, %s ago, beyond catch_up_hours = %g); "
        "its papers go into the next digest, due %s",
        reader.email,
        due.missed,
        describe_instant(due.last_at, reader.tz),
        _hours(now - due.last_at),
        catch_up_hours,
        describe_instant(due.next_at, reader.tz),
    )


def log_group(
    reason: str,
    due: list[tuple[ReaderSchedule, date]],
    report: RunReport,
    now: datetime,
    seconds: float,
) -> None:
    groups = sorted({group_label(group_key(s)) for s, _ in due})
    counts: dict[str, int] = {}
    for sub_report in report.subscribers:
        counts[sub_report.status] = counts.get(sub_report.status, 0) + 1
    outcome = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    failed_sources = [s.name for s in report.sources if s.status == "failed"]
    seen = f"{report.new_papers} paper{'' if report.new_papers == 1 else 's'} first seen"
    line = (
        f"send group {' + '.join(groups)} ({reason}) at {now:%Y-%m-%d %H:%M} UTC: "
        f"{len(due)} due: {outcome}; {seen}; {seconds:.1f} s"
    )
    if failed_sources:
        line += f"; failed sources: {', '.join(failed_sources)} (retrying within the window)"
    if report.fatal is not None:
        line += f"; {report.fatal}"
    problem = failed_sources or report.fatal or report.exit_code != EXIT_OK
    log.log(logging.WARNING if problem else logging.INFO, "%s", line)
    for sub_report in report.subscribers:
        if sub_report.status in ("pending", "failed") and sub_report.detail:
            log.warning("  %s: %s (%s)", sub_report.email, sub_report.status, sub_report.detail)


def log_fetch(reason: str, report: AheadReport, now: datetime, seconds: float) -> None:
    """One line per fetch-ahead that found or did something (quiet otherwise)."""
    asked = [s for s in report.sources if s.status != "reused"]
    line = (
        f"fetch ahead ({reason}) at {now:%Y-%m-%d %H:%M} UTC: "
        f"{len(asked)} of {len(report.sources)} sources asked; {report.summary()}; {seconds:.1f} s"
    )
    busy = report.new_papers or report.embedded.papers or report.embedded.profiles
    if report.failed or report.embedded.problem:
        log.warning("%s (retrying at the next fetch)", line)
    else:
        log.log(logging.INFO if busy else logging.DEBUG, "%s", line)


def _hours(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}"
