"""Load the TOML config and validate it into the typed, frozen objects of digest.config.schema.

Every problem is a ConfigError naming the file, the place (table and entry) and the key, so the
user can go straight to it. Unknown keys are errors: a typo must not silently mean "default".
One generic reader (read_settings) reads every table through the Settings its fields declare;
the table functions here add only what spans keys (defaults that follow another key, keys
that must not be there, duplicates).
"""

from __future__ import annotations

import difflib
import functools
import os
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, Field, fields, replace
from pathlib import Path
from typing import Any

from digest.config import values
from digest.config.schema import (
    SECURITY_PORTS,
    SETTING,
    SOURCE_URLS,
    Config,
    DeliveryConfig,
    DigestSettings,
    Setting,
    SourceConfig,
    Subscriber,
    WebConfig,
)
from digest.config.values import Place, shown
from digest.errors import ConfigError
from digest.location import StateLocation

DEFAULT_CONFIG_NAME = "digest.toml"
TABLES = ("digest", "source", "delivery", "subscriber", "web")  # the top level's keys


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
        # utf-8-sig: an editor's byte order mark in front is dropped, not a syntax error.
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not UTF-8 text", fix="save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: invalid TOML: {exc}", fix="correct the syntax") from None
    except RecursionError:  # tomllib reads nested arrays and tables recursively
        raise ConfigError(
            f"{path.name}: arrays or tables are nested too deeply to read",
            fix="a config nests a few levels at most: look for a long run of [ or {",
        ) from None
    return parse_config(data, path)


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    """Validate an already-parsed TOML document. `path` anchors relative paths and messages."""
    top = Place(path.name, "top level", path.resolve().parent)
    check_keys(top, data, TABLES)
    digest = _digest(top.at("[digest]"), data.get("digest", {}))
    sources = _sources(top, data.get("source"))
    delivery = _delivery(top.at("[delivery]"), data.get("delivery", {}))
    subscribers = _subscribers(top, data.get("subscriber", []), digest)
    web = None
    if "web" in data:
        web = _web(top.at("[web]"), data["web"])
        if digest.unsubscribe_url:
            raise top.at("[digest]").error(
                "unsubscribe_url and [web] both give the unsubscribe link",
                fix="remove unsubscribe_url: [web] makes signed one-click links itself",
            )
    nobody = f"{path.name}: no [[subscriber]]: nobody will get a digest (fix: add one)"
    return Config(
        path=path,
        digest=digest,
        sources=sources,
        delivery=delivery,
        subscribers=subscribers,
        warnings=() if subscribers else (nobody,),
        web=web,
    )


def _digest(place: Place, table: Any) -> DigestSettings:
    digest = DigestSettings(**read_settings(place, table, DigestSettings))
    if digest.state_password_env:
        if not digest.state.is_postgres:
            raise place.error(
                "state_password_env is set but the state is a SQLite file",
                fix="remove state_password_env, or set state to a postgresql:// URL",
            )
        digest = replace(
            digest, state=replace(digest.state, password_env=digest.state_password_env)
        )
    return digest


def check_secrets(config: Config) -> None:
    """The secrets a real send needs are in the environment (not checked on load: `status` and
    `preview` need none). Raises ConfigError naming the variable."""
    if config.delivery.method != "smtp":
        return
    try:
        config.delivery.smtp_password()
    except ConfigError as exc:
        raise ConfigError(f"{config.path.name}: {exc.message}", fix=exc.fix) from None


# --- the generic reader ----------------------------------------------------------------------


@functools.cache  # a table's Settings never change; a config may hold thousands of tables
def _settings(cls: type) -> tuple[tuple[Field[Any], Setting], ...]:
    return tuple((f, f.metadata[SETTING]) for f in fields(cls) if SETTING in f.metadata)


@functools.cache
def _known_keys(cls: type) -> tuple[str, ...]:
    return tuple(sorted(s.key or f.name for f, s in _settings(cls)))


def check_keys(place: Place, table: Mapping[str, Any], allowed: type | tuple[str, ...]) -> None:
    """Every key is one the table knows; an unknown one names the closest known key."""
    known = _known_keys(allowed) if isinstance(allowed, type) else tuple(sorted(allowed))
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1) if len(key) <= 100 else []
            fix = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise place.error(f"unknown key {shown(key)}", fix=fix)


