"""The config's tables as typed, frozen objects: each key's type, default and bounds are
declared once, on its field, and digest.config.load reads every table through them.

A field that a TOML key sets carries a Setting in its metadata: how to read the raw value (a
reader from digest.config.values), the bounds, and the check of its meaning. Objects built in
code (tests, benchmarks) skip validation, as before: only what comes from a file is checked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, replace
from datetime import date, time
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from digest.config import values
from digest.config.values import Reader
from digest.errors import ConfigError
from digest.location import StateLocation
from digest.schedule import Cadence

SOURCE_TYPES = ("hf-papers", "hf-api", "feed")
SOURCE_URLS = {
    "hf-papers": "https://huggingface.co/papers",
    "hf-api": "https://huggingface.co/api/daily_papers",
}
DEFAULT_HF_PAGE = SOURCE_URLS["hf-papers"]
DEFAULT_HF_API = SOURCE_URLS["hf-api"]
DELIVERY_METHODS = ("smtp", "outbox")
SECURITY_PORTS = {"starttls": 587, "tls": 465, "none": 25}  # the default port of each
SECURITY_MODES = tuple(SECURITY_PORTS)
SIGNUP_MODES = ("off", "open", "domains")
MAX_PAPERS = 500  # per digest: beyond this a value is a typo
# Below this fused score a paper is not a plausible match: no digest is padded with it.
DEFAULT_MIN_SCORE = 0.3

# Sizes no reader meets, so that nothing a config holds can make a run slow: terms feed the
# stemmer and the phrase matcher, likes a regular expression, names the mail headers.
MOST_TERMS = 200  # keywords, exclude, authors: entries per reader
LONGEST_TERM = 100  # characters of one keyword, excluded word or author name
MAX_WEIGHT = 100  # of a keyword: a ratio between terms (an inf or 1e308 would break the sums)
MOST_LIKES = 1000
LONGEST_LINK = 200  # an arXiv id or paper URL in like
LONGEST_NAME = 100  # a reader's or a source's name
LONGEST_EMAIL = 254  # RFC 5321's limit for a path
LONGEST_URL = 300  # a URL that mails carry: List-Unsubscribe lines stay under 998 bytes
LONGEST_PATH = 4096  # a path (PATH_MAX); the default bound of any other text

SETTING = "digest.config"  # the metadata key of a field's Setting


@dataclass(frozen=True)
class Setting:
    """How one TOML key is read into its field, and what it may hold."""

    read: Reader  # the shape: values.text, values.whole, ...
    check: Reader | None = None  # the meaning, run on a value already within its bounds
    key: str = ""  # the key in the file, when it is not the field's name
    low: float | None = None  # a number's inclusive bounds (high: also each number in a
    high: float | None = None  # table of name = number, such as keywords)
    above: float | None = None  # a number's exclusive lower bound
    choices: tuple[str, ...] = ()
    longest: int = LONGEST_PATH  # characters of a text, or of each entry of a list or table
    most: int | None = None  # entries of a list or table
    required: str = ""  # when set, the key must be there; this is the fix
    fix: str | None = None  # the fix when a number is out of bounds
    inherit: bool = False  # [[subscriber]]: the default is the [digest] value of the same name


def setting(
    default: Any = MISSING, read: Reader = values.text, *, factory: Any = MISSING, **spec: Any
) -> Any:
    """A field read from the file: its default (or default factory) and its Setting."""
    return field(
        default=default, default_factory=factory, metadata={SETTING: Setting(read, **spec)}
    )


def _timeout() -> Any:
    return setting(30.0, values.number, low=1, high=600)


@dataclass(frozen=True)
class DigestSettings:
    """[digest]: the service's settings, and each reader's defaults."""

    # a SQLite file (relative to the config file) or a postgresql:// URL
    state: StateLocation = setting(StateLocation(path=Path("digest.sqlite3")), check=values.state)
    # the environment variable holding the PostgreSQL password ("" : libpq's own places)
    state_password_env: str = setting("", check=values.env_name, longest=LONGEST_NAME)
    from_addr: str = setting(  # as written: "Paper Digest <digest@example.org>"
        "Paper Digest <digest@localhost.localdomain>",
        key="from",
        check=values.one_mailbox,
        longest=LONGEST_NAME + LONGEST_EMAIL,
    )
    timezone: str = setting("UTC", check=values.zone, longest=64)
    send_at: time = setting(time(7, 0), values.clock)
    max_papers: int = setting(15, values.whole, low=1, high=MAX_PAPERS)
    lookback_days: int = setting(3, values.whole, low=0, high=365)
    send_empty: bool = setting(False, values.flag)
    # "" means: the From address
    unsubscribe_mailto: str = setting("", check=values.mailto, longest=LONGEST_EMAIL)
    unsubscribe_url: str = setting("", check=values.https_url, longest=LONGEST_URL)
    # score added per log2(1 + upvotes); 0 = upvotes only break ties
    upvote_boost: float = setting(0.0, values.number, low=0.0, high=100.0)
    # a folder whose email templates override the shipped ones
    templates: Path | None = setting(None, check=values.folder)
    # Papers whose score (0..1, see digest.rank.calibrate) is below this are left out.
    min_score: float = setting(DEFAULT_MIN_SCORE, values.number, low=0.0, high=1.0)
    # the daemon sends a missed digest this late at most
    catch_up_hours: float = setting(
        12.0,
        values.number,
        above=0,
        high=24 * 7,
        fix="e.g. catch_up_hours = 12: a digest missed by more hours goes into the next one",
    )
    # false: rank by keywords only and never load the embedding model
    semantic: bool = setting(True, values.flag)
    # A worker's claim on a reader lasts this long without a heartbeat: a worker that died
    # leaves its readers to another after this many seconds.
    lease_seconds: float = setting(60.0, values.number, low=2, high=3600)
    # The daemon asks every source this often (and a few minutes before each send time), so
    # a send finds the day recorded and embedded; 0: only before each send time.
    fetch_every_minutes: float = setting(
        30.0,
        values.number,
        low=0,
        high=24 * 60,
        fix="e.g. fetch_every_minutes = 30: each source is asked (conditionally) that often",
    )
    # A send uses a fetch younger than this as it is (the daemon's, a `digest fetch` or a
    # send-now that was not due); 0: every send asks the sources again.
    fetch_reuse_minutes: float = setting(5.0, values.number, low=0, high=24 * 60)

    @property
    def from_email(self) -> str:
        return parseaddr(self.from_addr)[1]


@dataclass(frozen=True)
class SourceConfig:
    """[[source]]: where papers come from."""

    type: str = setting(
        choices=SOURCE_TYPES, required=f"set type to one of {', '.join(SOURCE_TYPES)}"
    )
    url: str = setting(check=values.source_url)  # default: SOURCE_URLS[type]
    name: str = setting(check=values.header_text, longest=LONGEST_NAME)  # default: from type
    timeout: float = _timeout()


@dataclass(frozen=True)
class DeliveryConfig:
    """[delivery]: how digests leave (an SMTP server, or .eml files in a folder)."""

    method: str = setting("outbox", choices=DELIVERY_METHODS)  # "smtp" when host is set
    host: str = setting("", longest=253)
    port: int = setting(SECURITY_PORTS["starttls"], values.whole, low=1, high=65535)
    security: str = setting("starttls", choices=SECURITY_MODES)
    username: str = setting("", longest=LONGEST_EMAIL)
    password_env: str = setting("", check=values.env_name, longest=LONGEST_NAME)
    outbox: Path = setting(Path("outbox"), check=values.path)
    connections: int = setting(2, values.whole, low=1, high=50)
    max_per_minute: int | None = setting(None, values.whole, low=1)
    timeout: float = _timeout()
    # attempts per digest within one run for transient failures
    retries: int = setting(3, values.whole, low=1, high=20)
    # re-open a connection after this many messages
    messages_per_connection: int = setting(100, values.whole, low=1, high=100_000)
    # No new SMTP transaction starts this long after delivery began; the rest stay pending.
    deadline_minutes: float = setting(120.0, values.number, low=1, high=24 * 60)

    def password(self) -> str | None:
        """The SMTP password, read from the environment variable named by password_env."""
        if not self.password_env:
            return None
        return os.environ.get(self.password_env)

    def smtp_password(self) -> str | None:
        """The password the SMTP login needs: None when there is no login (no username), else
        the value of $password_env. Raises ConfigError naming the variable and the fix when
        it is missing: the one place this is checked (check_secrets and the mailer call it)."""
        if not self.username:
            return None
        if not self.password_env:
            raise ConfigError(
                "[delivery]: username is set but password_env is not",
                fix='set password_env = "DIGEST_SMTP_PASSWORD" and export that variable',
            )
        password = self.password()
        if not password:
            raise ConfigError(
                f"[delivery]: ${self.password_env} is empty or not set, so the SMTP login as "
                f"{self.username!r} would fail",
                fix=f"export {self.password_env}=... (the SMTP password) before running digest",
            )
        return password


def _inherited(name: str) -> Any:
    """A [[subscriber]] key that defaults to the [digest] key of the same name: the same
    default and bounds, declared there."""
    digest_field = DigestSettings.__dataclass_fields__[name]
    spec = replace(digest_field.metadata[SETTING], inherit=True)
    return field(default=digest_field.default, metadata={SETTING: spec})


@dataclass(frozen=True)
class Subscriber:
    """[[subscriber]]: one reader."""

    email: str = setting(
        check=values.email, longest=LONGEST_EMAIL, required='add email = "you@example.org"'
    )
    name: str = setting("", check=values.header_text, longest=LONGEST_NAME)
    keywords: Mapping[str, float] = setting(
        read=values.term_weights,
        factory=dict,
        most=MOST_TERMS,
        longest=LONGEST_TERM,
        high=MAX_WEIGHT,
        fix="weights say how much terms matter next to each other: 1 to 10 is plenty",
    )
    exclude: tuple[str, ...] = setting((), values.text_list, most=MOST_TERMS, longest=LONGEST_TERM)
    authors: tuple[str, ...] = setting((), values.text_list, most=MOST_TERMS, longest=LONGEST_TERM)
    max_papers: int = _inherited("max_papers")
    timezone: str = _inherited("timezone")
    send_at: time = _inherited("send_at")
    upvote_boost: float = _inherited("upvote_boost")
    # arXiv ids of papers the reader liked (from the config)
    like: tuple[str, ...] = setting(
        (), values.text_list, check=values.likes, most=MOST_LIKES, longest=LONGEST_LINK
    )
    min_score: float = _inherited("min_score")
    # How often: "daily", or "weekly" on `weekday` (the reader's local day; ignored when
    # daily); no digest for local dates up to and including paused_until.
    frequency: str = setting("daily", check=values.frequency, longest=16)
    weekday: str = setting("mon", check=values.weekday, longest=16)
    paused_until: date | None = setting(None, values.day)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def cadence(self) -> Cadence:
        """What the schedule (digest.schedule) needs of frequency, weekday and paused_until."""
        return Cadence.of(self.frequency, self.weekday, self.paused_until)


@dataclass(frozen=True)
class WebConfig:
    """[web]: the reader's side (signed links, one-click unsubscribe, feedback, view online)."""

    # what links in mails point at, without a trailing slash
    base_url: str = setting(
        check=values.base_url,
        longest=LONGEST_URL,
        required='set base_url = "https://digest.example.org"',
    )
    listen: str = setting("127.0.0.1:8080", check=values.listen, longest=LONGEST_URL)
    secret_env: str = setting("DIGEST_WEB_SECRET", check=values.env_name, longest=LONGEST_NAME)
    # the config's own readers may edit their interests on the profile page (which then wins
    # over their [[subscriber]] table for the fields they changed); readers who signed up or
    # were imported always may
    profile_edit: bool = setting(False, values.flag)
    # readers sign up on /signup (double opt-in): "off", "open", or "domains" (allowed_domains)
    signup: str = setting("off", choices=SIGNUP_MODES)
    allowed_domains: tuple[str, ...] = setting(
        (), values.text_list, check=values.domains, most=MOST_TERMS, longest=253
    )

    @property
    def listen_host(self) -> str:
        return (values.split_listen(self.listen) or ("", 0))[0]

    @property
    def listen_port(self) -> int:
        return (values.split_listen(self.listen) or ("", 0))[1]

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
