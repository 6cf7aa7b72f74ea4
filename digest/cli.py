"""The command line: a thin layer over digest.run, digest.store and digest.config.

This module is the one place that turns a DigestError into a message and an exit code.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click

from digest import __version__
from digest.clock import utc_now
from digest.config import Config, check_secrets, load_config, resolve_config_path
from digest.errors import EXIT_FAILED, DigestError
from digest.progress import run_progress
from digest.run import Mode, RunOptions, RunReport, SourceReport, send_now
from digest.status import render_schedule, render_status
from digest.store import ReaderSchedule, Store

CONFIG_HELP = "Config file (default: $DIGEST_CONFIG, else ./digest.toml)."
LIST_EACH_UP_TO = 50  # subscribers: a longer list prints only the digests that need a look


class _DigestGroup(click.Group):
    """Turns every DigestError into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            _fail(ctx, f"error: {exc}", exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, BrokenPipeError):
            raise
        except Exception as exc:  # a bug: still one line, the traceback with -v
            _fail(ctx, f"internal error: {type(exc).__name__}: {exc}", EXIT_FAILED)


def _fail(ctx: click.Context, message: str, code: int) -> None:
    if ctx.obj and ctx.obj.get("verbose"):
        traceback.print_exc()
    click.echo(f"digest: {message}", err=True)
    ctx.exit(code)


@click.group(cls=_DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show details and tracebacks.")
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """paper digest: a daily email digest of the new research papers that match your interests."""
    ctx.obj = {"verbose": verbose}
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="digest: %(message)s"
    )


def _config(path: str | None) -> Config:
    return load_config(resolve_config_path(path))


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write YYYY-MM-DD") from None


@cli.command("send-now")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
@click.option(
    "--date",
    "digest_date",
    callback=_date,
    metavar="YYYY-MM-DD",
    help="The digest's date: its label and idempotency key (default: the digest due now by "
    "each subscriber's send_at in their time zone).",
)
@click.option(
    "--dry-run", is_flag=True, help="Send nothing, change no state; write the digests to files."
)
@click.option("--only", multiple=True, metavar="EMAIL", help="Only this subscriber (repeatable).")
@click.option("--force", is_flag=True, help="Send again a digest already sent for that date.")
@click.option(
    "--no-fetch",
    is_flag=True,
    help="Ask no source: send from what the state recorded (and, with nothing due, do nothing).",
)
def send_now_command(
    config_path: str | None,
    digest_date: date | None,
    dry_run: bool,
    only: tuple[str, ...],
    force: bool,
    no_fetch: bool,
) -> None:
    """Fetch the sources now and send every subscriber their digest.

    With nothing due, it still fetches, records and embeds what is new, so the next send is
    ready (unless --no-fetch)."""
    config = _config(config_path)
    _print_config_warnings(config)
    options = RunOptions(
        mode=Mode.DRY_RUN if dry_run else Mode.SEND,
        digest_date=digest_date,
        only=only,
        force=force,
        fetch=not no_fetch,
        fetch_reuse=timedelta(minutes=config.digest.fetch_reuse_minutes),
    )
    with run_progress(len(config.subscribers) if not only else len(only)) as progress:
        report = send_now(config, options, progress=progress)
    _print_report(report, config)
    sys.exit(report.exit_code)


@cli.command("fetch")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
def fetch_command(config_path: str | None) -> None:
    """Fetch the sources, record what is new and embed it (and new or changed profiles), ahead
    of the send time. Sends nothing."""
    from digest.run.ahead import fetch_now

    config = _config(config_path)
    _print_config_warnings(config)
    options = RunOptions(
        command="fetch", fetch_reuse=timedelta(minutes=config.digest.fetch_reuse_minutes)
    )
    report = fetch_now(config, options)
    _print_sources(report.sources)
    click.echo(f"new papers: {report.new_papers}")
    click.echo(f"done: {report.summary()}")
    sys.exit(report.exit_code)


@cli.command("preview")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
@click.option("--subscriber", metavar="EMAIL", help="Only this subscriber.")
@click.option("--json", "as_json", is_flag=True, help="Print the ranked papers as JSON.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each digest's HTML (and .eml) into DIR.",
)
def preview_command(
    config_path: str | None, subscriber: str | None, as_json: bool, out_dir: Path | None
) -> None:
    """Show what each subscriber would get now. Sends nothing, changes no state."""
    config = _config(config_path)
    options = RunOptions(
        mode=Mode.PREVIEW,
        command="preview",
        keep_papers=True,
        only=(subscriber,) if subscriber else (),
        output_dir=out_dir,
    )
    report = send_now(config, options)
    _print_source_problems(report)
    if as_json:
        click.echo(json.dumps(preview_json(report), indent=2, ensure_ascii=False))
    else:
        for sub in report.subscribers:
            if sub.status not in ("dry-run", "pending"):
                click.echo(f"{sub.email} ({sub.digest_date}): {sub.status} {sub.detail}".rstrip())
                continue
            click.echo(
                f"{sub.email} ({sub.digest_date}): {len(sub.papers)} of {sub.candidates} new papers"
            )
            for i, ranked in enumerate(sub.papers, 1):
                why = ", ".join(ranked.matched or [r.text for r in ranked.reasons]) or "by upvotes"
                click.echo(f"  {i:2}. [{ranked.score:.2f}] {ranked.paper.title}  ({why})")
            if sub.file:
                click.echo(f"  wrote {sub.file}")
    sys.exit(report.exit_code)


