"""Papers in the state, in the order this state first saw them.

`seq` orders papers by first sight: "new since" compares seq, never a paper's own dates, which
are often wrong or missing. A reader's candidates are the papers after their watermark (or,
before their first digest, after the start point fixed when they were first seen), minus any
paper they were sent or that a sealed digest of theirs holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from datetime import datetime

from digest.clock import iso
from digest.models import Paper
from digest.store.db import Database

_PAPER_FIELDS = {f.name for f in fields(Paper)}


def paper_to_json(paper: Paper) -> str:
    return json.dumps(asdict(paper), ensure_ascii=False, separators=(",", ":"))


def paper_from_json(text: str) -> Paper:
    data = json.loads(text)
    # Ignore fields a newer version may have written, so a downgrade still reads the file.
    return Paper(**{k: v for k, v in data.items() if k in _PAPER_FIELDS})


class PaperStore:
    """The papers table (a part of Store)."""

    db: Database
    # Parsed papers by seq for candidates(): every subscriber of a run reads the same ones.
    # Emptied whenever papers are written. Callers must not mutate what it returns.
    _candidate_cache: dict[int, Paper]

    def get_papers(self, ids: Iterable[str]) -> dict[str, Paper]:
        rows = self.db.select_in("SELECT id, data FROM papers WHERE id IN ({marks})", ids)
        return {pid: paper_from_json(data) for pid, data in rows}

    def record_papers(
        self,
        papers: Iterable[Paper],
        *,
        now: datetime,
        validators: dict[str, tuple[str | None, str | None]] | None = None,
    ) -> int:
        """Insert new papers (first seen now) and refresh known ones, in one transaction.

        `validators` (source name -> (etag, last_modified)) is saved in the same transaction,
        so a conditional GET is only ever answered 304 for content that is in the store.
        Returns how many papers were new.
        """
        stamp = iso(now)
        new = 0
        self._candidate_cache.clear()
        with self.db.transaction() as db:
            for paper in papers:
                data = paper_to_json(paper)
                if db.execute("SELECT 1 FROM papers WHERE id = ?", (paper.id,)).fetchone():
                    db.execute(
                        "UPDATE papers SET data = ?, last_seen = ? WHERE id = ?",
                        (data, stamp, paper.id),
                    )
                else:
                    db.execute(
                        "INSERT INTO papers (id, data, first_seen, last_seen) VALUES (?, ?, ?, ?)",
                        (paper.id, data, stamp, stamp),
                    )
                    new += 1
            for name, (etag, last_modified) in (validators or {}).items():
                db.execute(
                    "INSERT INTO sources (name, etag, last_modified, last_ok, last_attempt) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET etag = excluded.etag, "
                    "last_modified = excluded.last_modified, last_ok = excluded.last_ok, "
                    "last_attempt = excluded.last_attempt, last_error = ''",
                    (name, etag, last_modified, stamp, stamp),
                )
        return new

    def count_papers(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM papers").fetchone()[0])

    def max_seq(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM papers").fetchone()[0])

    def recent_papers(self, limit: int) -> list[Paper]:
        """The `limit` papers seen most recently first (the ranking's IDF background)."""
        rows = self.db.execute("SELECT data FROM papers ORDER BY seq DESC LIMIT ?", (limit,))
        return [paper_from_json(data) for (data,) in rows]

    def papers_first_seen_since(self, since: datetime) -> list[Paper]:
        """Papers first seen at or after `since`, oldest first."""
        rows = self.db.execute(
            "SELECT data FROM papers WHERE first_seen >= ? ORDER BY seq", (iso(since),)
        )
        return [paper_from_json(data) for (data,) in rows]

    def papers_first_seen_with(self, paper_id: str) -> list[Paper]:
        """The papers first seen on the (UTC) day `paper_id` was: its day's digest, roughly."""
        rows = self.db.execute(
            "SELECT data FROM papers WHERE substr(first_seen, 1, 10) = "
            "(SELECT substr(first_seen, 1, 10) FROM papers WHERE id = ?) ORDER BY seq",
            (paper_id,),
        )
        return [paper_from_json(data) for (data,) in rows]

    def papers_after(
        self, subscriber: str, *, floor: int, upto_seq: int, reserved: Sequence[str] = ()
    ) -> list[Paper]:
        """Papers with floor < seq <= upto_seq this subscriber was never sent, oldest first,
        without those `reserved` (held by a sealed digest of theirs)."""
        seqs = [
            seq
            for (seq,) in self.db.execute(
                "SELECT seq FROM papers WHERE seq > ? AND seq <= ? AND id NOT IN "
                "(SELECT paper_id FROM sent_papers WHERE subscriber = ?) ORDER BY seq",
                (floor, upto_seq, subscriber.lower()),
            )
        ]
        # Every subscriber of a run reads the same papers: parse each once, read only seqs.
        cache = self._candidate_cache
        missing = [seq for seq in seqs if seq not in cache]
        rows = self.db.select_in("SELECT seq, data FROM papers WHERE seq IN ({marks})", missing)
        for seq, data in rows:
            cache[seq] = paper_from_json(data)
        papers = [cache[seq] for seq in seqs]
        if reserved:
            held = set(reserved)
            papers = [p for p in papers if p.id not in held]
        return papers
