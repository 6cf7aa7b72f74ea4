"""The command line: a thin layer over digest.run, digest.store and digest.config.

This module is the one place that turns a DigestError into a message and an exit code.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import sys
import traceback
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click

from digest import __version__
from digest.cli_common import CONFIG_HELP, config_from, date_option
from digest.cli_inspect import explain_command, preview_command, show_command
from digest.cli_report import plural, print_report, print_sources
from digest.cli_state import state, subscribers
from digest.clock import utc_now
from digest.config import Config, load_config
from digest.errors import EXIT_FAILED, EXIT_USAGE, DigestError
from digest.progress import run_progress
from digest.run import Mode, RunOptions, send_now
from digest.status import render_schedule, render_status
from digest.store import ReaderSchedule, Store


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
    callback=date_option,
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
    config = config_from(config_path)
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

    config = config_from(config_path)
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

    config = config_from(config_path)
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
    config = config_from(config_path)
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

    config = config_from(config_path)
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

    config = config_from(config_path)  # a bad config: one line and exit 2, before any logging
    logging.basicConfig(
        force=True,
        level=logging.DEBUG if ctx.obj.get("verbose") else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("apscheduler", "httpx", "aiosmtplib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sys.exit(run_daemon(config))


for command in (preview_command, show_command, explain_command, subscribers):
    cli.add_command(command)
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
