"""The send log's reads and transitions: the only SQL on the digests, sent_papers and
resends tables. See digest.store.sendlog for the states and the diagram."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from digest.clock import iso
from digest.store.db import Database, Row
from digest.store.sendlog.model import (
    KEEP_SENT_MESSAGES_DAYS,
    Begin,
    DigestRecord,
    DigestStatus,
    Prepared,
    Resend,
    Sent,
    pack_message,
)
from digest.store.workers import hold_claim, release_claims

_SETTLED_SQL = "('sent', 'empty')"  # SETTLED, as SQL
_OPEN_SQL = "('pending', 'sending', 'failed')"  # OPEN, as SQL
# The columns a DigestRecord is read from (the stored message bytes are read on their own).
_COLUMNS = (
    "subscriber, digest_date, status, message_id, upto_seq, paper_ids, attempts, last_code, "
    "last_error, created_at, updated_at, sent_at, sealed"
)


def _record(row: Row) -> DigestRecord:
    (
        sub,
        day,
        status,
        message_id,
        upto,
        ids,
        attempts,
        code,
        error,
        created,
        updated,
        sent,
        sealed,
    ) = row
    return DigestRecord(
        subscriber=sub,
        digest_date=day,
        status=DigestStatus(status),
        message_id=message_id,
        upto_seq=upto,
        paper_ids=tuple(json.loads(ids)),
        attempts=attempts,
        last_code=code,
        last_error=error,
        created_at=created,
        updated_at=updated,
        sent_at=sent,
        sealed=bool(sealed),
    )


class SendLogStore:
    """The digests, sent_papers and resends tables (a part of Store)."""

    db: Database

    # --- reading ----------------------------------------------------------------------------

    def get_digest(self, subscriber: str, digest_date: str | date) -> DigestRecord | None:
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM digests WHERE subscriber = ? AND digest_date = ?",
            (subscriber.lower(), str(digest_date)),
        ).fetchone()
        return _record(row) if row else None

    def digests(self, subscriber: str | None = None) -> list[DigestRecord]:
        if subscriber:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM digests WHERE subscriber = ? ORDER BY digest_date",
                (subscriber.lower(),),
            )
        else:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM digests ORDER BY subscriber, digest_date"
            )
        return [_record(r) for r in rows]

    def latest_digests(self) -> list[DigestRecord]:
        """Each subscriber's most recently handled digest (by when, not by its date label: a
        digest sent for a future --date does not stand as the last one for good)."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY subscriber "
            "ORDER BY updated_at DESC, created_at DESC, digest_date DESC) AS n FROM digests) "
            "AS ranked WHERE n = 1 ORDER BY subscriber"
        )
        return [_record(r) for r in rows]

    def sealed_digests(self, subscriber: str) -> list[DigestRecord]:
        """This subscriber's digests sent once with an unknown outcome and not confirmed since:
        they are repeated byte for byte, never rebuilt."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM digests WHERE subscriber = ? AND sealed = 1 "
            "AND status IN ('pending', 'sending') ORDER BY digest_date",
            (subscriber.lower(),),
        )
        return [_record(r) for r in rows]

    def settled_dates(self, keys: Iterable[tuple[str, date]]) -> set[tuple[str, date]]:
        """Which of these (subscriber, date) digests are settled (sent or found empty): the
        one lookup of "is this date done?", in one query whatever the number of readers."""
        wanted = {(email.lower(), day) for email, day in keys}
        days = sorted({day.isoformat() for _, day in wanted})
        rows = self.db.select_in(
            f"SELECT subscriber, digest_date FROM digests WHERE status IN {_SETTLED_SQL} "
            "AND digest_date IN ({marks})",
            days,
        )
        found = {(sub, date.fromisoformat(day)) for sub, day in rows}
        return wanted & found

    def watermark(self, subscriber: str) -> int | None:
        """The newest paper seq this subscriber's offered digests covered; None for a new one.

        Offered: settled, or sealed (sent once with an unknown outcome: its papers may have
        been delivered, so they are never offered in another digest).
        """
        row = self.db.execute(
            "SELECT MAX(upto_seq) FROM digests WHERE subscriber = ? "
            f"AND (status IN {_SETTLED_SQL} OR sealed = 1)",
            (subscriber.lower(),),
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def sent_among(
        self, subscribers: Sequence[str], paper_ids: Sequence[str]
    ) -> set[tuple[str, str]]:
        """Which of these papers each of these subscribers was sent, as (subscriber, paper id)
        pairs: one query for a batch of readers ("trending today" names none of them)."""
        if not subscribers or not paper_ids:
            return set()
        rows = self.db.select_in(
            "SELECT subscriber, paper_id FROM sent_papers WHERE paper_id IN "
            f"({','.join('?' * len(paper_ids))}) AND subscriber IN ({{marks}})",
            sorted({s.lower() for s in subscribers}),
            *paper_ids,
        )
        return {(sub, pid) for sub, pid in rows}

    def message_bytes(self, subscriber: str, digest_date: str | date) -> bytes | None:
        """The exact wire bytes of a digest as built (None when not kept)."""
        row = self.db.execute(
            "SELECT message FROM digests WHERE subscriber = ? AND digest_date = ?",
            (subscriber.lower(), str(digest_date)),
        ).fetchone()
        return zlib.decompress(row[0]) if row and row[0] is not None else None

    def resends(self, subscriber: str) -> list[Resend]:
        rows = self.db.execute(
            "SELECT id, subscriber, digest_date, status, message_id, attempts FROM resends "
            "WHERE subscriber = ? ORDER BY id",
            (subscriber.lower(),),
        )
        return [Resend(*r) for r in rows]

    # --- transitions ------------------------------------------------------------------------

    def seal_interrupted(self, *, now: datetime) -> int:
        """Seal the digests a dead run left 'sending' (call with the run lock held): the
        server may have accepted them. Returns how many."""
        with self.db.transaction() as db:
            cur = db.execute(
                "UPDATE digests SET sealed = 1, updated_at = ?, last_error = "
                "'the run ended during the send; it may have been delivered' "
                "WHERE status = 'sending' AND sealed = 0",
                (iso(now),),
            )
        return int(cur.rowcount)

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
        its first attempt); older open digests of this reader give way to it."""
        with self.db.transaction() as db:
            _prepare(db, subscriber, digest_date, message_id, upto_seq, paper_ids, iso(now))

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
        worker: str | None = None,
    ) -> None:
        """Commit 'sending' right before an SMTP transaction: the row of a new digest (with
        its bytes), or one more attempt of a digest already recorded. `packed`: the message as
        pack_message made it, when the caller has it (the render workers compress it). Older
        open digests of this reader give way to it. `worker`: only while it holds the claim
        on this reader (else ClaimLost, and nothing is written)."""
        self.record_together(
            begin=Begin(
                subscriber,
                str(digest_date),
                message_id,
                upto_seq,
                tuple(paper_ids),
                message,
                packed,
                worker,
            ),  # fmt: skip
            now=now,
        )

    def record_together(
        self,
        *,
        prepared: Sequence[Prepared] = (),
        sent: Sequence[Sent] = (),
        begin: Begin | None = None,
        now: datetime,
    ) -> None:
        """In one transaction, in this order: digests queued ('pending'), digests the server
        accepted ('sent'), and the 'sending' of the next transaction. A run writes what it
        learnt since its last write with the next 'sending' (digest.store.Recorder): as many
        commits as transactions, and every accepted mail recorded before a new one starts."""
        stamp = iso(now)
        packed = None
        if begin is not None:
            packed = begin.packed
            if packed is None and begin.message is not None:
                packed = pack_message(begin.message)
        with self.db.transaction() as db:
            if begin is not None and begin.worker is not None:
                # Checked first: a worker that lost the claim writes nothing at all.
                hold_claim(db, begin.worker, begin.subscriber.lower())
            for p in prepared:
                _prepare(
                    db, p.subscriber, p.digest_date, p.message_id, p.upto_seq, p.paper_ids, stamp
                )
            for done in sent:
                _mark_sent(db, done.subscriber, done.digest_date, stamp, done.code, done.release)
            if begin is not None:
                _begin(db, begin, packed, stamp)

    def record_empty(
        self,
        subscriber: str,
        digest_date: str | date,
        *,
        upto_seq: int,
        now: datetime,
        release: str | None = None,
    ) -> None:
        """Nothing to mail: the candidates were considered and are not offered again.
        `release`: the worker whose claim on this reader ends with this."""
        key, day, stamp = subscriber.lower(), str(digest_date), iso(now)
        with self.db.transaction() as db:
            if release is not None:
                release_claims(db, release, [key])
            _supersede_older(db, key, day, stamp)
            db.execute(
                "INSERT INTO digests (subscriber, digest_date, status, upto_seq, created_at, "
                "updated_at) VALUES (?, ?, 'empty', ?, ?, ?) "
                "ON CONFLICT (subscriber, digest_date) DO UPDATE SET status = 'empty', "
                "upto_seq = excluded.upto_seq, paper_ids = '[]', message_id = '', "
                "message = NULL, updated_at = excluded.updated_at "
                "WHERE digests.status <> 'sent' AND digests.sealed = 0",
                (key, day, upto_seq, stamp, stamp),
            )

    def mark_sent(
        self,
        subscriber: str,
        digest_date: str | date,
        *,
        now: datetime,
        code: int | None = None,
        release: str | None = None,
    ) -> None:
        """The digest was accepted: advance the watermark and remember its papers, atomically.
        `release`: the worker whose claim on this reader ends with this."""
        with self.db.transaction() as db:
            _mark_sent(db, subscriber, str(digest_date), iso(now), code, release)

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
        release: str | None = None,
    ) -> None:
        """Record a failed attempt: `pending` (transient; retried next run) or `failed`.
        `unknown`: it may have been delivered, so the digest is sealed. `release`: the worker
        whose claim on this reader ends with this."""
        if status not in (DigestStatus.PENDING, DigestStatus.FAILED):
            raise ValueError(status)
        with self.db.transaction() as db:
            if release is not None:
                release_claims(db, release, [subscriber.lower()])
            db.execute(
                "UPDATE digests SET status = ?, last_code = ?, last_error = ?, updated_at = ?, "
                "sealed = CASE WHEN ? = 1 THEN 1 ELSE sealed END "
                "WHERE subscriber = ? AND digest_date = ?",
                (
                    str(status),
                    code,
                    error,
                    iso(now),
                    int(unknown),
                    subscriber.lower(),
                    str(digest_date),
                ),
            )

    def prune_messages(self, *, now: datetime, keep_days: int = KEEP_SENT_MESSAGES_DAYS) -> None:
        """Drop the stored bytes of digests sent more than keep_days ago."""
        with self.db.transaction() as db:
            db.execute(
                "UPDATE digests SET message = NULL WHERE status IN ('sent', 'superseded') "
                "AND message IS NOT NULL AND updated_at < ?",
                (iso(now - timedelta(days=keep_days)),),
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
        stamp = iso(now)
        with self.db.transaction() as db:
            row = db.execute(
                "INSERT INTO resends (subscriber, digest_date, status, message_id, message, "
                "attempts, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, 0, ?, ?) "
                "RETURNING id",
                (
                    subscriber.lower(),
                    str(digest_date),
                    message_id,
                    pack_message(message) if packed is None else packed,
                    stamp,
                    stamp,
                ),
            ).fetchone()
        return int(row[0])

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
        stamp = iso(now)
        with self.db.transaction() as db:
            db.execute(
                "UPDATE resends SET status = ?, updated_at = ?, last_code = ?, last_error = ?, "
                "attempts = attempts + ?, "
                "sent_at = CASE WHEN ? = 1 THEN ? ELSE sent_at END WHERE id = ?",
                (
                    str(status),
                    stamp,
                    code,
                    error,
                    int(status == DigestStatus.SENDING),
                    int(status == DigestStatus.SENT),
                    stamp,
                    resend_id,
                ),
            )


def _prepare(
    db: Database,
    subscriber: str,
    digest_date: str | date,
    message_id: str,
    upto_seq: int,
    paper_ids: Sequence[str],
    stamp: str,
) -> None:
    key, day = subscriber.lower(), str(digest_date)
    _supersede_older(db, key, day, stamp)
    db.execute(
        "INSERT INTO digests (subscriber, digest_date, status, message_id, upto_seq, "
        "paper_ids, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?) "
        "ON CONFLICT (subscriber, digest_date) DO UPDATE SET status = 'pending', "
        "message_id = excluded.message_id, upto_seq = excluded.upto_seq, "
        "paper_ids = excluded.paper_ids, message = NULL, sent_at = NULL, "
        "updated_at = excluded.updated_at "
        "WHERE digests.sealed = 0 AND digests.status <> 'sent'",
        (key, day, message_id, upto_seq, json.dumps(list(paper_ids)), stamp, stamp),
    )


def _begin(db: Database, begin: Begin, packed: bytes | None, stamp: str) -> None:
    key, day = begin.subscriber.lower(), begin.digest_date
    _supersede_older(db, key, day, stamp)
    db.execute(
        "INSERT INTO digests (subscriber, digest_date, status, message_id, upto_seq, "
        "paper_ids, attempts, created_at, updated_at, message) "
        "VALUES (?, ?, 'sending', ?, ?, ?, 1, ?, ?, ?) "
        "ON CONFLICT (subscriber, digest_date) DO UPDATE SET status = 'sending', "
        "attempts = digests.attempts + 1, updated_at = excluded.updated_at, "
        "sent_at = NULL, "
        # A sealed digest keeps what it was: only its own bytes are ever sent again.
        "message_id = CASE WHEN digests.sealed = 1 THEN digests.message_id "
        "ELSE excluded.message_id END, "
        "upto_seq = CASE WHEN digests.sealed = 1 THEN digests.upto_seq "
        "ELSE excluded.upto_seq END, "
        "paper_ids = CASE WHEN digests.sealed = 1 THEN digests.paper_ids "
        "ELSE excluded.paper_ids END, "
        "message = CASE WHEN digests.sealed = 1 THEN digests.message "
        "ELSE excluded.message END",
        (
            key, day, begin.message_id, begin.upto_seq, json.dumps(list(begin.paper_ids)),
            stamp, stamp, packed,
        ),
    )  # fmt: skip


def _mark_sent(
    db: Database, subscriber: str, day: str, stamp: str, code: int | None, release: str | None
) -> None:
    key = subscriber.lower()
    if release is not None:
        release_claims(db, release, [key])
    row = db.execute(
        "UPDATE digests SET status = 'sent', sent_at = ?, updated_at = ?, last_code = ?, "
        "last_error = '' WHERE subscriber = ? AND digest_date = ? RETURNING paper_ids",
        (stamp, stamp, code, key, day),
    ).fetchone()
    db.executemany(
        "INSERT INTO sent_papers (subscriber, paper_id, digest_date) "
        "VALUES (?, ?, ?) ON CONFLICT (subscriber, paper_id) DO NOTHING",
        [(key, pid, day) for pid in json.loads(row[0] if row else "[]")],
    )


def _supersede_older(db: Database, key: str, day: str, stamp: str) -> None:
    """A subscriber's older digests that were never delivered and are not sealed give way to
    a newer one: their papers are unsent, so they are among its candidates already."""
    db.execute(
        "UPDATE digests SET status = 'superseded', updated_at = ? WHERE subscriber = ? "
        f"AND digest_date <> ? AND status IN {_OPEN_SQL} AND sealed = 0",
        (stamp, key, day),
    )
