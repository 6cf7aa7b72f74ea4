"""Value checks for the config: each turns one raw TOML value into a typed one, or raises a
ConfigError that names the file, the place and the key. They know nothing of the tables.

Two kinds: a *reader* checks the shape (a string, a whole number, a list of strings) and is
cheap on any input; a *check* looks at the meaning (an address, a time zone, an arXiv id) and
runs only after the loader has bounded the value's size, so no regular expression or parser
here ever sees a megabyte.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from email.policy import SMTP
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.errors import ConfigError
from digest.ids import normalise_arxiv_id
from digest.location import BadLocation, StateLocation
from digest.schedule import FREQUENCIES, WEEKDAYS

# ASCII addresses only: a non-ASCII one would need SMTPUTF8, which most servers do not offer.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9-]+)+$"
)
_SEND_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_BASE_URL = re.compile(
    r"^(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>\d{1,5}))?"
    r"(?P<path>(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*)$"
)
_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>\d{1,5})$")
_SHOWN = 60  # characters of a value quoted in a message; the rest is "..."


@dataclass(frozen=True)
class Place:
    """Where a value sits: every message starts with the file and the table."""

    file: str  # the config file's name
    table: str  # "[digest]", "[[subscriber]] #2 (ada@example.org)"
    base: Path  # the config file's folder: relative paths in it are relative to this

    def error(self, problem: str, *, fix: str | None = None) -> ConfigError:
        return ConfigError(f"{self.file}: {self.table}: {problem}", fix=fix)

    def at(self, table: str) -> Place:
        return replace(self, table=table)


Reader = Callable[[Place, str, Any], Any]


def shown(value: Any) -> str:
    """repr() of a value for a message: one line, and short even for a megabyte string or a
    list nested a thousand deep."""
    if isinstance(value, str) and len(value) > _SHOWN:
        return repr(value[:_SHOWN]) + "..."
    try:
        text = repr(value)
    except RecursionError:
        return f"a {type(value).__name__} nested too deeply"
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


# --- readers: the shape ----------------------------------------------------------------------


def text(place: Place, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise place.error(f"{key} must be a string, not {shown(value)}")
    return value.strip()


def whole(place: Place, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise place.error(f"{key} must be a whole number, not {shown(value)}")
    return value


def number(place: Place, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise place.error(f"{key} must be a number, not {shown(value)}")
    if not math.isfinite(value):  # TOML has nan and inf; either would break every run
        raise place.error(f"{key} = {value} is not a finite number", fix="write a number")
    return float(value)


def flag(place: Place, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise place.error(f"{key} must be true or false, not {shown(value)}")
    return value


def text_list(place: Place, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise place.error(f"{key} must be a list of strings", fix=f'write {key} = ["..."]')
    return tuple(v.strip() for v in value)


def clock(place: Place, key: str, value: Any) -> time:
    if isinstance(value, time):  # TOML local time: send_at = 07:30
        return value.replace(second=0, microsecond=0)
    match = _SEND_AT.match(value) if isinstance(value, str) else None
    if not match:
        raise place.error(
            f"{key} = {shown(value)} is not a time", fix='write it as "HH:MM", e.g. "07:30"'
        )
    return time(int(match.group(1)), int(match.group(2)))


def day(place: Place, key: str, value: Any) -> date:
    """A calendar date: a TOML date (paused_until = 2026-12-24) or "YYYY-MM-DD"."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise place.error(
        f"{key} = {shown(value)} is not a date", fix='write it as "YYYY-MM-DD", e.g. "2026-12-24"'
    )


def frequency(place: Place, key: str, value: str) -> str:
    """ "daily", "weekly" or "paused" (any case). "paused" (with paused_until) is daily once
    the pause ends; paused_until alone pauses a daily or weekly reader the same way."""
    word = value.lower()
    if word in FREQUENCIES:
        return word
    raise place.error(
        f"{key} = {shown(value)} is not one of {', '.join(FREQUENCIES)}",
        fix='set frequency = "daily", or "weekly" with weekday = "mon" (or another day)',
    )


def weekday(place: Place, key: str, value: str) -> str:
    """ "mon".."sun", or the day's full English name, in any case: kept as "mon".."sun"."""
    word = value.lower()
    for short in WEEKDAYS:
        if word == short or (len(word) > 3 and _DAY_NAMES[short] == word):
            return short
    raise place.error(
        f"{key} = {shown(value)} is not a day of the week",
        fix=f"write one of {', '.join(repr(d) for d in WEEKDAYS)}",
    )