def read_settings(
    place: Place,
    table: Any,
    cls: type,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of cls read from a TOML table: each field that declares a Setting,
    checked against it, or its default (from `defaults`, else the field's own)."""
    table = _table(place, table)
    check_keys(place, table, cls)
    return {f.name: _read(place, table, f, spec, defaults or {}) for f, spec in _settings(cls)}


def read_field(place: Place, table: Any, cls: type, name: str) -> Any:
    """One field of cls, read alone: for the keys whose value other defaults depend on."""
    [(f, spec)] = [(f, s) for f, s in _settings(cls) if f.name == name]
    return _read(place, _table(place, table), f, spec, {})


def _read(
    place: Place,
    table: Mapping[str, Any],
    f: Field[Any],
    spec: Setting,
    defaults: Mapping[str, Any],
) -> Any:
    key = spec.key or f.name
    if key not in table:
        if spec.required:
            raise place.error(f"{key} is missing", fix=spec.required)
        if f.name in defaults:
            default = defaults[f.name]
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = f.default
        # A default path, like a written one, is relative to the config file.
        if isinstance(default, StateLocation) and default.path is not None:
            return StateLocation(path=place.base / default.path)
        return place.base / default if isinstance(default, Path) else default
    value = spec.read(place, key, table[key])
    _check_bounds(place, key, value, spec)
    return spec.check(place, key, value) if spec.check else value


def _check_bounds(place: Place, key: str, value: Any, spec: Setting) -> None:
    if spec.choices and value not in spec.choices:
        raise place.error(
            f"{key} = {shown(value)} is not one of {', '.join(spec.choices)}",
            fix=f"set {key} to one of {', '.join(repr(c) for c in spec.choices)}",
        )
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = spec.low, spec.high
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{'...' if low is None else low} to {'...' if high is None else high}"
            raise place.error(f"{key} = {value} is out of range ({bounds})", fix=spec.fix)
    elif isinstance(value, float):
        if spec.low is not None and value < spec.low:
            raise place.error(f"{key} = {value:g} must be at least {spec.low:g}", fix=spec.fix)
        if spec.above is not None and value <= spec.above:
            raise place.error(f"{key} = {value:g} must be above {spec.above:g}", fix=spec.fix)
        if spec.high is not None and value > spec.high:
            raise place.error(f"{key} = {value:g} must be at most {spec.high:g}", fix=spec.fix)
    else:
        _check_size(place, key, value, spec)


def _check_size(place: Place, key: str, value: Any, spec: Setting) -> None:
    """A text's length, a list's or table's entries and the length of each."""
    many = isinstance(value, tuple | Mapping)
    entries = list(value) if many else [value]
    if spec.most is not None and len(entries) > spec.most:
        raise place.error(
            f"{key} has {len(entries):,} entries; at most {spec.most:,} are allowed",
            fix=f"keep the {spec.most:,} that matter most",
        )
    for entry in entries:
        if isinstance(entry, str) and len(entry) > spec.longest:
            what = f"{key}: {shown(entry)}" if many else f"{key} = {shown(entry)}"
            raise place.error(
                f"{what} is {len(entry):,} characters long; at most {spec.longest:,} are allowed",
                fix="shorten it",
            )
    if isinstance(value, Mapping) and spec.high is not None:  # a table of name = number
        for name, number in value.items():
            if number > spec.high:
                raise place.error(
                    f"{key}: {shown(name)} = {number:g} must be at most {spec.high:g}",
                    fix=spec.fix,
                )


def _table(place: Place, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise place.error(f"must be a table, not {type(value).__name__}")
    return value


# --- the tables ------------------------------------------------------------------------------


def _sources(top: Place, listed: Any) -> tuple[SourceConfig, ...]:
    if listed is None:
        listed = [{"type": "hf-papers"}]
    place = top.at("[[source]]")
    if not isinstance(listed, list) or not listed:
        raise place.error("must be one or more [[source]] tables")
    sources = tuple(_source(top.at(f"[[source]] #{i}"), t) for i, t in enumerate(listed, 1))
    names = [s.name for s in sources]
    for name in names:
        if names.count(name) > 1:
            raise place.error(
                f"two sources are named {shown(name)}", fix="give each source a unique name"
            )
    return sources


def _source(place: Place, table: Any) -> SourceConfig:
    check_keys(place, _table(place, table), SourceConfig)
    kind = read_field(place, table, SourceConfig, "type")
    got = read_settings(place, table, SourceConfig, {"url": SOURCE_URLS.get(kind, ""), "name": ""})
    if not got["url"]:
        raise place.error("url is missing", fix='a feed needs url = "https://..." or a file')
    if not got["name"]:
        got["name"] = values.header_text(place, "name", _default_source_name(kind, got["url"]))
    return SourceConfig(**got)


def _default_source_name(kind: str, url: str) -> str:
    if kind != "feed":
        return kind
    tail = url.removeprefix("http://").removeprefix("https://").rstrip("/")
    return f"feed:{tail}"


def _delivery(place: Place, table: Any) -> DeliveryConfig:
    if "password" in _table(place, table):
        raise place.error(
            "password must not be in the config file",
            fix='set password_env = "DIGEST_SMTP_PASSWORD" and export that variable',
        )
    check_keys(place, table, DeliveryConfig)
    security = read_field(place, table, DeliveryConfig, "security")
    method = "smtp" if table.get("host") else "outbox"
    got = read_settings(
        place, table, DeliveryConfig, {"method": method, "port": SECURITY_PORTS[security]}
    )
    if got["method"] == "smtp" and not got["host"]:
        raise place.error('method = "smtp" needs host', fix='set host, or method = "outbox"')
    if got["method"] == "smtp" and got["username"] and not got["password_env"]:
        raise place.error(
            "username is set but password_env is not",
            fix='set password_env = "DIGEST_SMTP_PASSWORD" and export that variable',
        )
    return DeliveryConfig(**got)


def _subscribers(top: Place, listed: Any, digest: DigestSettings) -> tuple[Subscriber, ...]:
    if not isinstance(listed, list):
        raise top.at("[[subscriber]]").error("must be an array of [[subscriber]] tables")
    subscribers: dict[str, Subscriber] = {}
    for i, table in enumerate(listed, 1):
        place = top.at(f"[[subscriber]] #{i}")
        email = read_field(place, table, Subscriber, "email")
        if email.lower() in subscribers:
            raise place.error(f"email {shown(email)} is listed twice", fix="remove the copy")
        subscribers[email.lower()] = parse_reader(place, table, digest, email=email)
    return tuple(subscribers.values())


def parse_reader(
    place: Place, table: Any, digest: DigestSettings, *, email: str | None = None
) -> Subscriber:
    """One reader's table, validated as a [[subscriber]] table is (the config, and every
    reader imported or signed up): [digest] gives the defaults. Raises ConfigError."""
    if email is None:
        email = read_field(place, table, Subscriber, "email")
    place = place.at(f"{place.table} ({email})")  # every later message says whose entry
    inherited = {f.name: getattr(digest, f.name) for f, s in _settings(Subscriber) if s.inherit}
    reader = Subscriber(**read_settings(place, table, Subscriber, inherited))
    if reader.frequency == "paused" and reader.paused_until is None:
        raise place.error(
            'frequency = "paused" needs the date it ends',
            fix='add paused_until = "YYYY-MM-DD" (digests start again the day after)',
        )
    return reader


def reader_table(sub: Subscriber) -> dict[str, Any]:
    """The reader as a [[subscriber]] table: what parse_reader reads back to the same reader
    (paused_until only when set: a table has no null date)."""
    return {
        "email": sub.email,
        "name": sub.name,
        "keywords": dict(sub.keywords),
        "exclude": list(sub.exclude),
        "authors": list(sub.authors),
        "like": list(sub.like),
        "max_papers": sub.max_papers,
        "min_score": sub.min_score,
        "upvote_boost": sub.upvote_boost,
        "timezone": sub.timezone,
        "send_at": f"{sub.send_at:%H:%M}",
        "frequency": sub.frequency,
        "weekday": sub.weekday,
        **({"paused_until": sub.paused_until.isoformat()} if sub.paused_until else {}),
    }


def _web(place: Place, table: Any) -> WebConfig:
    if "secret" in _table(place, table):
        raise place.error(
            "the secret must not be in the config file",
            fix='set secret_env = "DIGEST_WEB_SECRET" and export that variable',
        )
    web = WebConfig(**read_settings(place, table, WebConfig))
    if web.signup == "domains" and not web.allowed_domains:
        raise place.error(
            'signup = "domains" needs allowed_domains',
            fix='add allowed_domains = ["uni-example.de"], or set signup = "open"',
        )
    if web.allowed_domains and web.signup != "domains":
        raise place.error(
            f'allowed_domains is set but signup = "{web.signup}"',
            fix='set signup = "domains" to accept only those domains, or remove allowed_domains',
        )
    return web
