"""Readers in files: `digest subscribers import FILE` and `digest subscribers export`.

Two formats, told apart by the file's first character:

- JSON lines: one object per line, with the keys of a [[subscriber]] table
  (`{"email": "ada@example.org", "keywords": {"GNN": 3}, "timezone": "Europe/Berlin"}`);
- CSV with a header row naming those keys (email first). Lists are written with ";" between
  entries; a keyword may carry its weight as `term=weight` ("GNN=3;link prediction").

Every reader is validated exactly as a [[subscriber]] table of the config is, with [digest] for
the defaults; a problem names the file, the line and the key, and nothing is imported then.
The file is bounded (size, line length, number of readers) before anything else reads it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.config import Config, Place, Subscriber, parse_reader, reader_table
from digest.errors import ConfigError

MAX_BYTES = 64 * 1024 * 1024  # a file of readers: far more than 100,000 of them
MAX_LINE = 64 * 1024  # characters of one reader's line
MAX_READERS = 1_000_000
LIST_KEYS = ("exclude", "authors", "like")
NUMBER_KEYS = {"max_papers": int, "min_score": float, "upvote_boost": float}
COLUMNS = ("email", "name", "keywords", "exclude", "authors", "like", "timezone", "send_at",
           "max_papers", "min_score", "upvote_boost", "frequency", "weekday",
           "paused_until")  # fmt: skip


@dataclass(frozen=True)
class Imported:
    readers: list[Subscriber]
    in_config: list[str]  # listed in the config, which wins for them: left as they are


def read_readers(path: Path, config: Config) -> Imported:
    """The readers of a file, all validated; a ConfigError names the line of the first
    problem (and nothing is imported)."""
    text = _read_text(path)
    stripped = text.lstrip()
    rows = _json_lines(path, text) if stripped.startswith("{") else _csv_rows(path, text)
    listed = {s.email.lower() for s in config.subscribers}
    readers: dict[str, Subscriber] = {}
    in_config: list[str] = []
    for number, table in rows:
        if len(readers) >= MAX_READERS:
            raise ConfigError(f"{path.name}: more than {MAX_READERS:,} readers", fix="split it")
        place = Place(path.name, f"line {number}", config.path.resolve().parent)
        reader = parse_reader(place, table, config.digest)
        key = reader.email.lower()
        if key in readers:
            raise place.error(f"{reader.email} is in the file twice", fix="keep one line")
        if key in listed:
            in_config.append(reader.email)
            continue
        readers[key] = reader
    return Imported(list(readers.values()), in_config)


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(
                f"{path.name} is {size:,} bytes; at most {MAX_BYTES:,} are read",
                fix="split the file",
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if b"\x00" in raw[:65536]:
        raise ConfigError(f"{path.name} is not a text file", fix="export CSV or JSON lines")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path.name}: line {line} is not UTF-8", fix="save it as UTF-8"
        ) from None


def _json_lines(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        _bounded(path, number, line)
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:
            message = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise ConfigError(
                f"{path.name}: line {number}: not JSON ({message})",
                fix="write one JSON object per line",
            ) from None
        if not isinstance(value, dict):
            raise ConfigError(
                f"{path.name}: line {number}: not a JSON object",
                fix='write {"email": "...", ...} on each line',
            )
        yield number, value


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), 1):
        _bounded(path, number, line)
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise ConfigError(f"{path.name}: line 1: {exc}", fix="write a CSV header row") from None
    if "email" not in header:
        raise ConfigError(
            f"{path.name}: line 1: the header has no email column",
            fix=f"name the columns, e.g. {','.join(COLUMNS[:3])}",
        )
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            number = reader.line_num
            if len(row) != len(header):
                raise ConfigError(
                    f"{path.name}: line {number}: {len(row)} fields, the header has {len(header)}",
                    fix="quote fields that hold commas",
                )
            yield number, _csv_table(path, number, dict(zip(header, row, strict=True)))
    except csv.Error as exc:
        raise ConfigError(
            f"{path.name}: line {reader.line_num}: {exc}", fix="check its quotes"
        ) from None


def _csv_table(path: Path, number: int, row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the [[subscriber]] table it stands for (empty cells are not set)."""
    table: dict[str, Any] = {}
    for key, cell in row.items():
        cell = cell.strip()
        if not cell:
            continue
        if key == "keywords":
            table[key] = _keywords(path, number, cell)
        elif key in LIST_KEYS:
            table[key] = [v.strip() for v in cell.split(";") if v.strip()]
        elif key in NUMBER_KEYS:
            try:
                table[key] = NUMBER_KEYS[key](cell)
            except ValueError:
                table[key] = cell  # the config's check names it
        else:
            table[key] = cell
    return table


def _keywords(path: Path, number: int, cell: str) -> dict[str, float] | list[str]:
    terms = [t.strip() for t in cell.split(";") if t.strip()]
    if not any("=" in t for t in terms):
        return terms
    weights: dict[str, float] = {}
    for term in terms:
        name, _, weight = term.rpartition("=") if "=" in term else (term, "", "1")
        try:
            weights[name.strip()] = float(weight)
        except ValueError:
            raise ConfigError(
                f"{path.name}: line {number}: keywords: the weight of {name.strip()!r} is not a "
                "number",
                fix='write "term=3;other term"',
            ) from None
    return weights


def _bounded(path: Path, number: int, line: str) -> None:
    if len(line) > MAX_LINE:
        raise ConfigError(
            f"{path.name}: line {number} is {len(line):,} characters long; at most "
            f"{MAX_LINE:,} are read",
            fix="one reader per line",
        )


def export_jsonl(readers: Sequence[Subscriber]) -> Iterator[str]:
    """One JSON line per reader, as `import` reads it back."""
    for reader in readers:
        yield json.dumps(reader_table(reader), ensure_ascii=False)


def export_csv(readers: Sequence[Subscriber]) -> Iterator[str]:
    """A CSV header and one row per reader, as `import` reads it back."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in readers:
        keywords = ";".join(f"{term}={weight:g}" for term, weight in r.keywords.items())
        writer.writerow(
            [
                r.email,
                r.name,
                keywords,
                ";".join(r.exclude),
                ";".join(r.authors),
                ";".join(r.like),
                r.timezone,
                f"{r.send_at:%H:%M}",
                r.max_papers,
                r.min_score,
                r.upvote_boost,
                r.frequency,
                r.weekday,
                r.paused_until.isoformat() if r.paused_until else "",
            ]  # fmt: skip
        )
    yield out.getvalue().rstrip("\n")
