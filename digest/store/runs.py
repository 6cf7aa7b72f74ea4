"""What the state keeps about its runs and its sources (for `digest status`, and the
validators of conditional GETs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest.clock import iso
from digest.store.db import Database

_SOURCE_COLUMNS = "name, etag, last_modified, last_ok, last_error, last_attempt"


@dataclass(frozen=True)
class SourceState:
    name: str
    etag: str | None
    last_modified: str | None
    last_ok: str | None
    last_error: str
    last_attempt: str | None


@dataclass(frozen=True)
class RunRecord:
    id: int
    command: str
    started_at: str
    finished_at: str | None
    exit_code: int | None
    summary: str


class RunStore:
    """The runs and sources tables (a part of Store)."""

    db: Database

    # --- runs -------------------------------------------------------------------------------

    def start_run(self, command: str, *, now: datetime) -> int:
        with self.db.transaction() as db:
            row = db.execute(
                "INSERT INTO runs (command, started_at) VALUES (?, ?) RETURNING id",
                (command, iso(now)),
            ).fetchone()
        return int(row[0])

    def finish_run(self, run_id: int, *, exit_code: int, summary: str, now: datetime) -> None:
        with self.db.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, exit_code = ?, summary = ? WHERE id = ?",
                (iso(now), exit_code, summary, run_id),
            )

    def recent_runs(self, limit: int = 10) -> list[RunRecord]:
        rows = self.db.execute(
            "SELECT id, command, started_at, finished_at, exit_code, summary FROM runs "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [RunRecord(*r) for r in rows]

    # --- sources ----------------------------------------------------------------------------

    def sources(self) -> list[SourceState]:
        rows = self.db.execute(f"SELECT {_SOURCE_COLUMNS} FROM sources ORDER BY name")
        return [SourceState(*r) for r in rows]

    def source_state(self, name: str) -> SourceState | None:
        row = self.db.execute(
            f"SELECT {_SOURCE_COLUMNS} FROM sources WHERE name = ?", (name,)
        ).fetchone()
        return SourceState(*row) if row else None

    def record_source_error(self, name: str, error: str, *, now: datetime) -> None:
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO sources (name, last_error, last_attempt) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET last_error = excluded.last_error, "
                "last_attempt = excluded.last_attempt",
                (name, error, iso(now)),
            )

    def record_source_not_modified(self, name: str, *, now: datetime) -> None:
        stamp = iso(now)
        with self.db.transaction() as db:
            db.execute(
                "UPDATE sources SET last_ok = ?, last_attempt = ?, last_error = '' WHERE name = ?",
                (stamp, stamp, name),
            )
