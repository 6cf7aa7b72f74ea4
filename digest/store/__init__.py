"""The state: papers in the order first seen, readers, the send log, runs and sources,
embeddings. The only place with SQL.

    with Store.open(path) as store:         # creating and migrating the file if needed
        store.record_papers(papers, now=now)
        store.begin_send(...)

Each part of the state is its own module (papers, readers, sendlog, runs, embeddings) over one
Database (db.py); Store puts them together. Every write is one short transaction, so a
process killed at any point leaves the state consistent: a digest is "sending" before the SMTP
transaction starts and "sent" right after it ended, and a reader's watermark is derived from
their settled digests, never stored apart.
"""

from __future__ import annotations

from pathlib import Path

from digest.location import BadLocation, StateLocation
from digest.models import Paper
from digest.store.backends import copy_of_database, open_database
from digest.store.db import Database
from digest.store.embeddings import EmbeddingStore
from digest.store.papers import PaperStore, paper_from_json, paper_to_json
from digest.store.profiles import ImportedPaper, ProfileStore, ReaderRow
from digest.store.readers import ReaderListing, ReaderProfiles, ReaderSchedule, ReaderStore
from digest.store.runs import RunRecord, RunStore, SourceState
from digest.store.sendlog import (
    KEEP_SENT_MESSAGES_DAYS,
    OPEN,
    SETTLED,
    DigestRecord,
    DigestStatus,
    LoggedMail,
    Recorder,
    Resend,
    SendLogStore,
    due_now,
    pack_message,
)
from digest.store.signups import Signup, SignupDecision, SignupMail, SignupStore
from digest.store.workers import ClaimLost, ClaimRecord, WorkerRecord, WorkerStore

__all__ = [
    "KEEP_SENT_MESSAGES_DAYS",
    "OPEN",
    "SETTLED",
    "BadLocation",
    "ClaimLost",
    "ClaimRecord",
    "Database",
    "DigestRecord",
    "DigestStatus",
    "ImportedPaper",
    "LoggedMail",
    "Recorder",
    "Resend",
    "ReaderListing",
    "ReaderRow",
    "ReaderSchedule",
    "RunRecord",
    "Signup",
    "SignupDecision",
    "SignupMail",
    "SourceState",
    "StateLocation",
    "WorkerRecord",
    "Store",
    "due_now",
    "pack_message",
    "paper_from_json",
    "paper_to_json",
]


class Store(
    PaperStore,
    ReaderStore,
    ReaderProfiles,
    ProfileStore,
    SendLogStore,
    WorkerStore,
    RunStore,
    EmbeddingStore,
    SignupStore,
):
    """One open state. Use `Store.open(path)`, or `Store.open_copy(path)` for a dry run."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._candidate_cache: dict[int, Paper] = {}

    @classmethod
    def open(cls, location: StateLocation | Path, *, create: bool = True) -> Store:
        """Open (creating and migrating if needed) the state: a SQLite file or a PostgreSQL
        database. `create=False`: a SQLite file that is gone is an error, not a new state."""
        return cls(open_database(location, create=create))

    @classmethod
    def open_copy(cls, location: StateLocation | Path) -> Store:
        """The state to work on and throw away, for --dry-run and preview: the whole run works
        as usual against it, and nothing it writes reaches the real state."""
        return cls(copy_of_database(location))

    @property
    def path(self) -> Path | None:
        return self.db.path

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def candidates(
        self,
        subscriber: str,
        *,
        upto_seq: int,
        sealed: list[DigestRecord] | None = None,
    ) -> list[Paper]:
        """Papers this subscriber has not been offered yet, oldest first: first seen after
        their watermark (before their first digest: after their start point), not in a digest
        they were sent, and not held by a sealed digest (`sealed`: the subscriber's
        sealed_digests, when the caller has read them already)."""
        key = subscriber.lower()
        floors = [m for m in (self.watermark(key), self.subscriber_start(key)) if m is not None]
        if sealed is None:
            sealed = self.sealed_digests(key)
        reserved = [pid for record in sealed for pid in record.paper_ids]
        return self.papers_after(
            key, floor=max(floors, default=0), upto_seq=upto_seq, reserved=reserved
        )
