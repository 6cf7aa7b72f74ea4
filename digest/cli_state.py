"""`digest subscribers ...` and `digest state ...`: the readers and the state, by hand.

    digest subscribers list              every reader the state knows: how they came, active?
                                         (and sign-ups waiting for confirmation, blocked addresses)
    digest subscribers import FILE       CSV or JSON lines, validated as [[subscriber]] tables
    digest subscribers export [--csv]    every active reader, as import reads them back
    digest subscribers remove EMAIL      no more digests for them; their history is kept
    digest subscribers block EMAIL       no mail of any kind, no sign-up; unblock undoes it
    digest state copy SRC DST            a whole state into a new, empty one

A thin layer: the work is digest.reader_files, digest.store and digest.store.copy.
"""

from __future__ import annotations

from pathlib import Path

import click

from digest.clock import utc_now
from digest.config import Config, load_config, resolve_config_path
from digest.errors import UsageError
from digest.location import BadLocation, StateLocation
from digest.reader_files import export_csv, export_jsonl, read_readers
from digest.store import Store

CONFIG_HELP = "Config file (default: $DIGEST_CONFIG, else ./digest.toml)."


def _open(config: Config) -> Store:
    """The state, with the config's readers synced in (the config wins for the readers it
    lists), as a run would see it."""
    store = Store.open(config.digest.state)
    store.sync_config_readers(
        config.subscribers, now=utc_now(), lookback_days=config.digest.lookback_days
    )
    return store


@click.group("subscribers")
def subscribers() -> None:
    """The readers kept in the state: list, import, export, remove, block, unblock."""


@subscribers.command("list")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
def list_command(config_path: str | None) -> None:
    """Every reader the state knows: how they came (config, signup, import), whether they are
    confirmed and get digests; then sign-ups waiting for confirmation and blocked addresses."""
    config = load_config(resolve_config_path(config_path))
    now = utc_now()
    with _open(config) as store:
        listing = store.reader_listing()
        waiting = store.pending_signups(now=now)
        blocked = store.blocked_addresses()
    for r in listing:
        status = "unsubscribed" if r.unsubscribed_at else "active" if r.active else "removed"
        when = f"{r.send_at} {r.timezone}" + ("" if r.schedule == "daily" else f", {r.schedule}")
        click.echo(f"{r.email}\t{r.origin}\tconfirmed\t{status}\t{when}\t{r.name}")
    known = {r.email for r in listing}
    for signup in waiting:
        if signup.address not in known:  # a known reader's new sign-up changes nothing yet
            click.echo(f"{signup.address}\tsignup\tunconfirmed\tuntil {signup.expires_at}")
    for address, since in blocked:
        click.echo(f"{address}\t-\tblocked\tsince {since}")
    active = sum(1 for r in listing if r.active and not r.unsubscribed_at)
    click.echo(
        f"{len(listing)} reader{'s' if len(listing) != 1 else ''}, {active} active, "
        f"{len({s.address for s in waiting} - known)} waiting for confirmation, "
        f"{len(blocked)} blocked",
        err=True,
    )


@subscribers.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
def import_command(file: Path, config_path: str | None) -> None:
    """Add or update the readers of FILE (CSV with a header row, or JSON lines with the keys of
    a [[subscriber]] table). Every line is validated first; one bad line imports nothing."""
    config = load_config(resolve_config_path(config_path))
    imported = read_readers(file, config)
    with _open(config) as store:
        blocked = [r.email for r in imported.readers if store.is_blocked(r.email)]
        changed = store.save_readers(
            [r for r in imported.readers if r.email not in blocked],
            origin="import",
            now=utc_now(),
            lookback_days=config.digest.lookback_days,
        )
    for email in imported.in_config:
        click.echo(f"skipped {email}: listed in the config, which wins", err=True)
    for email in blocked:
        click.echo(f"skipped {email}: blocked (`digest subscribers unblock` lets it in)", err=True)
    n = len(imported.readers) - len(blocked)
    click.echo(
        f"imported {n} reader{'s' if n != 1 else ''} "
        f"({changed} new or changed, {n - changed} as they were)"
    )


@subscribers.command("export")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of JSON lines.")
def export_command(config_path: str | None, as_csv: bool) -> None:
    """Every active reader, as `import` reads them back."""
    config = load_config(resolve_config_path(config_path))
    with _open(config) as store:
        readers = store.active_readers()
    for line in (export_csv if as_csv else export_jsonl)(readers):
        click.echo(line)


@subscribers.command("remove")
@click.argument("email")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
def remove_command(email: str, config_path: str | None) -> None:
    """No more digests for EMAIL; what they were sent stays recorded."""
    config = load_config(resolve_config_path(config_path))
    if any(s.email.lower() == email.lower() for s in config.subscribers):
        raise UsageError(
            f"{email} is listed in the config, which wins",
            fix=f"remove their [[subscriber]] table from {config.path.name}",
        )
    with _open(config) as store:
        removed = store.deactivate_readers([email], now=utc_now())
    if not removed:
        raise UsageError(f"no active reader {email!r}", fix="`digest subscribers list` shows them")
    click.echo(f"removed {email}: no more digests; their history is kept")


@subscribers.command("block")
@click.argument("email")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
def block_command(email: str, config_path: str | None) -> None:
    """No mail of any kind to EMAIL (digests, confirmation mails) and no sign-up from it; its
    reader, if any, is removed (history kept)."""
    config = load_config(resolve_config_path(config_path))
    if any(s.email.lower() == email.lower() for s in config.subscribers):
        raise UsageError(
            f"{email} is listed in the config, which wins",
            fix=f"remove their [[subscriber]] table from {config.path.name} first",
        )
    now = utc_now()
    with _open(config) as store:
        newly = store.block_address(email, now=now)
        removed = store.deactivate_readers([email], now=now)
    what = "blocked" if newly else "was blocked already"
    click.echo(f"{email} {what}" + (": no more digests; their history is kept" if removed else ""))


@subscribers.command("unblock")
@click.argument("email")
@click.option("-c", "--config", "config_path", metavar="FILE", help=CONFIG_HELP)
def unblock_command(email: str, config_path: str | None) -> None:
    """EMAIL may sign up again (a reader it had stays removed until they do)."""
    config = load_config(resolve_config_path(config_path))
    with _open(config) as store:
        if not store.unblock_address(email):
            raise UsageError(
                f"{email!r} is not blocked", fix="`digest subscribers list` shows who is"
            )
    click.echo(f"unblocked {email}: it may sign up again")


@click.group("state")
def state() -> None:
    """The state itself."""


@state.command("copy")
@click.argument("source")
@click.argument("target")
def copy_command(source: str, target: str) -> None:
    """Copy the whole state SOURCE into TARGET, which must be new and empty: a SQLite file or
    a postgresql:// URL each. Stop the senders first."""
    from digest.store.copy import copy_state

    here = Path.cwd()
    try:
        src, dst = StateLocation.parse(source, here), StateLocation.parse(target, here)
    except BadLocation as exc:
        raise UsageError(str(exc), fix=exc.fix) from None
    if src.path is not None and not src.path.exists():
        raise UsageError(f"no state at {src.path}", fix="name an existing state file")
    with Store.open(src, create=False) as from_store, Store.open(dst) as to_store:
        copied = copy_state(
            from_store, to_store, progress=lambda t, n: click.echo(f"  {t}: {n:,} rows", err=True)
        )
    click.echo(f"copied {sum(copied.values()):,} rows from {src} into {dst}")