def preview_json(report: RunReport) -> dict[str, Any]:
    """The `preview --json` document (README: Commands), papers in rank order."""
    return {
        "subscribers": [
            {
                "email": sub.email,
                "digest_date": sub.digest_date,
                "papers": [
                    {
                        "id": r.paper.id,
                        "title": r.paper.title,
                        "score": round(r.score, 4),
                        "matched": list(r.matched),
                        "reasons": [reason.text for reason in r.reasons],
                        "score_parts": {k: round(v, 4) for k, v in r.score_parts.items()},
                    }
                    for r in sub.papers
                ],
            }
            for sub in report.subscribers
        ]
    }


@cli.command("explain")
@click.argument("paper_id")
@click.option("--subscriber", "email", required=True, metavar="EMAIL", help="The reader.")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
def explain_command(paper_id: str, email: str, config_path: str | None) -> None:
    """Why PAPER_ID scored what it did for a reader, and where it stood against the cut.

    Reads an in-memory copy of the state: changes nothing, fetches nothing."""
    from digest.rank import PART_SCALES, explain_paper
    from digest.run import Deps, start_model

    config = _config(config_path)
    model = start_model(Deps())  # in its own process; ranking waits for it (or keywords)
    try:
        exp = explain_paper(config, paper_id, email, model=model)
    finally:
        if model is not None:
            model.close()
    ranked = exp.paper
    click.echo(f"{ranked.paper.id}: {ranked.paper.title}")
    click.echo(f"for {exp.subscriber.email}: {exp.verdict}")
    click.echo(f"  rank {exp.position} of {exp.candidates} candidates")
    if not exp.new_for_reader:
        click.echo("  (not new for this reader: ranked among the papers first seen that day)")
    limits = f"max_papers {exp.subscriber.max_papers}, min_score {exp.subscriber.min_score:.2f}"
    last = "" if exp.cut_score is None else f"; the last paper in scored {exp.cut_score:.3f}"
    click.echo(f"  cut: {limits}{last}")
    click.echo(f"  score {ranked.score:.3f}  ({PART_SCALES['score']})")
    for name, value in ranked.score_parts.items():
        if name != "score":
            click.echo(f"    {name:<10} {value:7.3f}  {PART_SCALES.get(name, '')}")
    if not exp.model:
        click.echo("  (the embedding model is unavailable: keywords only)")
    click.echo("  why:" if ranked.reasons else "  why: nothing in the profile matched")
    for reason in ranked.reasons:
        found = f"  [{', '.join(reason.terms)}]" if reason.terms and reason.kind != "like" else ""
        click.echo(f"    - {reason.text}{found}")


@cli.command("check")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
@click.option("--connect", is_flag=True, help="Also fetch every source and log in to SMTP.")
def check_command(config_path: str | None, connect: bool) -> None:
    """Validate the config (and, with --connect, reach the sources and the mail server)."""
    config = _config(config_path)
    d = config.delivery
    where = f"smtp {d.host}:{d.port} ({d.security})" if d.method == "smtp" else f"outbox {d.outbox}"
    click.echo(f"{config.path}: OK")
    click.echo(f"  state: {config.digest.state}")
    click.echo(f"  sources: {', '.join(f'{s.name} <{s.url}>' for s in config.sources)}")
    click.echo(f"  delivery: {where}")
    click.echo(f"  subscribers: {len(config.subscribers)}")
    if config.web is not None:
        from digest.web.tokens import require_secret

        require_secret(config.web)  # a missing or short secret is an error here, not at 7:00
        click.echo(f"  web: {config.web.base_url} (listens on {config.web.listen})")
    _print_config_warnings(config)
    check_secrets(config)  # exit 2 with the fix: every send would fail
    if connect:
        from digest.checks import check_connections

        good, problems = check_connections(config)
        for line in good:
            click.echo(f"  {line}")
        for line in problems:
            click.echo(f"  {line}", err=True)
        sys.exit(EXIT_FAILED if problems else 0)


