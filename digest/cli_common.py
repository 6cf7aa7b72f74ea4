"""What every command of the command line shares: the config option and its loading, dates."""

from __future__ import annotations

from datetime import date

import click

from digest.config import Config, load_config, resolve_config_path

CONFIG_HELP = "Config file (default: $DIGEST_CONFIG, else ./digest.toml)."


def config_from(path: str | None) -> Config:
    """The config at `path`, else $DIGEST_CONFIG, else ./digest.toml, validated."""
    return load_config(resolve_config_path(path))


def date_option(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    """A click callback: YYYY-MM-DD as a date (None stays None)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write YYYY-MM-DD") from None
