"""The profile page's form: from a reader's settings to the fields shown, and from the fields
posted back to a Subscriber validated by the config's own rules (digest.config.parse_reader,
as every [[subscriber]] table and every imported reader is).

    fields = form_values(reader)                  # what the page shows
    edited, errors = read_profile(form, base, digest_settings)

`errors` maps a field to one sentence; when it is not empty nothing is to be saved. Only the
fields of digest.store.readers.EDITABLE come from the form: the name, the config's likes and
everything else stay the base's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from digest.config import DigestSettings, Subscriber
from digest.config.load import parse_reader, reader_table
from digest.config.values import Place
from digest.errors import ConfigError
from digest.schedule import WEEKDAYS
from digest.store.readers import EDITABLE

PLACE = Place(file="profile", table="page", base=Path("."))
LIST_FIELDS = ("exclude", "authors")
# The page pauses with its date field; frequency = "paused" is the config's way of saying it.
PAGE_FREQUENCIES = ("daily", "weekly")
WEEKDAY_NAMES = dict(
    zip(
        WEEKDAYS,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)


def form_values(reader: Subscriber) -> dict[str, str]:
    """The reader's settings as the form's fields show them."""
    return {
        "keywords": "\n".join(f"{term} = {weight:g}" for term, weight in reader.keywords.items()),
        "exclude": "\n".join(reader.exclude),
        "authors": "\n".join(reader.authors),
        "max_papers": str(reader.max_papers),
        "min_score": f"{reader.min_score:g}",
        "timezone": reader.timezone,
        "send_at": f"{reader.send_at:%H:%M}",
        "frequency": reader.frequency,
        "weekday": reader.weekday,
        "paused_until": reader.paused_until.isoformat() if reader.paused_until else "",
    }


def posted_values(form: Mapping[str, str]) -> dict[str, str]:
    """The form's fields as posted (to show them again with their errors), "" where absent."""
    return {name: form.get(name, "") for name in EDITABLE}


def read_profile(
    form: Mapping[str, str], base: Subscriber, settings: DigestSettings
) -> tuple[Subscriber | None, dict[str, str]]:
    """The reader `base` with the form's values, or None and why per field."""
    table = reader_table(base)
    errors: dict[str, str] = {}
    posted: dict[str, Any] = {}
    for name in EDITABLE:
        try:
            posted[name] = _field(name, form.get(name, ""))
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        try:  # each field checked alone, so each gets its own message
            parse_reader(PLACE, _with(table, name, posted[name]), settings, email=base.email)
        except ConfigError as exc:
            errors[name] = _sentence(exc, base.email)
    if errors:
        return None, errors
    try:
        merged = table
        for name, value in posted.items():
            merged = _with(merged, name, value)
        return parse_reader(PLACE, merged, settings, email=base.email), {}
    except ConfigError as exc:  # (each field passed alone: only a combination can fail here)
        return None, {"keywords": _sentence(exc, base.email)}


def _field(name: str, raw: str) -> Any:
    text = raw.replace("\r\n", "\n").strip()
    if name == "keywords":
        return _keywords(text)
    if name in LIST_FIELDS:
        return [line.strip() for line in text.split("\n") if line.strip()]
    if name == "max_papers":
        if not text.isdigit() or len(text) > 6:
            raise ValueError("Write a whole number, such as 10.")
        return int(text)
    if name == "min_score":
        try:
            return float(text) if len(text) <= 20 else float("nan")
        except ValueError:
            raise ValueError("Write a number from 0 to 1, such as 0.3.") from None
    if name == "frequency" and text not in PAGE_FREQUENCIES:
        raise ValueError("Choose daily or weekly.")
    if name == "paused_until" and not text:
        return None  # no pause
    if name == "weekday" and text not in WEEKDAYS:
        raise ValueError("Choose a day of the week.")
    return text


def _with(table: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    """`table` with `name` set to `value` (None: left out, as an empty field means)."""
    out = {k: v for k, v in table.items() if k != name}
    if value is not None:
        out[name] = value
    return out


def _keywords(text: str) -> dict[str, float]:
    """One keyword or phrase per line, optionally "= weight" (1 when left out)."""
    out: dict[str, float] = {}
    for line in text.split("\n"):
        term, sep, weight = line.rpartition("=")
        if not sep:
            term, weight = line, "1"
        term = " ".join(term.split())
        if not term:
            continue
        try:
            out[term] = float(weight.strip()) if len(weight.strip()) <= 20 else float("nan")
        except ValueError:
            raise ValueError(
                f"{term[:40]!r}: write a weight as a number, e.g. {term[:40]} = 2"
            ) from None
    return out


def _sentence(exc: ConfigError, email: str) -> str:
    """The config's message without the place (the page shows it next to the field)."""
    text = exc.message
    prefix = f"{PLACE.file}: {PLACE.table} ({email}): "
    text = text.removeprefix(prefix)
    return f"{text} ({exc.fix})" if exc.fix else text
