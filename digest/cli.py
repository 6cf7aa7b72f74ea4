"""The command line: a thin layer over digest.pipeline, digest.store and digest.config.

This module is the one place that turns a DigestError into a message and an exit code.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import date
from pathlib import Path
from typing import Any

import click

from digest import __version__
from digest.config import Config, load_config, resolve_config_path
from digest.errors import EXIT_FAILED, DigestError
from digest.pipeline import RunOptions, RunReport, send_now
from digest.status import render_schedule, render_status
from digest.store import Store, utc_now

CONFIG_HELP = "Config file (default: $DIGEST_CONFIG, else ./digest.toml)."


class _DigestGroup(click.Group):
    """Turns every DigestError into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            _fail(ctx, f"error: {exc}", exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
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
    help="The digest's date: its label and idempotency key (default: today, subscriber's zone).",
)
@click.option(
    "--dry-run", is_flag=True, help="Send nothing, change no state; write the digests to files."
)
@click.option("--only", multiple=True, metavar="EMAIL", help="Only this subscriber (repeatable).")
@click.option("--force", is_flag=True, help="Send again a digest already sent for that date.")
def send_now_command(
    config_path: str | None,
    digest_date: date | None,
    dry_run: bool,
    only: tuple[str, ...],
    force: bool,
) -> None:
    """Fetch the sources now and send every subscriber their digest."""
    config = _config(config_path)
    options = RunOptions(digest_date=digest_date, dry_run=dry_run, only=only, force=force)
    report = send_now(config, options)
    _print_report(report, config)
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
    options = RunOptions(dry_run=True, only=(subscriber,) if subscriber else ())
    report = send_now(
        config, options, command="preview", deliver=out_dir is not None, output_dir=out_dir
    )
    _print_source_problems(report)
    if as_json:
        click.echo(json.dumps(preview_json(report), indent=2, ensure_ascii=False))
    else:
        for sub in report.subscribers:
            click.echo(
                f"{sub.email} ({sub.digest_date}): {len(sub.papers)} of {sub.candidates} new papers"
            )
            for i, ranked in enumerate(sub.papers, 1):
                why = ", ".join(ranked.matched) or "by upvotes"
                click.echo(f"  {i:2}. [{ranked.score:.2f}] {ranked.paper.title}  ({why})")
            if sub.file:
                click.echo(f"  wrote {sub.file}")
    sys.exit(report.exit_code)


def preview_json(report: RunReport) -> dict[str, Any]:
    """The `preview --json` document of DESIGN.md, papers in rank order."""
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
                    }
                    for r in sub.papers
                ],
            }
            for sub in report.subscribers
        ]
    }


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
    if d.method == "smtp" and d.username and not d.password():
        click.echo(f"  warning: ${d.password_env} is not set; SMTP login will fail", err=True)
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
    if not config.digest.state.exists():
        click.echo(f"no state yet at {config.digest.state}: nothing has run")
        click.echo(render_schedule(None, config, now=utc_now()))
        return
    with Store.open_copy(config.digest.state) as store:
        click.echo(render_status(store, config, runs=runs))
        click.echo(render_schedule(store, config, now=utc_now()))


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


def _print_report(report: RunReport, config: Config) -> None:
    _print_source_problems(report)
    for src in report.sources:
        text = {
            "ok": f"{src.papers} papers",
            "not-modified": "unchanged since last fetch",
            "failed": "FAILED",
        }[src.status]
        click.echo(f"source {src.name}: {text}")
    click.echo(f"new papers: {report.new_papers}")
    if not report.subscribers:
        click.echo("no subscribers configured: add a [[subscriber]] to the config")
    for sub in report.subscribers:
        line = f"{sub.email} {sub.digest_date}: {sub.status}"
        if sub.papers:
            line += f", {len(sub.papers)} papers"
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
    click.echo(f"done: {report.summary()}")


def main() -> None:
    cli(prog_name="digest")


if __name__ == "__main__":
    main()
