"""The SQLite schema, one script per migration. Append new ones at the end; never edit one
that has shipped (a state file records which it has run). digest/store/schema_postgres.py holds
the same steps for PostgreSQL, in the same order."""

from __future__ import annotations

SQLITE: list[tuple[str, str]] = [
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
    (
        "readers kept in the state, workers and their claims, one fetch per source, identity",
        """
        -- Readers live in the state: the config's [[subscriber]] tables are synced in at each
        -- run (origin 'config'); sign-ups and imports live here only. `profile` holds the
        -- reader's settings as JSON (keywords, exclude, authors, like, max_papers, ...).
        -- active = 0: no digest (removed from the config, or by the operator), history kept.
        ALTER TABLE subscribers ADD COLUMN name TEXT NOT NULL DEFAULT '';
        ALTER TABLE subscribers ADD COLUMN profile TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE subscribers ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
        ALTER TABLE subscribers ADD COLUMN send_at TEXT NOT NULL DEFAULT '07:00';
        ALTER TABLE subscribers ADD COLUMN origin TEXT NOT NULL DEFAULT 'config';
        ALTER TABLE subscribers ADD COLUMN active INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE subscribers ADD COLUMN updated_at TEXT;
        -- The claim on this reader's digest: the worker that works on it, until when (its
        -- heartbeat extends it). An expired claim was left by a dead worker: another takes it.
        ALTER TABLE subscribers ADD COLUMN claimed_by TEXT;
        ALTER TABLE subscribers ADD COLUMN claim_until TEXT;
        CREATE INDEX subscribers_claimed ON subscribers (claimed_by);
        CREATE INDEX subscribers_schedule ON subscribers (active, timezone, send_at);

        -- Each process that sends (a daemon, a send-now), seen alive at heartbeat_at.
        CREATE TABLE workers (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            role TEXT NOT NULL,
            started_at TEXT NOT NULL,
            heartbeat_at TEXT NOT NULL,
            stopped_at TEXT,
            last_run TEXT NOT NULL DEFAULT ''
        );

        -- One fetch per source at a time: the worker fetching it holds it until
        -- fetching_until; the others wait and reuse what it recorded (last_ids: the ids its
        -- last good fetch listed).
        ALTER TABLE sources ADD COLUMN last_ids TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE sources ADD COLUMN fetching_by TEXT;
        ALTER TABLE sources ADD COLUMN fetching_until TEXT;

        -- The state's identity: a daemon that finds another id (the state was replaced under
        -- it) stops rather than send every digest again.
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta (key, value) VALUES ('state_id', lower(hex(randomblob(16))));

        CREATE INDEX digests_by_date ON digests (digest_date, status);
        -- The worker that made the run (status tells a run in progress from a killed one).
        ALTER TABLE runs ADD COLUMN worker TEXT NOT NULL DEFAULT '';
        -- The order readers were added in (the web side reads the ones added since).
        ALTER TABLE subscribers ADD COLUMN added BIGINT NOT NULL DEFAULT 0;
        UPDATE subscribers SET added = rowid;
        CREATE INDEX subscribers_added ON subscribers (added);
        -- Each reader's own model, learnt from their thumbs (digest.rank.reader_model).
        CREATE TABLE reader_models (subscriber TEXT PRIMARY KEY, model BLOB NOT NULL);
        """,
    ),
    (
        "reader schedules: daily or weekly on a weekday, paused until a date",
        """
        -- How often a reader gets a digest (digest.schedule.Cadence): 'daily' or 'weekly' on
        -- `weekday` ('mon'..'sun', the reader's local day); none for local dates up to and
        -- including paused_until ('YYYY-MM-DD', or '' for none). schedule_since: when the reader
        -- joined or last changed frequency or weekday; a weekly send instant before it is not
        -- owed (the first weekly digest goes out on the next weekday, never at once).
        ALTER TABLE subscribers ADD COLUMN frequency TEXT NOT NULL DEFAULT 'daily';
        ALTER TABLE subscribers ADD COLUMN weekday TEXT NOT NULL DEFAULT 'mon';
        ALTER TABLE subscribers ADD COLUMN paused_until TEXT NOT NULL DEFAULT '';
        ALTER TABLE subscribers ADD COLUMN schedule_since TEXT NOT NULL DEFAULT '';
        UPDATE subscribers SET schedule_since = first_seen;
        """,
    ),
    (
        "profile page edits and imported likes",
        """
        -- What readers changed on the profile page (JSON of the changed fields): applied over
        -- a config reader's [[subscriber]] table at each sync while [web] profile_edit = true.
        CREATE TABLE profile_edits (
            subscriber TEXT PRIMARY KEY,
            edits TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        -- Papers a reader imported (likes) that the sources never listed: their title and
        -- abstract, so the ranking can embed them for that reader's likes.
        CREATE TABLE imported_papers (
            paper_id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            abstract TEXT NOT NULL DEFAULT '',
            added_at TEXT NOT NULL
        );
        """,
    ),
    (
        "sign-ups with double opt-in, blocked addresses, confirmation mails",
        """
        -- Sign-ups from the web side (double opt-in): a row per request that passed the
        -- checks; the reader is saved only when the link in its confirmation mail is
        -- confirmed (a POST). `reader`: the settings the form gave, as JSON.
        CREATE TABLE signups (
            id TEXT PRIMARY KEY,
            address TEXT NOT NULL,
            reader TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            confirmed_at TEXT,
            -- Its confirmation mail, under the send log's rules: the bytes fixed once built
            -- ('pending'), 'sending' committed before the SMTP transaction, 'sent' right after;
            -- an attempt whose outcome is unknown (sealed) is repeated byte for byte only.
            mail_status TEXT NOT NULL DEFAULT 'queued' CHECK (mail_status IN
                ('queued', 'pending', 'sending', 'sent', 'failed')),
            message_id TEXT NOT NULL DEFAULT '',
            message BLOB,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_code INTEGER,
            last_error TEXT NOT NULL DEFAULT '',
            next_try_at TEXT NOT NULL,
            claimed_by TEXT,
            claim_until TEXT,
            sealed INTEGER NOT NULL DEFAULT 0,
            sent_at TEXT
        );
        CREATE INDEX signups_address ON signups (address, created_at);
        CREATE INDEX signups_mail ON signups (mail_status, next_try_at);
        -- Addresses the operator blocked: no mail of any kind, no sign-up.
        CREATE TABLE blocked_addresses (address TEXT PRIMARY KEY, blocked_at TEXT NOT NULL);
        -- Sign-up requests and confirmation mails per address and UTC day (the daily cap).
        CREATE TABLE signup_requests (
            address TEXT NOT NULL,
            day TEXT NOT NULL,
            requests INTEGER NOT NULL DEFAULT 0,
            mails INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (address, day)
        );
        """,
    ),
]
