"""The command line: a thin layer over digest.run, digest.store and digest.config.

This module is the one place that turns a DigestError into a message and an exit code.
"""

from __future__ import annotations

import functools
import io
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
from digest.cli_report import (
    none_new,
    plural,
    print_explanation,
    print_previewed,
    print_report,
    print_sent,
    print_source_problems,
    print_sources,
    sent_as_mailed,
    write_sent,
)
from digest.cli_state import state, subscribers
from digest.clock import utc_now
from digest.config import Config, load_config, resolve_config_path
from digest.errors import EXIT_FAILED, EXIT_USAGE, DigestError, UsageError
from digest.progress import run_progress
from digest.run import Mode, RunOptions, RunReport, send_now
from digest.status import render_schedule, render_status
from digest.store import ReaderSchedule, Store

CONFIG_HELP = "Config file (default: $DIGEST_CONFIG, else ./digest.toml)."


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


def _verbose(ctx: click.Context) -> bool:
    return bool(ctx.obj and ctx.obj.get("verbose"))


def _config(path: str | None) -> Config:
    return load_config(resolve_config_path(path))


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write YYYY-MM-DD") from None


@cli.command("demo")
@click.option(
    "--dir",
    "folder",
    default="digest-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder to write the demo into (a former demo there is started afresh).",
)
@click.pass_context
def demo_command(ctx: click.Context, folder: Path) -> None:
    """A working digest now, with no network and no mail server: three readers over one
    captured day of Hugging Face Daily Papers, their digests written as .eml and .html."""
    from digest.demo import DAY, run_demo

    demo = run_demo(folder)
    config = _shown(demo.config)
    click.echo(f"demo: 3 readers, one captured day of Hugging Face Daily Papers ({DAY}), {config}")
    print_sources(demo.report.sources, load_config(demo.config), verbose=_verbose(ctx))
    pages = {page.name.split("_", 1)[1].removesuffix(".html"): page for page in demo.pages}
    for sub in demo.report.subscribers:
        page = pages.get(sub.email.replace("@", "_at_"))
        where = f"  {_shown(page)}" if page is not None else f" ({sub.detail})"
        click.echo(f"  {sub.email}: {sub.status}, {plural(sub.paper_count, 'paper')}{where}")
    if demo.pages:
        click.echo(
            "open an .html above in a browser (the .eml beside it in a mail program); for "
            'today\'s real papers, set url = "https://huggingface.co/api/daily_papers" in '
            f"{config}, then run: digest send-now -c {config}"
        )
    sys.exit(demo.report.exit_code if demo.pages else EXIT_FAILED)


