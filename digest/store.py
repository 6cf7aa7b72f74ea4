"""The SQLite state: papers with when they were first seen, the send log, source validators, runs.

Every write is one short transaction, so a process killed at any point leaves the file
consistent: a digest is "sending" before the SMTP transaction starts and "sent" right after it
ended, and a subscriber's watermark is derived from their sent digests, never stored apart.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from digest.errors import StateError
from digest.migrations import migrate
from digest.models import Paper

_PAPER_FIELDS = {f.name for f in fields(Paper)}
# A digest in these states is done: its papers count as offered.
DONE_STATUSES = ("sent", "empty")
# A digest in these states was not delivered (yet): its papers roll into the next digest.
OPEN_STATUSES = ("pending", "sending", "failed")
# The columns a DigestRecord is read from (the stored message bytes are read on their own).
_DIGEST_COLUMNS = (
    "subscriber, digest_date, status, message_id, upto_seq, paper_ids, attempts, last_code, "
    "last_error, created_at, updated_at, sent_at, sealed"
)
_IN_CHUNK = 500  # keys per "IN (...)": under SQLite's limit on the variables of a statement
# How long the bytes of a sent digest are kept (for "view in browser"); open ones are kept.
KEEP_SENT_MESSAGES_DAYS = 30


@dataclass(frozen=True)
class DigestRecord:
    subscriber: str
    digest_date: str
    status: str
    message_id: str
    upto_seq: int
    paper_ids: tuple[str, ...]
    attempts: int
    last_code: int | None
    last_error: str
    created_at: str
    updated_at: str
    sent_at: str | None
    sealed: bool = False  # an attempt's outcome was unknown: these bytes are final

    @property
    def resend_due(self) -> bool:
        """Sent once with an unknown outcome and not confirmed since: repeat it exactly."""
        return self.sealed and self.status in ("pending", "sending")


@dataclass(frozen=True)
class Resend:
    """A `--force` send of a digest already sent, recorded beside it."""

    id: int
    subscriber: str
    digest_date: str
    status: str
    message_id: str
    attempts: int


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


def utc_now() -> datetime:
    return datetime.now(UTC)


def pack_message(message: bytes) -> bytes:
    """A digest's wire bytes as the send log keeps them (zlib at its fastest level: about a
    seventh of the size, 0.25 ms for a 70 KB digest)."""
    return zlib.compress(message, 1)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def paper_to_json(paper: Paper) -> str:
    return json.dumps(asdict(paper), ensure_ascii=False, separators=(",", ":"))


def paper_from_json(text: str) -> Paper:
    data = json.loads(text)
    # Ignore fields a newer version may have written, so a downgrade still reads the file.
    return Paper(**{k: v for k, v in data.items() if k in _PAPER_FIELDS})


class Store:
    """One open state file. Use `Store.open(path)` or `Store.open_copy(path)`."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None) -> None:
        self.conn = conn
        self.path = path
        # Parsed papers by seq for candidates(): every subscriber of a run reads the same ones.
        # Emptied whenever papers are written. Callers must not mutate what it returns.
        self._candidate_cache: dict[int, Paper] = {}

    # --- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating and migrating if needed) the state file at `path`."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: every commit survives a killed process; a power cut can lose
            # the last commits (README: Delivery guarantees), never corrupt the file.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"cannot use state file {str(path)!r}: {exc}",
                fix="point [digest] state at a writable SQLite file (a missing one is created)",
            ) from None
        except OSError as exc:
            raise StateError(
                f"cannot create state file {str(path)!r}: {exc.strerror}",
                fix="point [digest] state at a writable location",
            ) from None
        return cls(conn, path)

    @classmethod
    def open_copy(cls, path: Path) -> Store:
        """An in-memory copy of the state at `path`, for --dry-run and preview.

        The whole run works as usual against the copy, which is thrown away: the real file is
        never written, and a dry run follows exactly the code path of a real one.
        """
        conn = sqlite3.connect(":memory:", isolation_level=None)
        if path.exists():
            try:
                source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                try:
                    source.backup(conn)
                finally:
                    source.close()
            except sqlite3.DatabaseError as exc:
                raise StateError(
                    f"cannot read state file {str(path)!r}: {exc}",
                    fix="point [digest] state at a valid SQLite file",
                ) from None
        try:
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"cannot read state file {str(path)!r}: {exc}") from None
        return cls(conn, None)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. A failed write (disk full, read-only file, corrupted file)
        rolls back and becomes a StateError: what was committed before stays as it was."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise self._write_error(exc) from None

    def _write_error(self, exc: sqlite3.DatabaseError) -> StateError:
        where = str(self.path) if self.path else "the state"
        full = isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)
        return StateError(
            f"cannot write state file {where!r}: {exc}",
            fix=(
                "free disk space; what was sent is recorded and the rest goes out on the next run"
                if full
                else "check that the state file and its folder are writable and not damaged"
            ),
        )

    # --- papers -----------------------------------------------------------------------------

    def select_in(
        self, sql: str, keys: Iterable[object], *params: object
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of `sql` for many keys: its "{marks}" becomes the placeholders of a chunk of
        keys (SQLite caps the variables of one statement); `params` come before them."""
        keys = list(keys)
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            yield from self.conn.execute(
                sql.format(marks=",".join("?" * len(chunk))), (*params, *chunk)
            )

    def get_papers(self, ids: Iterable[str]) -> dict[str, Paper]:
        rows = self.select_in("SELECT id, data FROM papers WHERE id IN ({marks})", ids)
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
        stamp = _iso(now)
        new = 0
        self._candidate_cache.clear()
        with self.transaction() as conn:
            for paper in papers:
                data = paper_to_json(paper)
                if conn.execute("SELECT 1 FROM papers WHERE id = ?", (paper.id,)).fetchone():
                    conn.execute(
                        "UPDATE papers SET data = ?, last_seen = ? WHERE id = ?",
                        (data, stamp, paper.id),
                    )
                else:
                    conn.execute(
                        "INSERT INTO papers (id, data, first_seen, last_seen) VALUES (?, ?, ?, ?)",
                        (paper.id, data, stamp, stamp),
                    )
                    new += 1
            for name, (etag, last_modified) in (validators or {}).items():
                conn.execute(
                    "INSERT INTO sources (name, etag, last_modified, last_ok, last_attempt) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET etag = excluded.etag, "
                    "last_modified = excluded.last_modified, last_ok = excluded.last_ok, "
                    "last_attempt = excluded.last_attempt, last_error = ''",
                    (name, etag, last_modified, stamp, stamp),
                )
        return new

    def count_papers(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0])

    def max_seq(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM papers").fetchone()[0])

    def watermark(self, subscriber: str) -> int | None:
        """The newest paper seq this subscriber's offered digests covered; None for a new one.

        Offered: sent, deliberately empty, or sealed (sent once with an unknown outcome: its
        papers may have been delivered, so they are never offered in another digest).
        """
        row = self.conn.execute(
            "SELECT MAX(upto_seq) FROM digests WHERE subscriber = ? "
            "AND (status IN (?, ?) OR sealed = 1)",
            (subscriber.lower(), *DONE_STATUSES),
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def register_subscribers(
        self, subscribers: Iterable[str], *, now: datetime, lookback_days: int
    ) -> None:
        """Fix each new subscriber's start point, once: the papers first seen within
        lookback_days of now are theirs. Never recomputed, so a first digest that keeps
        failing cannot let its papers fall out of the window."""
        since = _iso(now - timedelta(days=lookback_days))
        with self.transaction() as conn:
            start = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM papers WHERE first_seen < ?", (since,)
            ).fetchone()[0]
            conn.executemany(
                "INSERT OR IGNORE INTO subscribers (subscriber, start_seq, first_seen) "
                "VALUES (?, ?, ?)",
                [(email.lower(), start, _iso(now)) for email in subscribers],
            )

    def subscriber_start(self, subscriber: str) -> int | None:
        row = self.conn.execute(
            "SELECT start_seq FROM subscribers WHERE subscriber = ?", (subscriber.lower(),)
        ).fetchone()
        return None if row is None else int(row[0])

    def candidates(
        self,
        subscriber: str,
        *,
        upto_seq: int,
        sealed: Sequence[DigestRecord] | None = None,
    ) -> list[Paper]:
        """Papers this subscriber has not been offered yet, oldest first: first seen after
        their watermark (before their first digest: after their start point), not in a digest
        they were sent, and not reserved by a sealed digest (`sealed`: the subscriber's
        sealed_digests, when the caller has read them already)."""
        key = subscriber.lower()
        floors = [m for m in (self.watermark(key), self.subscriber_start(key)) if m is not None]
        seqs = [
            seq
            for (seq,) in self.conn.execute(
                "SELECT seq FROM papers WHERE seq > ? AND seq <= ? AND id NOT IN "
                "(SELECT paper_id FROM sent_papers WHERE subscriber = ?) ORDER BY seq",
                (max(floors, default=0), upto_seq, key),
            )
        ]
        # Every subscriber of a run reads the same papers: parse each once, read only seqs.
        cache = self._candidate_cache
        missing = [seq for seq in seqs if seq not in cache]
        rows = self.select_in("SELECT seq, data FROM papers WHERE seq IN ({marks})", missing)
        for seq, data in rows:
            cache[seq] = paper_from_json(data)
        papers = [cache[seq] for seq in seqs]
        if sealed is None:
            sealed = self.sealed_digests(key)
        reserved = {pid for record in sealed for pid in record.paper_ids}
        return [p for p in papers if p.id not in reserved] if reserved else papers

    # --- sources ----------------------------------------------------------------------------

    def source_state(self, name: str) -> SourceState | None:
        row = self.conn.execute(
            "SELECT name, etag, last_modified, last_ok, last_error, last_attempt FROM sources "
            "WHERE name = ?",
            (name,),
        ).fetchone()
        return SourceState(*row) if row else None

    def record_source_error(self, name: str, error: str, *, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO sources (name, last_error, last_attempt) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET last_error = excluded.last_error, "
                "last_attempt = excluded.last_attempt",
                (name, error, _iso(now)),
            )

    def record_source_not_modified(self, name: str, *, now: datetime) -> None:
        stamp = _iso(now)
        with self.transaction() as conn:
            conn.execute(
                "UPDATE sources SET last_ok = ?, last_attempt = ?, last_error = '' WHERE name = ?",
                (stamp, stamp, name),
            )

    # --- digests (the send log) -------------------------------------------------------------

    def get_digest(self, subscriber: str, digest_date: str | date) -> DigestRecord | None:
        row = self.conn.execute(
            f"SELECT {_DIGEST_COLUMNS} FROM digests WHERE subscriber = ? AND digest_date = ?",
            (subscriber.lower(), str(digest_date)),
        ).fetchone()
        return _digest_record(row) if row else None

    def sealed_digests(self, subscriber: str) -> list[DigestRecord]:
        """This subscriber's digests sent once with an unknown outcome and not confirmed since:
        they are repeated byte for byte, never rebuilt."""
        rows = self.conn.execute(
            f"SELECT {_DIGEST_COLUMNS} FROM digests WHERE subscriber = ? AND sealed = 1 "
            "AND status IN ('pending', 'sending') ORDER BY digest_date",
            (subscriber.lower(),),
        )
        return [_digest_record(r) for r in rows]

    def seal_interrupted(self, *, now: datetime) -> int:
        """Seal the digests a dead run left 'sending' (call with the run lock held): the
        server may have accepted them. Returns how many."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE digests SET sealed = 1, updated_at = ?, last_error = "
                "'the run ended during the send; it may have been delivered' "
                "WHERE status = 'sending' AND sealed = 0",
                (_iso(now),),
            )
        return cur.rowcount

    def message_bytes(self, subscriber: str, digest_date: str | date) -> bytes | None:
        """The exact wire bytes of a digest as built (None when not kept)."""
        row = self.conn.execute(
            "SELECT message FROM digests WHERE subscriber = ? AND digest_date = ?",
            (subscriber.lower(), str(digest_date)),
        ).fetchone()
        return zlib.decompress(row[0]) if row and row[0] is not None else None

    def prepare_digest(
        self,
        subscriber: str,
        digest_date: str | date,
        *,
        message_id: str,
        upto_seq: int,
        paper_ids: Sequence[str],
        now: datetime,
    ) -> None:
        """Record a new digest as 'pending' while it is built and queued (its bytes come with
        its first attempt). Older digests of this subscriber that were never delivered and are
        not sealed are superseded: their papers are unsent, so they are in this one already."""
        key, day, stamp = subscriber.lower(), str(digest_date), _iso(now)
        with self.transaction() as conn:
            _supersede_older(conn, key, day, stamp)
            conn.execute(
                "INSERT INTO digests (subscriber, digest_date, status, message_id, upto_seq, "
                "paper_ids, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?) "
                "ON CONFLICT (subscriber, digest_date) DO UPDATE SET status = 'pending', "
                "message_id = excluded.message_id, upto_seq = excluded.upto_seq, "
                "paper_ids = excluded.paper_ids, message = NULL, sent_at = NULL, "
                "updated_at = excluded.updated_at WHERE sealed = 0 AND status <> 'sent'",
                (key, day, message_id, upto_seq, json.dumps(list(paper_ids)), stamp, stamp),
            )

    def begin_send(
        self,
        subscriber: str,
        digest_date: str | date,
        *,
        message_id: str,
        upto_seq: int,
        paper_ids: Sequence[str],
        message: bytes | None,
        now: datetime,
        packed: bytes | None = None,
    ) -> None:
        """Commit 'sending' right before an SMTP transaction: the row of a new digest (with
        its bytes), or one more attempt of a digest already recorded. `packed`: the message as
        pack_message made it, when the caller has it (the render workers compress it).

        Older digests of this subscriber that were never delivered and are not sealed are
        superseded: their papers are unsent, so they are in this digest's candidates already.
        """
        key, day, stamp = subscriber.lower(), str(digest_date), _iso(now)
        if packed is None and message is not None:
            packed = pack_message(message)
        with self.transaction() as conn:
            _supersede_older(conn, key, day, stamp)
            conn.execute(
                "INSERT INTO digests (subscriber, digest_date, status, message_id, upto_seq, "
                "paper_ids, attempts, created_at, updated_at, message) "
                "VALUES (?, ?, 'sending', ?, ?, ?, 1, ?, ?, ?) "
                "ON CONFLICT (subscriber, digest_date) DO UPDATE SET status = 'sending', "
                "attempts = attempts + 1, updated_at = excluded.updated_at, sent_at = NULL, "
                # A sealed digest keeps what it was: only its own bytes are ever sent again.
                "message_id = CASE WHEN sealed THEN message_id ELSE excluded.message_id END, "
                "upto_seq = CASE WHEN sealed THEN upto_seq ELSE excluded.upto_seq END, "
                "paper_ids = CASE WHEN sealed THEN paper_ids ELSE excluded.paper_ids END, "
                "message = CASE WHEN sealed THEN message ELSE excluded.message END",
                (key, day, message_id, upto_seq, json.dumps(list(paper_ids)), stamp, stamp, packed),
            )

    def record_empty(
        self, subscriber: str, digest_date: str | date, *, upto_seq: int, now: datetime
    ) -> None:
        """Nothing to mail: the candidates were considered and are not offered again."""
        key, day, stamp = subscriber.lower(), str(digest_date), _iso(now)
        with self.transaction() as conn:
            _supersede_older(conn, key, day, stamp)
            conn.execute(
                "INSERT INTO digests (subscriber, digest_date, status, upto_seq, created_at, "
                "updated_at) VALUES (?, ?, 'empty', ?, ?, ?) "
                "ON CONFLICT (subscriber, digest_date) DO UPDATE SET status = 'empty', "
                "upto_seq = excluded.upto_seq, paper_ids = '[]', message_id = '', "
                "message = NULL, updated_at = excluded.updated_at "
                "WHERE status NOT IN ('sent') AND sealed = 0",
                (key, day, upto_seq, stamp, stamp),
            )

    def mark_sent(
        self, subscriber: str, digest_date: str | date, *, now: datetime, code: int | None = None
    ) -> None:
        """The digest was accepted: advance the watermark and remember its papers, atomically."""
        key, day, stamp = subscriber.lower(), str(digest_date), _iso(now)
        with self.transaction() as conn:
            conn.execute(
                "UPDATE digests SET status = 'sent', sent_at = ?, updated_at = ?, last_code = ?, "
                "last_error = '' WHERE subscriber = ? AND digest_date = ?",
                (stamp, stamp, code, key, day),
            )
            row = conn.execute(
                "SELECT paper_ids FROM digests WHERE subscriber = ? AND digest_date = ?", (key, day)
            ).fetchone()
            conn.executemany(
                "INSERT OR IGNORE INTO sent_papers (subscriber, paper_id, digest_date) "
                "VALUES (?, ?, ?)",
                [(key, pid, day) for pid in json.loads(row[0] if row else "[]")],
            )

    def mark_unsent(
        self,
        subscriber: str,
        digest_date: str | date,
        *,
        status: str,
        code: int | None,
        error: str,
        now: datetime,
        unknown: bool = False,
    ) -> None:
        """Record a failed attempt: `pending` (transient; retried next run) or `failed`.
        `unknown`: it may have been delivered, so the digest is sealed."""
        if status not in ("pending", "failed"):
            raise ValueError(status)
        with self.transaction() as conn:
            conn.execute(
                "UPDATE digests SET status = ?, last_code = ?, last_error = ?, updated_at = ?, "
                "sealed = MAX(sealed, ?) WHERE subscriber = ? AND digest_date = ?",
                (
                    status,
                    code,
                    error,
                    _iso(now),
                    int(unknown),
                    subscriber.lower(),
                    str(digest_date),
                ),
            )

    def prune_messages(self, *, now: datetime, keep_days: int = KEEP_SENT_MESSAGES_DAYS) -> None:
        """Drop the stored bytes of digests sent more than keep_days ago."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE digests SET message = NULL WHERE status IN ('sent', 'superseded') "
                "AND message IS NOT NULL AND updated_at < ?",
                (_iso(now - timedelta(days=keep_days)),),
            )

    # --- forced resends (never touch the digest they repeat) --------------------------------

    def begin_resend(
        self,
        subscriber: str,
        digest_date: str | date,
        *,
        message_id: str,
        message: bytes,
        now: datetime,
        packed: bytes | None = None,
    ) -> int:
        stamp = _iso(now)
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO resends (subscriber, digest_date, status, message_id, message, "
                "attempts, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, 0, ?, ?)",
                (
                    subscriber.lower(),
                    str(digest_date),
                    message_id,
                    pack_message(message) if packed is None else packed,
                    stamp,
                    stamp,
                ),
            )
        return int(cur.lastrowid or 0)

    def mark_resend(
        self,
        resend_id: int,
        *,
        status: str,
        now: datetime,
        code: int | None = None,
        error: str = "",
    ) -> None:
        """'sending' (one more attempt), 'sent', 'pending' or 'failed'."""
        stamp = _iso(now)
        with self.transaction() as conn:
            conn.execute(
                "UPDATE resends SET status = ?, updated_at = ?, last_code = ?, last_error = ?, "
                "attempts = attempts + (? = 'sending'), "
                "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
                (status, stamp, code, error, status, status, stamp, resend_id),
            )

    def resends(self, subscriber: str) -> list[Resend]:
        rows = self.conn.execute(
            "SELECT id, subscriber, digest_date, status, message_id, attempts FROM resends "
            "WHERE subscriber = ? ORDER BY id",
            (subscriber.lower(),),
        )
        return [Resend(*r) for r in rows]

    def digests(self, subscriber: str | None = None) -> list[DigestRecord]:
        if subscriber:
            rows = self.conn.execute(
                f"SELECT {_DIGEST_COLUMNS} FROM digests WHERE subscriber = ? ORDER BY digest_date",
                (subscriber.lower(),),
            )
        else:
            rows = self.conn.execute(
                f"SELECT {_DIGEST_COLUMNS} FROM digests ORDER BY subscriber, digest_date"
            )
        return [_digest_record(r) for r in rows]

    def latest_digests(self) -> list[DigestRecord]:
        """Each subscriber's most recently handled digest (by when, not by its date label: a
        digest sent for a future --date does not stand as the last one for good)."""
        rows = self.conn.execute(
            f"SELECT {_DIGEST_COLUMNS} FROM digests d WHERE d.rowid = (SELECT rowid FROM "
            "digests WHERE subscriber = d.subscriber ORDER BY updated_at DESC, rowid DESC "
            "LIMIT 1) ORDER BY d.subscriber"
        )
        return [_digest_record(r) for r in rows]

    # --- the reader's side: unsubscribes and feedback ---------------------------------------

    def set_unsubscribed(self, subscriber: str, unsubscribed: bool, *, now: datetime) -> None:
        """Record that the reader left (or came back). The config still says who may subscribe;
        this only overrides it."""
        key, stamp = subscriber.lower(), _iso(now)
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO subscribers (subscriber, start_seq, first_seen, unsubscribed_at) "
                "VALUES (?, (SELECT COALESCE(MAX(seq), 0) FROM papers), ?, ?) "
                "ON CONFLICT (subscriber) DO UPDATE SET unsubscribed_at = excluded.unsubscribed_at",
                (key, stamp, stamp if unsubscribed else None),
            )

    def unsubscribed(self) -> dict[str, str]:
        """Readers who unsubscribed on the web side: email -> when."""
        rows = self.conn.execute(
            "SELECT subscriber, unsubscribed_at FROM subscribers WHERE unsubscribed_at IS NOT NULL"
        )
        return dict(rows.fetchall())

    def record_feedback(self, subscriber: str, paper_id: str, kind: str, *, now: datetime) -> None:
        """A like or dislike of a paper; the latest word on a paper replaces the earlier one."""
        if kind not in ("like", "dislike"):
            raise ValueError(kind)
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO feedback (subscriber, paper_id, kind, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (subscriber, paper_id) DO UPDATE SET kind = excluded.kind, "
                "created_at = excluded.created_at",
                (subscriber.lower(), paper_id, kind, _iso(now)),
            )

    def feedback(self, subscriber: str) -> dict[str, str]:
        """This reader's feedback: paper id -> "like" | "dislike"."""
        rows = self.conn.execute(
            "SELECT paper_id, kind FROM feedback WHERE subscriber = ? ORDER BY created_at",
            (subscriber.lower(),),
        )
        return dict(rows.fetchall())

    # web side
    def reader_emails(self, after: int = 0) -> tuple[list[str], int]:
        """Every reader a run registered (or who unsubscribed on the web), lowercased, in the
        order they were added: (emails, position). `after`: a position this returned before,
        to get only the readers added since (rows are never deleted, so positions only grow;
        0 reads them all)."""
        rows = self.conn.execute(
            "SELECT rowid, subscriber FROM subscribers WHERE rowid > ? ORDER BY rowid", (after,)
        ).fetchall()
        return [str(row[1]) for row in rows], int(rows[-1][0]) if rows else after

    # web side
    def delete_feedback(self, subscriber: str, paper_id: str, kind: str) -> bool:
        """Take back a like or dislike, if it is still `kind` (a later, different word on the
        paper stays); False when there was nothing to take back."""
        with self.transaction() as conn:
            deleted = conn.execute(
                "DELETE FROM feedback WHERE subscriber = ? AND paper_id = ? AND kind = ?",
                (subscriber.lower(), paper_id, kind),
            )
            return deleted.rowcount > 0

    # web side
    def limit_lock_wait(self, seconds: float) -> None:
        """How long a statement waits for another connection's lock before it fails (a
        StateError for a write) instead of the 30 s `open` allows: the web side answers a
        reader within seconds rather than holding a thread."""
        self.conn.execute(f"PRAGMA busy_timeout = {max(0, round(seconds * 1000))}")

    # --- runs -------------------------------------------------------------------------------

    def start_run(self, command: str, *, now: datetime) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO runs (command, started_at) VALUES (?, ?)", (command, _iso(now))
            )
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, *, exit_code: int, summary: str, now: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET finished_at = ?, exit_code = ?, summary = ? WHERE id = ?",
                (_iso(now), exit_code, summary, run_id),
            )

    def recent_runs(self, limit: int = 10) -> list[RunRecord]:
        rows = self.conn.execute(
            "SELECT id, command, started_at, finished_at, exit_code, summary FROM runs "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [RunRecord(*r) for r in rows]

    def sources(self) -> list[SourceState]:
        rows = self.conn.execute(
            "SELECT name, etag, last_modified, last_ok, last_error, last_attempt FROM sources "
            "ORDER BY name"
        )
        return [SourceState(*r) for r in rows]


def _supersede_older(conn: sqlite3.Connection, key: str, day: str, stamp: str) -> None:
    """A subscriber's older digests that were never delivered and are not sealed give way to
    a newer one: their papers are unsent, so they are among its candidates already."""
    conn.execute(
        "UPDATE digests SET status = 'superseded', updated_at = ? WHERE subscriber = ? "
        "AND digest_date <> ? AND status IN (?, ?, ?) AND sealed = 0",
        (stamp, key, day, *OPEN_STATUSES),
    )


def _digest_record(row: tuple) -> DigestRecord:  # type: ignore[type-arg]
    (
        subscriber,
        day,
        status,
        message_id,
        upto_seq,
        paper_ids,
        attempts,
        last_code,
        last_error,
        created_at,
        updated_at,
        sent_at,
        sealed,
    ) = row
    return DigestRecord(
        subscriber=subscriber,
        digest_date=day,
        status=status,
        message_id=message_id,
        upto_seq=upto_seq,
        paper_ids=tuple(json.loads(paper_ids)),
        attempts=attempts,
        last_code=last_code,
        last_error=last_error,
        created_at=created_at,
        updated_at=updated_at,
        sent_at=sent_at,
        sealed=bool(sealed),
    )