@cli.command("status")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
@click.option("--runs", default=5, show_default=True, help="How many recent runs to show.")
def status_command(config_path: str | None, runs: int) -> None:
    """Recent runs, each subscriber's last digest (failures first), next sends, the daemon."""
    config = _config(config_path)
    now = utc_now()
    lease = timedelta(seconds=config.digest.lease_seconds)
    if not config.digest.state.exists():
        click.echo(f"no state yet at {config.digest.state}: nothing has run")
        readers = [ReaderSchedule(s.email, s.timezone, s.send_at) for s in config.subscribers]
        click.echo(render_schedule(None, readers, now=now, lease=lease))
        return
    with Store.open_copy(config.digest.state) as store:
        # What the next run will see: the config's readers synced in (on this copy only).
        store.sync_config_readers(
            config.subscribers, now=now, lookback_days=config.digest.lookback_days
        )
        click.echo(render_status(store, config, now=now, runs=runs))
        left = store.unsubscribed()
        readers = [r for r in store.reader_schedules() if r.email.lower() not in left]
        click.echo(render_schedule(store, readers, now=now, lease=lease))


@cli.command("serve")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
@click.pass_context
def serve_command(ctx: click.Context, config_path: str | None) -> None:
    """The web side alone: one-click unsubscribe, feedback, view online ([web] in the config).

    Logs one line per request to stderr (never a token); runs until SIGTERM/SIGINT, exits 0."""
    from digest.web.server import serve_forever

    config = _config(config_path)
    verbose = bool(ctx.obj.get("verbose"))

    def ready(line: str) -> None:
        """Once it listens (a bad config, secret or port failed before: one line, no log)."""
        click.echo(line)
        logging.basicConfig(
            force=True,
            level=logging.DEBUG if verbose else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        if not verbose:  # uvicorn's start and stop lines; its warnings stay
            logging.getLogger("uvicorn").setLevel(logging.WARNING)

    serve_forever(config, ready=ready)


@cli.command("run")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
@click.pass_context
def run_command(ctx: click.Context, config_path: str | None) -> None:
    """The scheduler daemon: each subscriber at their send_at, in their time zone.

    Runs until SIGTERM/SIGINT (finishes the mails in flight, exits 0); SIGHUP reloads the
    config. Logs to stderr, one line per send group."""
    from digest.daemon import run_daemon

    config = _config(config_path)  # a bad config: one line and exit 2, before any logging
    logging.basicConfig(
        force=True,
        level=logging.DEBUG if ctx.obj.get("verbose") else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("apscheduler", "httpx", "aiosmtplib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sys.exit(run_daemon(config))


# --- output ----------------------------------------------------------------------------------


def _print_source_problems(report: RunReport) -> None:
    for src in report.sources:
        for warning in src.warnings:
            click.echo(f"digest: warning: {warning}", err=True)
        if src.error is not None:
            click.echo(f"digest: error: source {src.name}: {src.error}", err=True)


def _print_sources(sources: list[SourceReport]) -> None:
    for src in sources:
        for warning in src.warnings:
            click.echo(f"digest: warning: {warning}", err=True)
        if src.error is not None:
            click.echo(f"digest: error: source {src.name}: {src.error}", err=True)
    for src in sources:
        text = {
            "ok": f"{src.papers} papers",
            "not-modified": "unchanged since last fetch",
            "reused": f"{src.papers} papers, as last fetched (not asked again)",
            "failed": "FAILED",
        }[src.status]
        click.echo(f"source {src.name}: {text}")


def _print_report(report: RunReport, config: Config) -> None:
    _print_sources(report.sources)
    click.echo(f"new papers: {report.new_papers}")
    if report.embedded.papers or report.embedded.profiles or report.embedded.problem:
        click.echo(f"ready for the next send: {report.embedded.describe()}")
    if not report.subscribers:
        click.echo("no subscribers configured: add a [[subscriber]] to the config")
    # A long list shows only what needs a look; the summary line counts the rest.
    quiet = len(report.subscribers) > LIST_EACH_UP_TO
    for sub in report.subscribers:
        if quiet and sub.status not in ("pending", "failed"):
            continue
        line = f"{sub.email} {sub.digest_date}: {sub.status}"
        if sub.paper_count:
            line += f", {sub.paper_count} papers"
        if sub.detail:
            line += f" ({sub.detail})"
        click.echo(line)
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


def _print_config_warnings(config: Config) -> None:
    for warning in config.warnings:
        click.echo(f"digest: warning: {warning}", err=True)


def main() -> None:
    try:
        cli(prog_name="digest")
    except BrokenPipeError:
        # `digest preview | head -1`: the reader went away. Nothing is wrong with the run.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
