"""Load the TOML config and validate it into typed, frozen objects.

Every problem is a ConfigError naming the file, the place (table and entry) and the key, so the
user can go straight to it. Unknown keys are errors: a typo must not silently mean "default".
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.errors import ConfigError
from digest.ids import normalise_arxiv_id

DEFAULT_CONFIG_NAME = "digest.toml"
DEFAULT_HF_PAGE = "https://huggingface.co/papers"
DEFAULT_HF_API = "https://huggingface.co/api/daily_papers"
SOURCE_TYPES = ("hf-papers", "hf-api", "feed")
DELIVERY_METHODS = ("smtp", "outbox")
SECURITY_MODES = ("starttls", "tls", "none")
MAX_PAPERS = 500  # per digest: beyond this a value is a typo
# Below this fused score a paper is not a plausible match: no digest is padded with it.
DEFAULT_MIN_SCORE = 0.3

# ASCII addresses only: a non-ASCII one would need SMTPUTF8, which most servers do not offer.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9-]+)+$"
)
_SEND_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class DigestSettings:
    state: Path
    from_addr: str  # as written: "Paper Digest <digest@example.org>"
    timezone: str = "UTC"
    send_at: time = time(7, 0)
    max_papers: int = 15
    lookback_days: int = 3
    send_empty: bool = False
    unsubscribe_mailto: str = ""  # "" means: the From address
    unsubscribe_url: str = ""
    upvote_boost: float = 0.0  # score added per log2(1 + upvotes); 0 = upvotes only break ties
    templates: Path | None = None  # a folder whose email templates override the shipped ones
    # Papers whose fused score (0..1, see digest.rank.fuse) is below this are left out.
    min_score: float = DEFAULT_MIN_SCORE
    catch_up_hours: float = 12.0  # the daemon sends a missed digest this late at most

    @property
    def from_email(self) -> str:
        return parseaddr(self.from_addr)[1]


@dataclass(frozen=True)
class SourceConfig:
    type: str
    url: str
    name: str
    timeout: float = 30.0


@dataclass(frozen=True)
class DeliveryConfig:
    method: str = "outbox"
    host: str = ""
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password_env: str = ""
    outbox: Path = Path("outbox")
    connections: int = 2
    max_per_minute: int | None = None
    timeout: float = 30.0
    retries: int = 3  # attempts per digest within one run for transient failures
    messages_per_connection: int = 100  # re-open a connection after this many messages
    # No new SMTP transaction starts this long after delivery began; the rest stay pending.
    deadline_minutes: float = 120.0

    def password(self) -> str | None:
        """The SMTP password, read from the environment variable named by password_env."""
        if not self.password_env:
            return None
        return os.environ.get(self.password_env)

    def smtp_password(self) -> str | None:
        """The SMTP password for a login (None: no username, no login). Raises ConfigError
        when a username is set and the variable named by password_env is empty or unset."""
        if not self.username:
            return None
        password = self.password()
        if not password:
            raise ConfigError(
                f"${self.password_env} is empty or not set: no SMTP password for {self.username!r}",
                fix=f"export {self.password_env or 'DIGEST_SMTP_PASSWORD'}=... (the SMTP password)",
            )
        return password


@dataclass(frozen=True)
class Subscriber:
    email: str
    name: str = ""
    keywords: Mapping[str, float] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    max_papers: int = 15
    timezone: str = "UTC"
    send_at: time = time(7, 0)
    upvote_boost: float = 0.0
    like: tuple[str, ...] = ()  # arXiv ids of papers the reader liked (from the config)
    min_score: float = DEFAULT_MIN_SCORE

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class WebConfig:
    """[web]: the reader's side (signed links, one-click unsubscribe, feedback, view online)."""

    base_url: str  # what links in mails point at, without a trailing slash
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    secret_env: str = "DIGEST_WEB_SECRET"

    @property
    def listen(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{host}:{self.listen_port}"

    def secret(self) -> str | None:
        """The signing secret, read from the environment variable named by secret_env."""
        return os.environ.get(self.secret_env) or None


@dataclass(frozen=True)
class Config:
    path: Path
    digest: DigestSettings
    sources: tuple[SourceConfig, ...]
    delivery: DeliveryConfig
    subscribers: tuple[Subscriber, ...]
    warnings: tuple[str, ...] = ()  # valid but probably not what was meant
    web: WebConfig | None = None  # None: no [web] table, mails carry no web links

    def subscriber(self, email: str) -> Subscriber:
        for sub in self.subscribers:
            if sub.email.lower() == email.lower():
                return sub
        known = ", ".join(s.email for s in self.subscribers) or "none"
        raise ConfigError(
            f"{self.path.name}: no subscriber {email!r}",
            fix=f"use one of the configured subscribers ({known})",
        )


def resolve_config_path(cli_value: str | os.PathLike[str] | None) -> Path:
    """`-c FILE`, else $DIGEST_CONFIG, else ./digest.toml."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get("DIGEST_CONFIG")
    if env:
        return Path(env)
    return Path(DEFAULT_CONFIG_NAME)


def load_config(path: str | os.PathLike[str]) -> Config:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"config file {str(path)!r} not found",
            fix="pass -c FILE, set DIGEST_CONFIG, or copy config.example.toml to digest.toml",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not UTF-8 text", fix="save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: invalid TOML: {exc}", fix="correct the syntax") from None
    return parse_config(data, path)


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    """Validate an already-parsed TOML document. `path` anchors relative paths and messages."""
    ctx = _Context(path.name)
    base = path.resolve().parent
    _check_keys(ctx, "top level", data, {"digest", "source", "delivery", "subscriber", "web"})
    digest = _parse_digest(ctx, _table(ctx, "[digest]", data.get("digest", {})), base)

    source_list = data.get("source")
    if source_list is None:
        source_list = [{"type": "hf-papers"}]
    if not isinstance(source_list, list) or not source_list:
        raise ctx.error("[[source]]", "must be one or more [[source]] tables")
    sources = tuple(
        _parse_source(ctx, f"[[source]] #{i}", _table(ctx, f"[[source]] #{i}", s), base)
        for i, s in enumerate(source_list, 1)
    )
    names = [s.name for s in sources]
    for name in names:
        if names.count(name) > 1:
            raise ctx.error(
                "[[source]]",
                f"two sources are named {name!r}",
                fix="give each source a unique name",
            )

    delivery = _parse_delivery(ctx, _table(ctx, "[delivery]", data.get("delivery", {})), base)

    sub_list = data.get("subscriber", [])
    if not isinstance(sub_list, list):
        raise ctx.error("[[subscriber]]", "must be an array of [[subscriber]] tables")
    subscribers = []
    seen: set[str] = set()
    for i, s in enumerate(sub_list, 1):
        place = f"[[subscriber]] #{i}"
        sub = _parse_subscriber(ctx, place, _table(ctx, place, s), digest)
        if sub.email.lower() in seen:
            raise ctx.error(place, f"email {sub.email!r} is listed twice", fix="remove the copy")
        seen.add(sub.email.lower())
        subscribers.append(sub)
    web = None
    if "web" in data:
        web = _parse_web(ctx, _table(ctx, "[web]", data["web"]))
        if digest.unsubscribe_url:
            raise ctx.error(
                "[digest]",
                "unsubscribe_url and [web] both give the unsubscribe link",
                fix="remove unsubscribe_url: [web] makes signed one-click links itself",
            )
    return Config(
        path=path,
        digest=digest,
        sources=sources,
        delivery=delivery,
        subscribers=tuple(subscribers),
        warnings=(
            ()
            if subscribers
            else (f"{path.name}: no [[subscriber]]: nobody will get a digest (fix: add one)",)
        ),
        web=web,
    )


def check_secrets(config: Config) -> None:
    """The secrets a real send needs are in the environment (not checked on load: `status` and
    `preview` need none). Raises ConfigError naming the variable."""
    d = config.delivery
    if d.method == "smtp" and d.username and not d.password():
        raise ConfigError(
            f"{config.path.name}: [delivery]: ${d.password_env} is empty or not set, so the "
            f"SMTP login as {d.username!r} would fail",
            fix=f"export {d.password_env}=... (the SMTP password) before running digest",
        )


# --- sections --------------------------------------------------------------------------------


def _parse_digest(ctx: _Context, t: Mapping[str, Any], base: Path) -> DigestSettings:
    place = "[digest]"
    _check_keys(
        ctx,
        place,
        t,
        {
            "state",
            "from",
            "timezone",
            "send_at",
            "max_papers",
            "lookback_days",
            "send_empty",
            "unsubscribe_mailto",
            "unsubscribe_url",
            "upvote_boost",
            "templates",
            "min_score",
            "catch_up_hours",
        },
    )
    default_from = "Paper Digest <digest@localhost.localdomain>"
    from_addr = _header_text(ctx, place, "from", _str(ctx, place, t, "from", default_from))
    if not _EMAIL.match(parseaddr(from_addr)[1] or "-"):
        raise ctx.error(
            place,
            f"from = {from_addr!r} is not an email address",
            fix='write it as "Name <address@example.org>"',
        )
    mailto = _str(ctx, place, t, "unsubscribe_mailto", "")
    if mailto:
        _email(ctx, place, "unsubscribe_mailto", mailto.removeprefix("mailto:"))
    url = _str(ctx, place, t, "unsubscribe_url", "")
    if url and not url.startswith("https://"):  # RFC 8058 one-click needs https
        raise ctx.error(place, f"unsubscribe_url = {url!r} must be an https:// URL (RFC 8058)")
    return DigestSettings(
        state=base / _str(ctx, place, t, "state", "digest.sqlite3"),
        from_addr=from_addr,
        timezone=_timezone(ctx, place, t, "timezone", "UTC"),
        send_at=_send_at(ctx, place, t, "send_at", time(7, 0)),
        max_papers=_int(ctx, place, t, "max_papers", 15, minimum=1, maximum=MAX_PAPERS),
        lookback_days=_int(ctx, place, t, "lookback_days", 3, minimum=0, maximum=365),
        send_empty=_bool(ctx, place, t, "send_empty", False),
        unsubscribe_mailto=mailto.removeprefix("mailto:"),
        unsubscribe_url=url,
        upvote_boost=_float(ctx, place, t, "upvote_boost", 0.0, minimum=0.0, maximum=100.0),
        templates=_templates_dir(ctx, place, t, base),
        min_score=_float(ctx, place, t, "min_score", DEFAULT_MIN_SCORE, minimum=0.0, maximum=1.0),
        catch_up_hours=_catch_up_hours(ctx, place, t),
    )


def _templates_dir(ctx: _Context, place: str, t: Mapping[str, Any], base: Path) -> Path | None:
    """[digest] templates: a folder (relative to the config file) that must exist."""
    value = _str(ctx, place, t, "templates", "")
    if not value:
        return None
    folder = base / value
    if not folder.is_dir():
        raise ctx.error(
            place,
            f"templates = {value!r}: no such folder ({folder})",
            fix="create the folder, or remove the key to use the shipped templates",
        )
    return folder


def _catch_up_hours(ctx: _Context, place: str, t: Mapping[str, Any]) -> float:
    hours = _float(ctx, place, t, "catch_up_hours", 12.0, maximum=24 * 7)
    if not (0 < hours < float("inf")):  # also rejects nan
        raise ctx.error(
            place,
            f"catch_up_hours = {hours} must be a number of hours above 0",
            fix="e.g. catch_up_hours = 12: a digest missed by more goes into the next one",
        )
    return hours


def _parse_source(ctx: _Context, place: str, t: Mapping[str, Any], base: Path) -> SourceConfig:
    _check_keys(ctx, place, t, {"type", "url", "name", "timeout"})
    if "type" not in t:
        raise ctx.error(
            place, "type is missing", fix=f"set type to one of {', '.join(SOURCE_TYPES)}"
        )
    kind = _choice(ctx, place, t, "type", SOURCE_TYPES, "hf-papers")
    default_url = {"hf-papers": DEFAULT_HF_PAGE, "hf-api": DEFAULT_HF_API}.get(kind, "")
    url = _str(ctx, place, t, "url", default_url)
    if not url:
        raise ctx.error(place, "url is missing", fix='a feed needs url = "https://..." or a file')
    _url(ctx, place, "url", url, local_ok=True)
    if not re.match(r"^https?://", url):
        # A local file: relative to the config file, like every other path in it.
        url = str(base / url.removeprefix("file://")) if not Path(url).is_absolute() else url
    name = _str(ctx, place, t, "name", "") or _default_source_name(kind, url)
    return SourceConfig(
        type=kind,
        url=url,
        name=_header_text(ctx, place, "name", name),
        timeout=_float(ctx, place, t, "timeout", 30.0, minimum=1, maximum=600),
    )


def _default_source_name(kind: str, url: str) -> str:
    if kind != "feed":
        return kind
    tail = re.sub(r"^https?://", "", url).rstrip("/")
    return f"feed:{tail}"


def _parse_delivery(ctx: _Context, t: Mapping[str, Any], base: Path) -> DeliveryConfig:
    place = "[delivery]"
    if "password" in t:
        raise ctx.error(
            place,
            "password must not be in the config file",
            fix='set password_env = "DIGEST_SMTP_PASSWORD" and export that variable',
        )
    _check_keys(
        ctx,
        place,
        t,
        {
            "method",
            "host",
            "port",
            "security",
            "username",
            "password_env",
            "outbox",
            "connections",
            "max_per_minute",
            "timeout",
            "retries",
            "messages_per_connection",
            "deadline_minutes",
        },
    )
    method = _choice(
        ctx, place, t, "method", DELIVERY_METHODS, "smtp" if t.get("host") else "outbox"
    )
    host = _str(ctx, place, t, "host", "")
    if method == "smtp" and not host:
        raise ctx.error(place, 'method = "smtp" needs host', fix='set host, or method = "outbox"')
    security = _choice(ctx, place, t, "security", SECURITY_MODES, "starttls")
    default_port = {"starttls": 587, "tls": 465, "none": 25}[security]
    max_per_minute = t.get("max_per_minute")
    if max_per_minute is not None:
        max_per_minute = _int(ctx, place, t, "max_per_minute", 0, minimum=1)
    username = _str(ctx, place, t, "username", "")
    password_env = _str(ctx, place, t, "password_env", "")
    if password_env and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", password_env):
        raise ctx.error(
            place, f"password_env = {password_env!r} is not an environment variable name"
        )
    if username and not password_env and method == "smtp":
        raise ctx.error(
            place,
            "username is set but password_env is not",
            fix='set password_env = "DIGEST_SMTP_PASSWORD" and export that variable',
        )
    return DeliveryConfig(
        method=method,
        host=host,
        port=_int(ctx, place, t, "port", default_port, minimum=1, maximum=65535),
        security=security,
        username=username,
        password_env=password_env,
        outbox=base / _str(ctx, place, t, "outbox", "outbox"),
        connections=_int(ctx, place, t, "connections", 2, minimum=1, maximum=50),
        max_per_minute=max_per_minute,
        timeout=_float(ctx, place, t, "timeout", 30.0, minimum=1, maximum=600),
        retries=_int(ctx, place, t, "retries", 3, minimum=1, maximum=20),
        messages_per_connection=_int(
            ctx, place, t, "messages_per_connection", 100, minimum=1, maximum=100_000
        ),
        deadline_minutes=_float(
            ctx, place, t, "deadline_minutes", 120.0, minimum=1, maximum=24 * 60
        ),
    )


_LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_BASE_URL = re.compile(
    r"^(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>\d{1,5}))?"
    r"(?P<path>(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*)$"
)


def _parse_web(ctx: _Context, t: Mapping[str, Any]) -> WebConfig:
    place = "[web]"
    if "secret" in t:
        raise ctx.error(
            place,
            "the secret must not be in the config file",
            fix='set secret_env = "DIGEST_WEB_SECRET" and export that variable',
        )
    _check_keys(ctx, place, t, {"base_url", "listen", "secret_env"})
    if "base_url" not in t:
        raise ctx.error(
            place, "base_url is missing", fix='set base_url = "https://digest.example.org"'
        )
    base_url = _str(ctx, place, t, "base_url", "").rstrip("/")
    match = _BASE_URL.match(base_url)
    host = match.group("host").lower() if match else ""
    port = int(match.group("port")) if match and match.group("port") else None
    if (
        not match
        or not (host.startswith("[") or _HOSTNAME.match(host))
        or (port is not None and not 1 <= port <= 65535)
    ):
        raise ctx.error(
            place,
            f"base_url = {base_url!r} is not a URL without query or fragment",
            fix='write it as "https://digest.example.org" (a path is allowed)',
        )
    if match.group("scheme") != "https" and host not in _LOCAL_HOSTS:
        # RFC 8058 one-click needs https; plain http only for trying it out on this machine.
        raise ctx.error(
            place,
            f"base_url = {base_url!r} must be an https:// URL",
            fix="put the app behind a TLS reverse proxy (see deploy/); "
            "http:// is only allowed for 127.0.0.1 and localhost",
        )
    listen = _str(ctx, place, t, "listen", "127.0.0.1:8080")
    listen_match = re.match(
        r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>\d{1,5})$", listen
    )
    listen_host = (listen_match.group("v6") or listen_match.group("host")) if listen_match else ""
    listen_port = int(listen_match.group("port")) if listen_match else 0
    if (
        not listen_match
        or not 1 <= listen_port <= 65535
        or not (listen_match.group("v6") or _HOSTNAME.match(listen_host))
    ):
        raise ctx.error(
            place,
            f"listen = {listen!r} is not host:port",
            fix='write it as "127.0.0.1:8080" (the reverse proxy connects there)',
        )
    secret_env = _str(ctx, place, t, "secret_env", "DIGEST_WEB_SECRET")
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", secret_env):
        raise ctx.error(place, f"secret_env = {secret_env!r} is not an environment variable name")
    return WebConfig(
        base_url=base_url, listen_host=listen_host, listen_port=listen_port, secret_env=secret_env
    )


def _parse_subscriber(
    ctx: _Context, place: str, t: Mapping[str, Any], digest: DigestSettings
) -> Subscriber:
    if "email" not in t:
        raise ctx.error(place, "email is missing", fix='add email = "you@example.org"')
    email = _email(ctx, place, "email", _str(ctx, place, t, "email", ""))
    place = f"{place} ({email})"  # every later message says whose entry it is
    _check_keys(
        ctx,
        place,
        t,
        {
            "email",
            "name",
            "keywords",
            "exclude",
            "authors",
            "max_papers",
            "timezone",
            "send_at",
            "upvote_boost",
            "like",
            "min_score",
        },
    )
    name = _header_text(ctx, place, "name", _str(ctx, place, t, "name", ""))
    return Subscriber(
        email=email,
        name=name,
        keywords=_keywords(ctx, place, t.get("keywords", {})),
        exclude=_str_list(ctx, place, t, "exclude"),
        authors=_str_list(ctx, place, t, "authors"),
        max_papers=_int(
            ctx, place, t, "max_papers", digest.max_papers, minimum=1, maximum=MAX_PAPERS
        ),
        timezone=_timezone(ctx, place, t, "timezone", digest.timezone),
        send_at=_send_at(ctx, place, t, "send_at", digest.send_at),
        upvote_boost=_float(
            ctx, place, t, "upvote_boost", digest.upvote_boost, minimum=0.0, maximum=100.0
        ),
        like=_likes(ctx, place, _str_list(ctx, place, t, "like")),
        min_score=_float(ctx, place, t, "min_score", digest.min_score, minimum=0.0, maximum=1.0),
    )


def _likes(ctx: _Context, place: str, entries: tuple[str, ...]) -> tuple[str, ...]:
    """Liked papers as arXiv ids: a bare id, an arXiv URL or a Hugging Face paper URL."""
    out: list[str] = []
    for entry in entries:
        paper_id = normalise_arxiv_id(entry)
        if paper_id is None:
            raise ctx.error(
                place,
                f"like: {entry!r} is not an arXiv id or paper URL",
                fix='write an id such as "2606.00467" or https://arxiv.org/abs/2606.00467',
            )
        if paper_id not in out:
            out.append(paper_id)
    return tuple(out)


def _keywords(ctx: _Context, place: str, value: Any) -> dict[str, float]:
    if isinstance(value, list):
        value = {k: 1 for k in value}
    if not isinstance(value, Mapping):
        raise ctx.error(
            place,
            "keywords must be a list of terms or a table of term = weight",
            fix='write keywords = ["GNN", "link prediction"] or keywords = { "GNN" = 3 }',
        )
    out: dict[str, float] = {}
    for term, weight in value.items():
        if not isinstance(term, str) or not term.strip():
            raise ctx.error(place, f"keywords: {term!r} is not a term")
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or weight <= 0
        ):
            raise ctx.error(
                place, f"keywords: weight of {term!r} must be a positive number, not {weight!r}"
            )
        out[term.strip()] = float(weight)
    return out


# --- value checks ----------------------------------------------------------------------------


class _Context:
    def __init__(self, filename: str) -> None:
        self.filename = filename

    def error(self, place: str, problem: str, *, fix: str | None = None) -> ConfigError:
        return ConfigError(f"{self.filename}: {place}: {problem}", fix=fix)


def _table(ctx: _Context, place: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ctx.error(place, f"must be a table, not {type(value).__name__}")
    return value


def _check_keys(ctx: _Context, place: str, t: Mapping[str, Any], allowed: set[str]) -> None:
    for key in t:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            fix = (
                f"did you mean {close[0]!r}?"
                if close
                else f"known keys: {', '.join(sorted(allowed))}"
            )
            raise ctx.error(place, f"unknown key {key!r}", fix=fix)


def _str(ctx: _Context, place: str, t: Mapping[str, Any], key: str, default: str) -> str:
    value = t.get(key, default)
    if not isinstance(value, str):
        raise ctx.error(place, f"{key} must be a string, not {value!r}")
    return value.strip()


def _str_list(ctx: _Context, place: str, t: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = t.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ctx.error(place, f"{key} must be a list of strings", fix=f'write {key} = ["..."]')
    return tuple(v.strip() for v in value)


def _int(
    ctx: _Context,
    place: str,
    t: Mapping[str, Any],
    key: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = t.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.error(place, f"{key} must be a whole number, not {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "..." if minimum is None else minimum
        high = "..." if maximum is None else maximum
        bounds = f"{low} to {high}"
        raise ctx.error(place, f"{key} = {value} is out of range ({bounds})")
    return value


def _float(
    ctx: _Context,
    place: str,
    t: Mapping[str, Any],
    key: str,
    default: float,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    value = t.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ctx.error(place, f"{key} must be a number, not {value!r}")
    if not math.isfinite(value):  # TOML has nan and inf; either would break every run
        raise ctx.error(place, f"{key} = {value} is not a finite number", fix="write a number")
    if minimum is not None and value < minimum:
        raise ctx.error(place, f"{key} = {value} must be at least {minimum:g}")
    if maximum is not None and value > maximum:
        raise ctx.error(place, f"{key} = {value} must be at most {maximum:g}")
    return float(value)


def _header_text(ctx: _Context, place: str, key: str, value: str) -> str:
    """A value that goes into a mail header: one line, no control characters (a CR or LF
    would let it write headers of its own)."""
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise ctx.error(
            place,
            f"{key} = {value!r} contains a line break or control character",
            fix="write it on one line, without control characters",
        )
    return value


def _url(ctx: _Context, place: str, key: str, value: str, *, local_ok: bool) -> str:
    """An http(s) URL, or (where local_ok) a local file path. Other schemes are refused."""
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", value)
    if scheme and len(scheme.group(1)) > 1:  # "C:" would be a drive letter, not a scheme
        name = scheme.group(1).lower()
        if name not in ("http", "https") and not (local_ok and name == "file"):
            raise ctx.error(
                place,
                f"{key} = {value!r} has the scheme {name!r}",
                fix="use an http:// or https:// URL" + (" or a file path" if local_ok else ""),
            )
        if name in ("http", "https") and not re.match(r"^https?://[^/\s]+", value):
            raise ctx.error(place, f"{key} = {value!r} is not a URL", fix="write https://host/...")
    elif not local_ok:
        raise ctx.error(place, f"{key} = {value!r} is not a URL", fix="write https://host/...")
    return value


def _bool(ctx: _Context, place: str, t: Mapping[str, Any], key: str, default: bool) -> bool:
    value = t.get(key, default)
    if not isinstance(value, bool):
        raise ctx.error(place, f"{key} must be true or false, not {value!r}")
    return value


def _choice(
    ctx: _Context,
    place: str,
    t: Mapping[str, Any],
    key: str,
    allowed: tuple[str, ...],
    default: str,
) -> str:
    value = _str(ctx, place, t, key, default)
    if value not in allowed:
        raise ctx.error(
            place,
            f"{key} = {value!r} is not one of {', '.join(allowed)}",
            fix=f"set {key} to one of {', '.join(repr(a) for a in allowed)}",
        )
    return value


def _email(ctx: _Context, place: str, key: str, value: str) -> str:
    if not _EMAIL.match(value):
        raise ctx.error(place, f"{key} = {value!r} is not an email address")
    return value


def _timezone(ctx: _Context, place: str, t: Mapping[str, Any], key: str, default: str) -> str:
    value = _str(ctx, place, t, key, default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ctx.error(
            place,
            f"{key} = {value!r} is not a known time zone",
            fix='use an IANA name such as "UTC" or "Europe/Berlin"',
        ) from None
    return value


def _send_at(ctx: _Context, place: str, t: Mapping[str, Any], key: str, default: time) -> time:
    value = t.get(key)
    if value is None:
        return default
    if isinstance(value, time):  # TOML local time: send_at = 07:30
        return value.replace(second=0, microsecond=0)
    match = _SEND_AT.match(value) if isinstance(value, str) else None
    if not match:
        raise ctx.error(
            place, f"{key} = {value!r} is not a time", fix='write it as "HH:MM", e.g. "07:30"'
        )
    return time(int(match.group(1)), int(match.group(2)))
