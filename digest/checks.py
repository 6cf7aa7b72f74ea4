"""`digest check`: every promise a run will rely on, checked before it is made. Changes nothing.

    checked = check_offline(config)          # no network: the state's place, the templates,
                                             # the web secret, the SMTP settings, the outbox
    checked = check_connections(config)      # --connect: each source, the mail server and
                                             # the state itself (a PostgreSQL one connected)

Each result is a list of good lines, warnings (valid but probably not meant) and problems
(each would make a run fail: one line with the fix).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

from digest.config import Config, check_secrets
from digest.deliver import SmtpMailer, one_line
from digest.errors import DigestError
from digest.models import DigestContent, RankedPaper
from digest.sources import fetch_all, make_client
from digest.sources.hf_items import papers_from_items
from digest.store import Store

# A port that speaks plain SMTP first (then STARTTLS), and the one that starts with TLS.
_PLAIN_FIRST = (25, 587, 2525)
_TLS_FIRST = (465,)


@dataclass
class Checked:
    good: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check_offline(config: Config) -> Checked:
    """What can be checked without the network."""
    checked = Checked()
    _state(config, checked)
    _templates(config, checked)
    _web(config, checked)
    _delivery(config, checked)
    return checked


# --- offline ----------------------------------------------------------------------------------


def _state(config: Config, checked: Checked) -> None:
    location = config.digest.state
    if location.is_postgres:
        checked.good.append(f"state: {location.url} (PostgreSQL; --connect connects to it)")
        env = location.password_env
        if env and not os.environ.get(env):
            checked.warnings.append(
                f"state_password_env names ${env}, which is not set: the password must come "
                "from PGPASSWORD, ~/.pgpass or a service file"
            )
        return
    path = location.path
    assert path is not None
    if path.exists():
        if not path.is_file():
            checked.problems.append(
                f"state {path} is not a file (fix: point [digest] state at a SQLite file)"
            )
        elif not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK):
            checked.problems.append(
                f"state {path}: this user cannot write it or its folder (SQLite writes files "
                "beside it) (fix: run digest as the user that owns it, e.g. `sudo -u digest "
                "digest ...`, or give that user the file and its folder)"
            )
        else:
            checked.good.append(f"state: {path} (SQLite, writable)")
        return
    place = _nearest_existing(path.parent)
    if not place.is_dir() or not os.access(place, os.W_OK | os.X_OK):
        checked.problems.append(
            f"state {path} cannot be created: {place} is not a folder this user can write "
            "(fix: create the folder for that user, or point [digest] state elsewhere)"
        )
    else:
        checked.good.append(f"state: {path} (SQLite, created on the first run)")


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _templates(config: Config, checked: Checked) -> None:
    """A sample digest (real papers, the demo's) rendered with the templates a run would use:
    a template that does not load or does not render fails here, not at 7:00."""
    from digest.render import render_digest

    folder = config.digest.templates
    which = f"{folder} over the shipped ones" if folder else "the shipped ones"
    try:
        rendered = render_digest(_sample_digest(), folder)
    except Exception as exc:  # a jinja syntax or undefined-name error, a misplaced tag, ...
        checked.problems.append(
            f"templates ({which}) do not render: {one_line(f'{type(exc).__name__}: {exc}')} "
            "(fix: correct the template it names; `digest preview --out DIR` shows the result)"
        )
        return
    if not rendered.html.strip() or not rendered.text.strip():
        part = "HTML" if not rendered.html.strip() else "text"
        checked.warnings.append(f"templates ({which}) render an empty {part} part")
    checked.good.append(f"templates: {which}; a sample digest renders")


def _sample_digest() -> DigestContent:
    data = resources.files("digest.demo").joinpath("hf-daily-papers-2026-06-12.json")
    papers, _ = papers_from_items(json.loads(data.read_bytes()), "hf-api")
    return DigestContent(
        subscriber_email="check@example.org",
        subscriber_name="Check",
        digest_date=date(2026, 6, 12),
        papers=[RankedPaper(p, 0.9 - i / 10, ["agent"]) for i, p in enumerate(papers[:3])],
        candidates_count=len(papers),
        unsubscribe_mailto="digest@example.org",
        profile=[("agent", 1.0)],
        trending=papers[3:6],
    )


def _web(config: Config, checked: Checked) -> None:
    if config.web is None:
        return
    from digest.web.tokens import require_secret

    try:
        require_secret(config.web)
    except DigestError as exc:
        checked.problems.append(str(exc))
        return
    checked.good.append(
        f"web: {config.web.base_url} (listens on {config.web.listen}; secret "
        f"${config.web.secret_env} set)"
    )


def _delivery(config: Config, checked: Checked) -> None:
    d = config.delivery
    if d.method != "smtp":
        place = _nearest_existing(d.outbox)
        if not place.is_dir() or not os.access(place, os.W_OK | os.X_OK):
            checked.problems.append(
                f"outbox {d.outbox}: {place} is not a folder this user can write "
                "(fix: create it for that user, or change [delivery] outbox)"
            )
        else:
            checked.good.append(f"delivery: outbox {d.outbox} (one .eml per digest)")
        return
    try:
        check_secrets(config)
    except DigestError as exc:
        checked.problems.append(str(exc))
    login = f"login {d.username} (password from ${d.password_env})" if d.username else "no login"
    checked.good.append(f"delivery: smtp {d.host}:{d.port} ({d.security}), {login}")
    if d.security == "tls" and d.port in _PLAIN_FIRST:
        checked.warnings.append(
            f'[delivery] security = "tls" on port {d.port}: that port usually starts in plain '
            'text, so the TLS handshake fails (fix: security = "starttls", or port = 465)'
        )
    elif d.security == "starttls" and d.port in _TLS_FIRST:
        checked.warnings.append(
            f'[delivery] security = "starttls" on port {d.port}: that port usually starts '
            'with TLS (fix: security = "tls", or port = 587)'
        )
    elif d.security == "none" and d.username and not _loopback(d.host):
        checked.warnings.append(
            f'[delivery] security = "none" with a login: the password crosses the network to '
            f'{d.host} in plain text (fix: security = "starttls" or "tls")'
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- --connect --------------------------------------------------------------------------------


def check_connections(config: Config) -> Checked:
    """Fetch every source, log in to the mail server and open the state. Sends nothing,
    records nothing (the state is opened as a copy: a PostgreSQL one in a transaction that
    is rolled back)."""
    checked = asyncio.run(_reach(config))
    try:
        with Store.open_copy(config.digest.state):
            pass
    except DigestError as exc:
        checked.problems.append(str(exc))
    else:
        checked.good.append(f"state {config.digest.state}: ok")
    return checked


async def _reach(config: Config) -> Checked:
    checked = Checked()
    async with make_client() as client:
        results = await fetch_all(config.sources, client, {}, retries=1, backoff=0)
    for result in results:
        if result.error is not None:
            checked.problems.append(f"source {result.source.name}: {result.error}")
        else:
            count = len(result.papers)
            papers = f"{count} paper{'' if count == 1 else 's'}"
            checked.good.append(f"source {result.source.name}: ok, {papers}")
    delivery = config.delivery
    if delivery.method == "smtp":
        where = f"smtp {delivery.host}:{delivery.port}"
        try:
            await SmtpMailer(delivery).check()
        except DigestError as exc:
            checked.problems.append(f"{where}: {exc}")
        except Exception as exc:  # refused, timed out, dropped: the transport's own words
            checked.problems.append(
                f"{where}: {one_line(f'{type(exc).__name__}: {exc}')} "
                "(fix: check host, port and security in [delivery])"
            )
        else:
            checked.good.append(f"{where}: ok")
    return checked
