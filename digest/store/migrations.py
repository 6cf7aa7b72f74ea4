"""SQLite schema changes as an ordered list, each applied once and recorded.

Append new migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from digest.errors import StateError

MIGRATIONS: list[tuple[str, str]] = [
    (
        "create papers, digests, sent papers, sources and runs",
        """
        -- seq orders papers by when this store first saw them: "new since" compares seq,
        -- never dates, so a paper's own (often wrong or missing) dates cannot skip it.
        CREATE TABLE papers (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            data TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        );
        CREATE INDEX papers_first_seen ON papers (first_seen);

        -- One row per (subscriber, digest date): the send log and the idempotency key.
        -- upto_seq is the newest paper seq the digest covered; a subscriber's watermark is the
        -- largest upto_seq of their sent (or deliberately empty) digests.
        CREATE TABLE digests (
            subscriber TEXT NOT NULL,
            digest_date TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN
                ('pending', 'sending', 'sent', 'failed', 'empty', 'superseded')),
            message_id TEXT NOT NULL DEFAULT '',
            upto_seq INTEGER NOT NULL DEFAULT 0,
            paper_ids TEXT NOT NULL DEFAULT '[]',
            attempts INTEGER NOT NULL DEFAULT 0,
            last_code INTEGER,
            last_error TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sent_at TEXT,
            PRIMARY KEY (subscriber, digest_date)
        );

        -- Every paper each subscriber was sent: a second guard against repeats.
        CREATE TABLE sent_papers (
            subscriber TEXT NOT NULL,
            paper_id TEXT NOT NULL,
            digest_date TEXT NOT NULL,
            PRIMARY KEY (subscriber, paper_id)
        );

        CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            etag TEXT,
            last_modified TEXT,
            last_ok TEXT,
            last_error TEXT NOT NULL DEFAULT '',
            last_attempt TEXT
        );

        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            command TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            exit_code INTEGER,
            summary TEXT NOT NULL DEFAULT ''
        );
        """,
    ),
    (
        "subscriber start points and unsubscribes, feedback, stored digest bytes, forced resends",
        """
        -- Where a subscriber's papers start, fixed when the subscriber is first seen: a first
        -- digest that keeps failing never lets its papers fall out of the lookback window.
        CREATE TABLE subscribers (
            subscriber TEXT PRIMARY KEY,
            start_seq INTEGER NOT NULL,
            first_seen TEXT NOT NULL,
            -- Set when the reader unsubscribed from the web side: every run skips them, even
            -- though the config still lists them (the config says who may subscribe).
            unsubscribed_at TEXT
        );

        -- The reader's likes and dislikes (the web side's "more / less like this"); the
        -- config's `like` adds to these at ranking time. The latest word on a paper wins.
        CREATE TABLE feedback (
            subscriber TEXT NOT NULL,
            paper_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('like', 'dislike')),
            created_at TEXT NOT NULL,
            PRIMARY KEY (subscriber, paper_id)
        );

        -- The exact wire bytes of a built digest: a send whose outcome is unknown is repeated
        -- byte for byte (same Message-ID, Date and papers), and a sent one can be viewed.
        -- Stored zlib-compressed; dropped from sent digests after a while (store.prune).
        ALTER TABLE digests ADD COLUMN message BLOB;
        -- 1 once an attempt's outcome was unknown (the run died mid-send, or the connection
        -- dropped after the message data was sent): the server may have delivered it, so
        -- these bytes are final and its papers are never put in another digest.
        ALTER TABLE digests ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;

        -- `send-now --force`: each forced resend is an attempt of its own, beside the digest it
        -- repeats; it never changes that digest, the watermark or what counts as offered.
        CREATE TABLE resends (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            subscriber TEXT NOT NULL,
            digest_date TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
            message_id TEXT NOT NULL,
            message BLOB,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_code INTEGER,
            last_error TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sent_at TEXT
        );
        """,
    ),
    (
        "paper embeddings for the semantic ranking",
        """
        -- Each paper's sentence embedding, computed once (normalised float32 bytes). `model`
        -- names the model that made it: another model means embedding the paper again.
        CREATE TABLE paper_embeddings (
            paper_id TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            vector BLOB NOT NULL
        );
        """,
    ),
    (
        "profile embeddings kept across runs",
        """
        -- A reader profile's embedding (normalised float32 bytes), keyed by the profile's
        -- text: computed once when a profile is first ranked, not again every run.
        CREATE TABLE profile_embeddings (
            text TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            vector BLOB NOT NULL
        );
        """,
    ),
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date. Returns the schema version now in force.

    Each step runs in one write transaction that re-reads the version first, so two processes
    opening the same file at once (a run and the web side) never apply a step twice.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    current = _version(conn)
    _check_known(current)
    while current < len(MIGRATIONS):
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = _version(conn)  # another process may have got here first
            if current < len(MIGRATIONS):
                name, sql = MIGRATIONS[current]
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (current + 1, name, datetime.now(UTC).isoformat(timespec="seconds")),
                )
                current += 1
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current


def _version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    return int(row[0])


def _check_known(current: int) -> None:
    if current > len(MIGRATIONS):
        raise StateError(
            f"the state file has schema version {current}, newer than this program knows "
            f"({len(MIGRATIONS)})",
            fix="upgrade paper digest, or point [digest] state at another file",
        )


def _statements(sql: str) -> list[str]:
    """Split a migration's script into whole statements (run one by one in a transaction)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise ValueError(f"an incomplete statement in a migration: {buffer.strip()[:80]}")
    return statements
