"""What the profile page reads and writes: a reader's row (any origin), their page edits, the
papers they imported, and their recent digests (a part of Store).

A page edit is kept twice on purpose: in profile_edits (only the fields that differ from the
reader's base: a config reader's [[subscriber]] table, which each sync applies them over while
[web] profile_edit = true) and in the reader's row at once, so the next digest has it even
before the next sync.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.clock import iso
from digest.config import Subscriber
from digest.models import Paper
from digest.store.db import Database
from digest.store.readers import READER_COLUMNS, profile_json, reader_from_row


@dataclass(frozen=True)
class ReaderRow:
    """A reader as the state holds them, with where they came from."""

    reader: Subscriber
    origin: str  # "config" | "signup" | "import"
    active: bool
    unsubscribed: bool


@dataclass(frozen=True)
class ImportedPaper:
    id: str
    title: str
    abstract: str = ""


class ProfileStore:
    """The profile_edits and imported_papers tables, and the reads the profile page needs."""

    db: Database

    def reader_row(self, email: str) -> ReaderRow | None:
        row = self.db.execute(
            f"SELECT {READER_COLUMNS}, origin, active, unsubscribed_at FROM subscribers "
            "WHERE subscriber = ?",
            (email.lower(),),
        ).fetchone()
        if row is None:
            return None
        reader = reader_from_row(row[:8])
        return ReaderRow(reader, str(row[8]), bool(row[9]), row[10] is not None)

    def page_edits(self, email: str) -> dict[str, object]:
        row = self.db.execute(
            "SELECT edits FROM profile_edits WHERE subscriber = ?", (email.lower(),)
        ).fetchone()
        edits = json.loads(row[0]) if row else {}
        return edits if isinstance(edits, dict) else {}

    def save_page_edits(
        self, edited: Subscriber, edits: dict[str, object], *, now: datetime
    ) -> None:
        """Keep the reader's page edits and put `edited` (their settings with the edits) in
        their row, in one transaction."""
        key, stamp = edited.email.lower(), iso(now)
        text = json.dumps(edits, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO profile_edits (subscriber, edits, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (subscriber) DO UPDATE SET edits = excluded.edits, "
                "updated_at = excluded.updated_at",
                (key, text, stamp),
            )
            paused = edited.paused_until.isoformat() if edited.paused_until else ""
            db.execute(
                "UPDATE subscribers SET profile = ?, timezone = ?, send_at = ?, updated_at = ?, "
                # a new frequency or weekday is a new schedule: it owes nothing before now
                "schedule_since = CASE WHEN frequency <> ? OR weekday <> ? THEN ? "
                "ELSE schedule_since END, frequency = ?, weekday = ?, paused_until = ? "
                "WHERE subscriber = ?",
                (
                    profile_json(edited),
                    edited.timezone,
                    f"{edited.send_at:%H:%M}",
                    stamp,
                    edited.frequency,
                    edited.weekday,
                    stamp,
                    edited.frequency,
                    edited.weekday,
                    paused,
                    key,
                ),
            )

    def save_imported_papers(self, papers: Sequence[ImportedPaper], *, now: datetime) -> None:
        """Keep the title and abstract of imported papers (a paper imported twice keeps the
        first text that had an abstract)."""
        rows = [(p.id, p.title, p.abstract, iso(now)) for p in papers if p.title]
        if not rows:
            return
        with self.db.transaction() as db:
            db.executemany(
                "INSERT INTO imported_papers (paper_id, title, abstract, added_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (paper_id) DO UPDATE SET "
                "title = excluded.title, abstract = excluded.abstract "
                "WHERE imported_papers.abstract = ''",
                rows,
            )

    def record_likes(self, email: str, paper_ids: Sequence[str], *, now: datetime) -> None:
        """Likes of these papers, in one transaction (an import); as record_feedback, the
        latest word on a paper replaces the earlier one."""
        rows = [(email.lower(), pid, "like", iso(now)) for pid in paper_ids]
        with self.db.transaction() as db:
            db.executemany(
                "INSERT INTO feedback (subscriber, paper_id, kind, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (subscriber, paper_id) DO UPDATE SET kind = excluded.kind, "
                "created_at = excluded.created_at",
                rows,
            )

    def imported_papers(self, ids: Iterable[str]) -> dict[str, Paper]:
        """Imported papers as the ranking can embed them (title and abstract only)."""
        rows = self.db.select_in(
            "SELECT paper_id, title, abstract FROM imported_papers WHERE paper_id IN ({marks})",
            ids,
        )
        return {pid: Paper(id=pid, title=title, abstract=abstract) for pid, title, abstract in rows}

    def recent_digests(self, email: str, limit: int = 10) -> list[str]:
        """The dates of this reader's latest sent digests whose bytes are kept, newest first."""
        rows = self.db.execute(
            "SELECT digest_date FROM digests WHERE subscriber = ? AND status = 'sent' "
            "AND message IS NOT NULL ORDER BY digest_date DESC LIMIT ?",
            (email.lower(), limit),
        )
        return [str(day) for (day,) in rows]

    def feedback_with_titles(self, email: str) -> list[tuple[str, str, str]]:
        """This reader's likes and dislikes, newest first: (paper id, kind, title or "")."""
        rows = self.db.execute(
            "SELECT f.paper_id, f.kind, COALESCE(i.title, '') FROM feedback f "
            "LEFT JOIN imported_papers i ON i.paper_id = f.paper_id "
            "WHERE f.subscriber = ? ORDER BY f.created_at DESC, f.paper_id",
            (email.lower(),),
        ).fetchall()
        known = self.db.select_in(  # titles of the papers the sources listed
            "SELECT id, data FROM papers WHERE id IN ({marks})", [r[0] for r in rows]
        )
        titles = {pid: str(json.loads(data).get("title", "")) for pid, data in known}
        return [(pid, kind, titles.get(pid) or title) for pid, kind, title in rows]
