"""What the commands say on the terminal: a run's line per source and per digest, then its
summary line; a preview's digests as planned, and the digests already sent as mailed.

An error goes to stderr right after the stdout line it concerns; `digest.cli.main` makes
stdout line-buffered, so the two stay in order when both go to one pipe (cron, journald).
`verbose` (`digest -v`) adds each source's settings, the cause of a failure with its
traceback when there is one, every digest's line however long the list, and each digest's
candidates.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click

from digest.config import Config
from digest.run import RunReport, SourceReport, SubscriberReport
from digest.sent import SentDigest, sent_digests
from digest.store import Store

if TYPE_CHECKING:
    from digest.rank.explain import Explanation

LIST_EACH_UP_TO = 50  # digests: a longer list prints only those that need a look (not with -v)


def plural(count: int, noun: str) -> str:
    """ "1 paper", "2 papers"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def print_sources(
    sources: Sequence[SourceReport], config: Config, *, verbose: bool = False
) -> None:
    """One line per source (stdout), its warnings and error (stderr) right after it."""
    settings = {s.name: s for s in config.sources}
    for src in sources:
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
    return f"{papers}, as last fetched (not asked again)" if src.status == "reused" else papers


def _print_source_error(src: SourceReport, *, verbose: bool) -> None:
    assert src.error is not None
    fix = f" (fix: {src.error.fix})" if src.error.fix else ""
    click.echo(f"digest: error: source {src.name} failed: {src.reason}{fix}", err=True)
    cause = src.error.__cause__
    if verbose and cause is not None:
        click.echo("".join(traceback.format_exception(cause)).rstrip(), err=True)


def print_report(report: RunReport, config: Config, *, verbose: bool = False) -> None:
    """A send-now's (or the demo's) whole report."""
    print_sources(report.sources, config, verbose=verbose)
    click.echo(f"new papers: {report.new_papers}")
    if report.embedded.papers or report.embedded.profiles or report.embedded.problem:
        click.echo(f"ready for the next send: {report.embedded.describe()}")
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


# --- preview and show: digests as planned, and as mailed -------------------------------------


def print_source_problems(report: RunReport) -> None:
    for src in report.sources:
        for warning in src.warnings:
            click.echo(f"digest: warning: {warning}", err=True)
        if src.error is not None:
            fix = f" (fix: {src.error.fix})" if src.error.fix else ""
            click.echo(f"digest: error: source {src.name} failed: {src.reason}{fix}", err=True)


def print_previewed(sub: SubscriberReport) -> None:
    of = plural(sub.candidates, "new paper")
    click.echo(f"{sub.email} ({sub.digest_date}): {len(sub.papers)} of {of}")
    for i, ranked in enumerate(sub.papers, 1):
        why = ", ".join(ranked.matched or [r.text for r in ranked.reasons]) or "by upvotes"
        click.echo(f"  {i:2}. [{ranked.score:.2f}] {ranked.paper.title}  ({why})")
    if sub.file:
        click.echo(f"  wrote {sub.file}")


def none_new(sub: SubscriberReport) -> str:
    if not sub.candidates:
        return "no new papers since their last digest"
    return f"none of the {plural(sub.candidates, 'new paper')} made the cut"


def sent_as_mailed(
    config: Config, report: RunReport, out_dir: Path | None
) -> dict[tuple[str, str], SentDigest]:
    """The digests the preview found sent already, as they were mailed (written to out_dir
    as .eml and .html when given)."""
    found: dict[tuple[str, str], SentDigest] = {}
    with Store.open_copy(config.digest.state) as store:
        for sub in report.subscribers:
            if sub.status == "already-sent":
                day = date.fromisoformat(sub.digest_date)
                for sent in sent_digests(store, email=sub.email, day=day):
                    found[sub.email.lower(), sub.digest_date] = sent
    if out_dir is not None:
        for sent in found.values():
            write_sent(sent, out_dir)
    return found


def print_sent(sent: SentDigest) -> None:
    record = sent.record
    click.echo(
        f"{record.subscriber} ({record.digest_date}): sent at {record.sent_at}, "
        f"{plural(len(record.paper_ids), 'paper')}, as mailed "
        f"(digest show --subscriber {record.subscriber} --date {record.digest_date})"
    )
    for i, title in enumerate(sent.titles, 1):
        click.echo(f"  {i:2}. {title}")


def write_sent(sent: SentDigest, out_dir: Path) -> Path | None:
    """FILE.eml (the bytes as mailed) and FILE.html; None when the bytes are no longer kept."""
    if sent.data is None:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{sent.record.digest_date}_{sent.record.subscriber.replace('@', '_at_')}"
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in stem)
    (out_dir / f"{stem}.eml").write_bytes(sent.data)
    page = out_dir / f"{stem}.html"
    page.write_text(sent.html, encoding="utf-8")
    return page


def print_explanation(exp: Explanation, *, fetched: bool) -> None:
    """`digest explain`: the verdict, the rank and the cut, the score and each part with its
    scale, the reasons."""
    from digest.rank import PART_SCALES

    ranked = exp.paper
    click.echo(f"{ranked.paper.id}: {ranked.paper.title}")
    if fetched:
        click.echo("  (not in the state yet: fetched from the sources now, ranked as a run would)")
    click.echo(f"for {exp.subscriber.email}: {exp.verdict}")
    click.echo(f"  rank {exp.position} of {plural(exp.candidates, 'candidate')}")
    if not exp.new_for_reader:
        click.echo("  (not new for this reader: ranked among the papers first seen that day)")
    limits = f"max_papers {exp.subscriber.max_papers}, min_score {exp.subscriber.min_score:.2f}"
    last = "" if exp.cut_score is None else f"; the last paper in scored {exp.cut_score:.3f}"
    click.echo(f"  cut: {limits}{last}")
    click.echo(f"  score {ranked.score:.3f}: {PART_SCALES['score']}")
    parts = [(n, v) for n, v in ranked.score_parts.items() if n != "score"]
    if parts:
        click.echo("  its parts:")
    for name, value in parts:
        click.echo(f"    {name:<10} {value:7.3f}  {PART_SCALES.get(name, '')}")
    if not exp.model:
        click.echo("  (the embedding model is unavailable: keywords only)")
    click.echo("  why:" if ranked.reasons else "  why: nothing in the profile matched")
    for reason in ranked.reasons:
        found = f"  [{', '.join(reason.terms)}]" if reason.terms and reason.kind != "like" else ""
        click.echo(f"    - {reason.text}{found}")
