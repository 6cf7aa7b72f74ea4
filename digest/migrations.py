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
        ALTER TABLE digests ADD COLUMN message BLOB;

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
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date. Returns the schema version now in force."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    current = int(row[0])
    if current > len(MIGRATIONS):
        raise StateError(
            f"the state file has schema version {current}, newer than this program knows "
            f"({len(MIGRATIONS)})",
            fix="upgrade paper digest, or point [digest] state at another file",
        )
    for version, (name, sql) in enumerate(MIGRATIONS, 1):
        if version <= current:
            continue
        # executescript commits any open transaction first, so wrap the whole step ourselves.
        conn.executescript(
            "BEGIN IMMEDIATE;\n"
            + sql
            + f"\nINSERT INTO schema_migrations VALUES ({version}, '{name}', "
            f"'{datetime.now(UTC).isoformat(timespec='seconds')}');\nCOMMIT;"
        )
        current = version
    return current