_DAY_NAMES = dict(zip(WEEKDAYS, ("monday", "tuesday", "wednesday", "thursday", "friday",
                                 "saturday", "sunday"), strict=True))  # fmt: skip


def term_weights(place: Place, key: str, value: Any) -> dict[str, float]:
    """keywords: a list of terms (weight 1 each) or a table of term = weight."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = dict.fromkeys(value, 1)
    if not isinstance(value, Mapping):
        raise place.error(
            f"{key} must be a list of terms or a table of term = weight",
            fix=f'write {key} = ["GNN", "link prediction"] or {key} = {{ "GNN" = 3 }}',
        )
    out: dict[str, float] = {}
    for term, weight in value.items():
        if not isinstance(term, str) or not term.strip():
            raise place.error(f"{key}: {shown(term)} is not a term")
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or weight <= 0
        ):
            raise place.error(
                f"{key}: weight of {shown(term)} must be a positive number, not {shown(weight)}"
            )
        out[term.strip()] = float(weight)
    return out


# --- checks: the meaning (on values the loader has already bounded) --------------------------


def state(place: Place, key: str, value: str) -> StateLocation:
    """[digest] state: a SQLite file (relative to the config file) or a postgresql:// URL."""
    try:
        return StateLocation.parse(value, place.base)
    except BadLocation as exc:
        raise place.error(str(exc), fix=exc.fix) from None


def path(place: Place, key: str, value: str) -> Path:
    """A file or folder: relative to the config file, like every path in it."""
    return place.base / value


def email(place: Place, key: str, value: str) -> str:
    if not _EMAIL.match(value):
        raise place.error(
            f"{key} = {shown(value)} is not an email address", fix='write it as "name@example.org"'
        )
    return value


def mailto(place: Place, key: str, value: str) -> str:
    """An address, or "" for none; a leading mailto: is dropped."""
    value = value.removeprefix("mailto:")
    return email(place, key, value) if value else value


def header_text(place: Place, key: str, value: str) -> str:
    """A value that goes into a mail header: one line, no control characters (a CR or LF
    would let it write headers of its own)."""
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise place.error(
            f"{key} = {shown(value)} contains a line break or control character",
            fix="write it on one line, without control characters",
        )
    return value


def one_mailbox(place: Place, key: str, value: str) -> str:
    """The From: one address, optionally with a display name, read the way the mail's header
    will read it (two addresses would make a From with two senders and no Sender)."""
    header_text(place, key, value)
    fix = 'write it as "Name <address@example.org>"'
    header: Any = SMTP.header_factory("From", value)
    addresses = header.addresses
    if len(addresses) > 1 or any(group.display_name is not None for group in header.groups):
        many = "an address group" if len(header.groups) == 1 else "more than one address"
        raise place.error(
            f"{key} = {shown(value)} is {many}; a mail has one sender",
            fix="write one address; quote a display name that has a comma: "
            '"\\"Digest, Papers\\" <digest@example.org>"',
        )
    if header.defects or len(addresses) != 1 or not _EMAIL.match(addresses[0].addr_spec):
        raise place.error(f"{key} = {shown(value)} is not an email address", fix=fix)
    return value


@functools.cache
def iana_zones() -> frozenset[str]:
    """The IANA zone names, from the tzdata package we depend on: the same list on every
    machine. "Factory" is in it but is no place; "localtime" and file paths never are."""
    names = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    return frozenset(names) - {"Factory"}


def zone(place: Place, key: str, value: str) -> str:
    try:
        if value not in iana_zones():
            raise ValueError(value)
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise place.error(
            f"{key} = {shown(value)} is not a known time zone",
            fix='use an IANA name such as "UTC" or "Europe/Berlin"',
        ) from None
    return value


def env_name(place: Place, key: str, value: str) -> str:
    if value and not _ENV_NAME.match(value):
        raise place.error(f"{key} = {shown(value)} is not an environment variable name")
    return value


def https_url(place: Place, key: str, value: str) -> str:
    """An https URL or "" (RFC 8058 one-click unsubscribe needs https)."""
    if value and not value.startswith("https://"):
        raise place.error(f"{key} = {shown(value)} must be an https:// URL (RFC 8058)")
    return value


