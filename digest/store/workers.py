"""Workers and their claims: several processes, on one machine or many, share one state.

Each process that sends (a daemon, a send-now) is a worker with a row in `workers`, seen alive
at its last heartbeat. A reader's digest is worked on by exactly one worker: the one whose id
is in the reader's `claimed_by`, until `claim_until`. The worker's heartbeat extends its
claims; a worker that dies leaves them to expire, and whoever takes an expired claim over
first seals the digests the dead worker left 'sending' (they may have been delivered: they are
repeated byte for byte or not at all, as after a crash of a single process).

Claims are taken a batch at a time with one UPDATE whose rows are picked by a SELECT that, on
PostgreSQL, skips rows another worker is locking (FOR UPDATE SKIP LOCKED): workers spread over
the list instead of queueing behind each other. A worker writes 'sending' only while it holds
the claim (`hold_claim`, in the same transaction), so a worker whose claim was taken over
never starts another transaction for that reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.clock import iso
from digest.errors import DigestError
from digest.store.db import Database

_WORKER_COLUMNS = "id, host, pid, role, started_at, heartbeat_at, stopped_at, last_run"


class ClaimLost(DigestError):
    """Another worker took over a reader this one was working on (its heartbeat stopped for
    longer than the lease): this worker stops, and the other sends the rest."""


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    host: str
    pid: int
    role: str
    started_at: str
    heartbeat_at: str
    stopped_at: str | None
    last_run: str


@dataclass(frozen=True)
class ClaimRecord:
    subscriber: str
    worker: str
    until: str


class WorkerStore:
    """The workers table and the claims on readers (a part of Store)."""

    db: Database

    # --- workers ----------------------------------------------------------------------------

    def register_worker(
        self, worker: str, *, role: str, host: str, pid: int, now: datetime
    ) -> None:
        stamp = iso(now)
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO workers (id, host, pid, role, started_at, heartbeat_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "heartbeat_at = excluded.heartbeat_at, stopped_at = NULL",
                (worker, host, pid, role, stamp, stamp),
            )

    def heartbeat(self, worker: str, *, now: datetime, until: datetime) -> None:
        """The worker is alive: note it, and extend its claims to `until`."""
        with self.db.transaction() as db:
            db.execute("UPDATE workers SET heartbeat_at = ? WHERE id = ?", (iso(now), worker))
            db.execute(
                "UPDATE subscribers SET claim_until = ? WHERE claimed_by = ?", (iso(until), worker)
            )

    def finish_worker(self, worker: str, *, now: datetime, last_run: str | None = None) -> None:
        """The worker stops (or ends a run): its claims go, and what its run did is noted."""
        stamp = iso(now)
        with self.db.transaction() as db:
            db.execute(
                "UPDATE subscribers SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = ?",
                (worker,),
            )
            if last_run is not None:
                db.execute(
                    "UPDATE workers SET last_run = ?, heartbeat_at = ? WHERE id = ?",
                    (last_run, stamp, worker),
                )

    def stop_worker(self, worker: str, *, now: datetime) -> None:
        self.finish_worker(worker, now=now)
        with self.db.transaction() as db:
            db.execute("UPDATE workers SET stopped_at = ? WHERE id = ?", (iso(now), worker))

    def workers(self, *, limit: int = 20) -> list[WorkerRecord]:
        """The workers seen most recently first."""
        rows = self.db.execute(
            f"SELECT {_WORKER_COLUMNS} FROM workers ORDER BY heartbeat_at DESC, id LIMIT ?",
            (limit,),
        )
        return [WorkerRecord(*row) for row in rows]

    # --- claims -----------------------------------------------------------------------------

    def claim(
        self, worker: str, emails: Sequence[str], *, now: datetime, until: datetime
    ) -> set[str]:
        """Claim these readers for `worker` until `until`: those free, expired, or already its
        own. Returns the emails claimed (lowercased). A claim taken over from a worker that
        died seals the digests it left 'sending'."""
        keys = sorted({email.lower() for email in emails})
        if not keys:
            return set()
        stamp = iso(now)
        marks = ",".join("?" * len(keys))
        with self.db.transaction() as db:
            rows = db.execute(
                "UPDATE subscribers SET claimed_by = ?, claim_until = ? WHERE subscriber IN "
                f"(SELECT subscriber FROM subscribers WHERE subscriber IN ({marks}) "
                "AND (claimed_by IS NULL OR claim_until < ? OR claimed_by = ?)"
                f"{db.skip_locked}) RETURNING subscriber",
                (worker, iso(until), *keys, stamp, worker),
            ).fetchall()
            claimed = {email for (email,) in rows}
            if claimed:
                taken = sorted(claimed)
                db.execute(
                    "UPDATE digests SET sealed = 1, updated_at = ?, last_error = "
                    "'the worker sending it stopped during the send; it may have been "
                    f"delivered' WHERE subscriber IN ({','.join('?' * len(taken))}) "
                    "AND status = 'sending' AND sealed = 0",
                    (stamp, *taken),
                )
        return claimed

    def release(self, worker: str, emails: Sequence[str]) -> None:
        """Let these readers go (their digests are recorded)."""
        keys = sorted({email.lower() for email in emails})
        if not keys:
            return
        with self.db.transaction() as db:
            release_claims(db, worker, keys)

    def claims(self) -> list[ClaimRecord]:
        """The claims held now (live or expired), oldest expiry first."""
        rows = self.db.execute(
            "SELECT subscriber, claimed_by, claim_until FROM subscribers "
            "WHERE claimed_by IS NOT NULL ORDER BY claim_until, subscriber"
        )
        return [ClaimRecord(*row) for row in rows]

    def clear_expired_claims(self, now: datetime) -> None:
        """Let expired claims go that nobody took over (their readers had nothing due: a
        later claim still seals what a dead worker left 'sending')."""
        with self.db.transaction() as db:
            db.execute(
                "UPDATE subscribers SET claimed_by = NULL, claim_until = NULL "
                "WHERE claimed_by IS NOT NULL AND claim_until < ?",
                (iso(now),),
            )

    def expired_claims(self, now: datetime) -> list[str]:
        """Readers whose claim expired: their worker stopped beating."""
        rows = self.db.execute(
            "SELECT subscriber FROM subscribers WHERE claimed_by IS NOT NULL "
            "AND claim_until < ? ORDER BY subscriber",
            (iso(now),),
        )
        return [email for (email,) in rows]

    # --- identity ---------------------------------------------------------------------------

    def state_id(self) -> str:
        """This state's identity, made when it was created (a replaced state has another)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'state_id'").fetchone()
        return str(row[0]) if row else ""


def hold_claim(db: Database, worker: str, email: str) -> None:
    """Inside a transaction: make sure `worker` still holds the claim on `email`, and keep it
    (on PostgreSQL the row stays locked until the transaction ends, so no one takes it
    meanwhile). Raises ClaimLost when another worker took it over."""
    row = db.execute(
        f"SELECT claimed_by FROM subscribers WHERE subscriber = ?{db.row_lock}", (email.lower(),)
    ).fetchone()
    if row is None or row[0] != worker:
        raise ClaimLost(
            f"another worker took over the digest of {email} (this worker's heartbeat stopped "
            "for longer than the lease); this worker stops and the other sends the rest",
            fix="nothing to do; if it recurs, give the workers more CPU or a longer lease",
        )


def release_claims(db: Database, worker: str, keys: Sequence[str]) -> None:
    """Inside a transaction: let `worker`'s claims on these (lowercased) readers go."""
    db.execute(
        "UPDATE subscribers SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = ? "
        f"AND subscriber IN ({','.join('?' * len(keys))})",
        (worker, *keys),
    )
