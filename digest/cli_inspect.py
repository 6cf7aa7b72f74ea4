"""`digest preview`, `show` and `explain`: looking at digests, coming and sent, and at why a
paper scored what it did. None of them sends anything or changes the state.

A thin layer: the work is digest.run (a preview is a run in Mode.PREVIEW), digest.sent and
digest.lookup; the printing is digest.cli_report.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from digest.cli_common import CONFIG_HELP, config_from, date_option
from digest.cli_report import (
    none_new,
    plural,
    print_explanation,
    print_previewed,
    print_sent,
    print_source_problems,
    sent_as_mailed,
    write_sent,
)
from digest.errors import UsageError
from digest.run import Mode, RunOptions, RunReport, send_now
from digest.store import Store


@click.command("preview")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
@click.option("--subscriber", metavar="EMAIL", help="Only this subscriber.")
@click.option(
    "--date",
    "digest_date",
    callback=date_option,
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
    config = config_from(config_path)
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


@click.command("show")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
@click.option("--subscriber", metavar="EMAIL", help="Only this reader's digest.")
@click.option(
    "--date",
    "digest_date",
    callback=date_option,
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

    config = config_from(config_path)
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


@click.command("explain")
@click.argument("paper_id")
@click.option("--subscriber", "email", required=True, metavar="EMAIL", help="The reader.")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
def explain_command(paper_id: str, email: str, config_path: str | None) -> None:
    """Why PAPER_ID scored what it did for a reader, and where it stood against the cut.

    Any paper the state holds, or one the sources list today (fetched into a copy of the
    state). Changes nothing."""
    from digest.lookup import explain_any
    from digest.run import Deps, start_model

    config = config_from(config_path)
    # In its own process; ranking waits for it (or ranks by keywords).
    model = start_model(Deps(), semantic=config.digest.semantic)
    try:
        exp, fetched = explain_any(config, paper_id, email, model=model)
    finally:
        if model is not None:
            model.close()
    print_explanation(exp, fetched=fetched)
