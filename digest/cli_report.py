"""What a run says on the terminal: a line per source and per digest, then the summary line.

An error goes to stderr right after the stdout line it concerns; `digest.cli.main` makes
stdout line-buffered, so the two stay in order when both go to one pipe (cron, journald).
`verbose` (`digest -v`) adds each source's settings, the cause of a failure with its
traceback when there is one, every digest's line however long the list, and each digest's
candidates.
"""

from __future__ import annotations

import traceback

import click

from digest.config import Config
from digest.run import RunReport, SourceReport, SubscriberReport

LIST_EACH_UP_TO = 50  # digests: a longer list prints only those that need a look (not with -v)


def plural(count: int, noun: str) -> str:
    """ "1 paper", "2 papers"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def print_sources(report: RunReport, config: Config, *, verbose: bool = False) -> None:
    """One line per source (stdout), its warnings and error (stderr) right after it."""
    settings = {s.name: s for s in config.sources}
    for src in report.sources:
        click.echo(f"source {src.name}: {_source_text(src)}")
        if verbose and src.name in settings:
            where = settings[src.name]
            click.echo(f"  {where.type} {where.url} (timeout {where.timeout:g} s)")
        for warning in src.warnings:
            click.echo(f"digest: warning: {warning}", err=True)
        if src.error is not None:
            _print_source_error(src, verbose=verbose)


def _source_text(src: SourceReport) -> str:
    if src.status == "failed":
        return "FAILED"
    if src.status == "not-modified":
        return "unchanged since last fetch"
    papers = plural(src.papers, "paper")
    return f"{papers}, as fetched moments ago by another run" if src.status == "reused" else papers


def _print_source_error(src: SourceReport, *, verbose: bool) -> None:
    assert src.error is not None
    fix = f" (fix: {src.error.fix})" if src.error.fix else ""
    click.echo(f"digest: error: source {src.name} failed: {src.reason}{fix}", err=True)
    cause = src.error.__cause__
    if verbose and cause is not None:
        click.echo("".join(traceback.format_exception(cause)).rstrip(), err=True)


def print_report(report: RunReport, config: Config, *, verbose: bool = False) -> None:
    """A send-now's (or the demo's) whole report."""
    print_sources(report, config, verbose=verbose)
    click.echo(f"new papers: {report.new_papers}")
    if not report.subscribers:
        click.echo("no subscribers: add a [[subscriber]] to the config")
    # A long list shows only what needs a look; the summary line counts the rest.
    quiet = len(report.subscribers) > LIST_EACH_UP_TO and not verbose
    for sub in report.subscribers:
        if quiet and sub.status not in ("pending", "failed", "skipped"):
            continue
        click.echo(digest_line(sub, verbose=verbose))
    if report.dry_run:
        click.echo("dry run: nothing was sent and no state was changed")
        for sub in report.subscribers:
            if sub.file:
                click.echo(f"  open {sub.file}")
    elif config.delivery.method == "outbox" and any(s.status == "sent" for s in report.subscribers):
        click.echo(f"digests written to {config.delivery.outbox}")
    if report.fatal is not None:
        click.echo(f"digest: error: {report.fatal}", err=True)
    if report.stopped:
        click.echo(f"digest: {report.stopped}; the rest goes out on the next run", err=True)
    click.echo(f"done: {report.summary()}")


def digest_line(sub: SubscriberReport, *, verbose: bool = False) -> str:
    """ "ada@example.org 2026-06-12: sent, 10 papers (written to ...)"."""
    who = f"{sub.email} {sub.digest_date}" if sub.digest_date else sub.email
    line = f"{who}: {sub.status}"
    if sub.paper_count:
        line += f", {plural(sub.paper_count, 'paper')}"
        if verbose and sub.candidates:
            line += f" of {plural(sub.candidates, 'candidate')}"
    if sub.detail:
        line += f" ({sub.detail})"
    return line