def _shown(path: Path) -> str:
    """A path as short as it can be said from here."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


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
@click.pass_context
def send_now_command(
    ctx: click.Context,
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
    print_report(report, config, verbose=_verbose(ctx))
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
    print_sources(report.sources, config)
    click.echo(f"new papers: {report.new_papers}")
    if report.embedded.papers or report.embedded.profiles or report.embedded.problem:
        click.echo(f"ready for the next send: {report.embedded.describe()}")
    click.echo(f"done: {report.summary()}")
    sys.exit(report.exit_code)


@cli.command("preview")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
@click.option("--subscriber", metavar="EMAIL", help="Only this subscriber.")
@click.option(
    "--date",
    "digest_date",
    callback=_date,
    metavar="YYYY-MM-DD",
    help="That date's digest: as it was mailed if it was sent, else what it would hold now.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the ranked papers as JSON.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each digest's HTML (and .eml) into DIR.",
)
def preview_command(
    config_path: str | None,
    subscriber: str | None,
    digest_date: date | None,
    as_json: bool,
    out_dir: Path | None,
) -> None:
    """Show what each subscriber would get now (or a digest already sent, as it was mailed).
    Sends nothing, changes no state."""
    config = _config(config_path)
    options = RunOptions(
        mode=Mode.PREVIEW,
        command="preview",
        keep_papers=True,
        digest_date=digest_date,
        only=(subscriber,) if subscriber else (),
        output_dir=out_dir,
    )
    report = send_now(config, options)
    print_source_problems(report)
    if as_json:
        click.echo(json.dumps(preview_json(report), indent=2, ensure_ascii=False))
        sys.exit(report.exit_code)
    sent = {}
    if any(s.status == "already-sent" for s in report.subscribers):
        sent = sent_as_mailed(config, report, out_dir)
    for sub in report.subscribers:
        if (sub.email.lower(), sub.digest_date) in sent:
            print_sent(sent[sub.email.lower(), sub.digest_date])
        elif sub.status in ("dry-run", "pending"):
            print_previewed(sub)
        elif sub.status == "nothing-new":
            click.echo(f"{sub.email} ({sub.digest_date}): nothing to send yet: {none_new(sub)}")
        else:
            click.echo(f"{sub.email} ({sub.digest_date}): {sub.status} {sub.detail}".rstrip())
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


@cli.command("show")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
@click.option("--subscriber", metavar="EMAIL", help="Only this reader's digest.")
@click.option(
    "--date",
    "digest_date",
    callback=_date,
    metavar="YYYY-MM-DD",
    help="The digest of that date (default: each reader's latest sent one).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each digest as mailed (.eml) and its HTML into DIR.",
)
def show_command(
    config_path: str | None, subscriber: str | None, digest_date: date | None, out_dir: Path | None
) -> None:
    """A digest already sent, exactly as it was mailed (its text part; --out: .eml and .html).
    Changes nothing."""
    from digest.sent import sent_digests

    config = _config(config_path)
    if not config.digest.state.exists():
        raise UsageError(
            f"no state yet at {config.digest.state}: nothing has been sent",
            fix="run `digest send-now` first (or `digest demo`)",
        )
    with Store.open_copy(config.digest.state) as store:
        found = sent_digests(store, email=subscriber, day=digest_date)
    if not found:
        whom = f" to {subscriber}" if subscriber else ""
        when = f" for {digest_date}" if digest_date else ""
        raise UsageError(
            f"no digest was sent{whom}{when}",
            fix="`digest status` lists each reader's last digest",
        )
    for sent in found:
        record = sent.record
        kept = "" if sent.data is not None else "; its mail is no longer kept (30 days)"
        click.echo(
            f"{record.subscriber} {record.digest_date}: sent at {record.sent_at}, "
            f"{plural(len(record.paper_ids), 'paper')}, Message-ID {record.message_id}{kept}"
        )
        if out_dir is not None:
            page = write_sent(sent, out_dir)
            if page is not None:
                click.echo(f"  wrote {page} (and the .eml beside it)")
        elif len(found) == 1 and sent.data is not None:
            click.echo(f"Subject: {sent.subject}\n")
            click.echo(sent.text.rstrip())
        elif len(found) == 1:
            for i, title in enumerate(sent.titles, 1):
                click.echo(f"  {i:2}. {title}")
    if len(found) > 1 and out_dir is None:
        click.echo("(--subscriber EMAIL prints one of them; --out DIR writes them all)")


@cli.command("explain")
@click.argument("paper_id")
@click.option("--subscriber", "email", required=True, metavar="EMAIL", help="The reader.")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
def explain_command(paper_id: str, email: str, config_path: str | None) -> None:
    """Why PAPER_ID scored what it did for a reader, and where it stood against the cut.

    Any paper the state holds, or one the sources list today (fetched into a copy of the
    state). Changes nothing."""
    from digest.lookup import explain_any
    from digest.run import Deps, start_model

    config = _config(config_path)
    # In its own process; ranking waits for it (or ranks by keywords).
    model = start_model(Deps(), semantic=config.digest.semantic)
    try:
        exp, fetched = explain_any(config, paper_id, email, model=model)
    finally:
        if model is not None:
            model.close()
    print_explanation(exp, fetched=fetched)


@cli.command("check")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
@click.option(
    "--connect", is_flag=True, help="Also fetch every source, log in to SMTP, open the state."
)
def check_command(config_path: str | None, connect: bool) -> None:
    """Validate the config and what a run relies on: the state's place, the templates, the
    web secret, the SMTP settings (and, with --connect, reach the sources, the mail server
    and a PostgreSQL state). Exit 2: a run would fail; 1: something did not answer."""
    from digest.checks import check_connections, check_offline

    config = _config(config_path)
    checked = check_offline(config)
    click.echo(f"{config.path}: {'OK' if not checked.problems else 'PROBLEMS'}")
    click.echo(f"  sources: {', '.join(f'{s.name} <{s.url}>' for s in config.sources)}")
    click.echo(f"  subscribers in the config: {len(config.subscribers)}")
    for line in checked.good:
        click.echo(f"  {line}")
    _print_config_warnings(config)
    for warning in checked.warnings:
        click.echo(f"digest: warning: {warning}", err=True)
    for problem in checked.problems:
        click.echo(f"digest: error: {problem}", err=True)
    if checked.problems:
        sys.exit(EXIT_USAGE)
    if connect:
        reached = check_connections(config)
        for line in reached.good:
            click.echo(f"  {line}")
        for line in reached.problems:
            click.echo(f"  {line}", err=True)
        sys.exit(EXIT_FAILED if reached.problems else 0)


@cli.command("status")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
@click.option("--runs", default=5, show_default=True, help="How many recent runs to show.")
def status_command(config_path: str | None, runs: int) -> None:
    """Recent runs, each subscriber's last digest (failures first), next sends, the daemon."""
    config = _config(config_path)
    now = utc_now()
    schedule = functools.partial(
        render_schedule,
        now=now,
        lease=timedelta(seconds=config.digest.lease_seconds),
        catch_up_hours=config.digest.catch_up_hours,
    )
    if not config.digest.state.exists():
        click.echo(f"no state yet at {config.digest.state}: nothing has run")
        readers = [ReaderSchedule(s.email, s.timezone, s.send_at) for s in config.subscribers]
        click.echo(schedule(None, readers))
        return
    with Store.open_copy(config.digest.state) as store:
        # What the next run will see: the config's readers synced in (on this copy only).
        store.sync_config_readers(
            config.subscribers, now=now, lookback_days=config.digest.lookback_days
        )
        click.echo(render_status(store, config, now=now, runs=runs))
        left = store.unsubscribed()
        readers = [r for r in store.reader_schedules() if r.email.lower() not in left]
        click.echo(schedule(store, readers))


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


cli.add_command(subscribers)
cli.add_command(state)


# --- output ----------------------------------------------------------------------------------


def _print_config_warnings(config: Config) -> None:
    for warning in config.warnings:
        click.echo(f"digest: warning: {warning}", err=True)


def main() -> None:
    # Line by line, as stderr is: errors stay next to the lines they concern in one pipe.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        cli(prog_name="digest")
    except BrokenPipeError:
        # `digest preview | head -1`: the reader went away. Nothing is wrong with the run.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