def source_url(place: Place, key: str, value: str) -> str:
    """An http(s) URL or a local file path (relative to the config file). Other schemes are
    refused."""
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", value)
    if scheme and len(scheme.group(1)) > 1:  # "C:" would be a drive letter, not a scheme
        name = scheme.group(1).lower()
        if name not in ("http", "https", "file"):
            raise place.error(
                f"{key} = {shown(value)} has the scheme {name!r}",
                fix="use an http:// or https:// URL or a file path",
            )
        if name in ("http", "https"):
            if not re.match(r"^https?://[^/\s]+", value):
                raise place.error(
                    f"{key} = {shown(value)} is not a URL", fix="write https://host/..."
                )
            return value
    if not value:
        return value
    local = value.removeprefix("file://")
    return local if Path(local).is_absolute() else str(place.base / local)


def folder(place: Place, key: str, value: str) -> Path | None:
    """A folder relative to the config file that must exist; None for ""."""
    if not value:
        return None
    found = place.base / value
    if not found.is_dir():
        raise place.error(
            f"{key} = {shown(value)}: no such folder ({found})",
            fix="create the folder, or remove the key to use the shipped templates",
        )
    return found


def base_url(place: Place, key: str, value: str) -> str:
    """[web] base_url: http(s), a host, an optional port and path; no query or fragment."""
    value = value.rstrip("/")
    match = _BASE_URL.match(value)
    host = match.group("host").lower() if match else ""
    port = int(match.group("port")) if match and match.group("port") else None
    if (
        not match
        or not (host.startswith("[") or _HOSTNAME.match(host))
        or (port is not None and not 1 <= port <= 65535)
    ):
        raise place.error(
            f"{key} = {shown(value)} is not a URL without query or fragment",
            fix='write it as "https://digest.example.org" (a path is allowed)',
        )
    if match.group("scheme") != "https" and host not in _LOCAL_HOSTS:
        # RFC 8058 one-click needs https; plain http only for trying it out on this machine.
        raise place.error(
            f"{key} = {shown(value)} must be an https:// URL",
            fix="put the app behind a TLS reverse proxy (see deploy/); "
            "http:// is only allowed for 127.0.0.1 and localhost",
        )
    return value


def domains(place: Place, key: str, entries: tuple[str, ...]) -> tuple[str, ...]:
    """[web] allowed_domains: host names (lowercased; an address's domain or a subdomain of
    one matches), e.g. "uni-example.de"."""
    out: dict[str, None] = {}
    for entry in entries:
        name = entry.lower().removeprefix("@")
        if not _HOSTNAME.match(name) or "." not in name:
            raise place.error(
                f"{key}: {shown(entry)} is not a domain",
                fix='write domains as ["uni-example.de"] (no @, no scheme)',
            )
        out[name] = None
    return tuple(out)


def split_listen(value: str) -> tuple[str, int] | None:
    """("::1", 8080) for "[::1]:8080"; None when it is not host:port."""
    match = _LISTEN.match(value)
    if not match:
        return None
    host = match.group("v6") or match.group("host")
    port = int(match.group("port"))
    if not 1 <= port <= 65535 or not (match.group("v6") or _HOSTNAME.match(host)):
        return None
    return host, port


def listen(place: Place, key: str, value: str) -> str:
    if split_listen(value) is None:
        raise place.error(
            f"{key} = {shown(value)} is not host:port",
            fix='write it as "127.0.0.1:8080" (the reverse proxy connects there)',
        )
    return value


def iso_day(place: Place, key: str, value: str) -> str:
    """A date as "YYYY-MM-DD" ("" for none)."""
    if value == "":
        return value
    try:
        if len(value) == 10:
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise place.error(f"{key} = {shown(value)} is not a date", fix='write it as "YYYY-MM-DD"')


def likes(place: Place, key: str, entries: tuple[str, ...]) -> tuple[str, ...]:
    """Liked papers as arXiv ids: a bare id, an arXiv URL or a Hugging Face paper URL."""
    out: dict[str, None] = {}
    for entry in entries:
        paper_id = normalise_arxiv_id(entry)
        if paper_id is None:
            raise place.error(
                f"{key}: {shown(entry)} is not an arXiv id or paper URL",
                fix='write an id such as "2606.00467" or https://arxiv.org/abs/2606.00467',
            )
        out[paper_id] = None
    return tuple(out)
