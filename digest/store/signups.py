"""Sign-ups from the web side, blocked addresses, and the confirmation mails (a part of Store).

A sign-up is recorded when its request passed the checks (not blocked, under the daily cap of
confirmation mails to the address); the reader is saved (ReaderProfiles.save_readers, origin
"signup") only when the link in the mail is confirmed. Each sign-up has one confirmation mail,
kept in the same row under the send log's rules:

    queued --store_signup_message--> pending --begin_signup_send--> sending --> sent
                                        ^                              |
                                        +------ transient (retried) ---+--> failed (5xx)

- the bytes are built once and stored before any attempt: every later attempt sends them as
  they are (same Message-ID), so a repeat is byte for byte;
- 'sending' is committed right before the SMTP transaction, 'sent' right after it;
- a worker claims the mails it sends (claimed_by, claim_until); a claim left by a dead process
  expires, and a mail it left 'sending' had an unknown outcome: it is sealed and repeated byte
  for byte (the one repeat the send log allows), never rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from digest.clock import iso
from digest.store.db import Database

SignupDecision = Literal["queued", "blocked", "capped"]
KEEP_SIGNUPS_DAYS = 14  # after expiry: a replayed link still says "already confirmed"
KEEP_REQUEST_DAYS = 2  # per-address counts of past days


@dataclass(frozen=True)
class Signup:
    id: str
    address: str  # lowercased
    reader: str  # the form's settings, JSON
    created_at: str
    expires_at: str
    confirmed_at: str | None
    mail_status: str


@dataclass(frozen=True)
class SignupMail:
    """A confirmation mail a worker has claimed to send."""

    id: str
    address: str
    reader: str
    expires_at: str
    status: str  # "queued" (build it first), "pending" or "sending" (bytes fixed)
    message_id: str
    message: bytes | None
    sealed: bool


_SIGNUP_COLUMNS = "id, address, reader, created_at, expires_at, confirmed_at, mail_status"


class SignupStore:
    """The signups, blocked_addresses and signup_requests tables."""

    db: Database

    # --- the sign-up page -------------------------------------------------------------------

    def record_signup(
        self,
        signup_id: str,
        address: str,
        reader: str,
        *,
        now: datetime,
        expires_at: datetime,
        daily_cap: int,
    ) -> SignupDecision:
        """Count the request, and record the sign-up with its confirmation mail 'queued' unless
        the address is blocked or had `daily_cap` confirmation mails today (UTC). The same
        statements run for every address, whatever the answer."""
        key, day, stamp = address.lower(), now.date().isoformat(), iso(now)
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO signup_requests (address, day, requests, mails) VALUES (?, ?, 1, 0) "
                "ON CONFLICT (address, day) DO UPDATE SET requests = signup_requests.requests + 1",
                (key, day),
            )
            blocked = db.execute(
                "SELECT COUNT(*) FROM blocked_addresses WHERE address = ?", (key,)
            ).fetchone()[0]
            mails = db.execute(
                "SELECT mails FROM signup_requests WHERE address = ? AND day = ?", (key, day)
            ).fetchone()[0]
            decision: SignupDecision = (
                "blocked" if blocked else "capped" if mails >= daily_cap else "queued"
            )
            if decision == "queued":
                db.execute(
                    "INSERT INTO signups (id, address, reader, created_at, expires_at, "
                    "next_try_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (signup_id, key, reader, stamp, iso(expires_at), stamp),
                )
                db.execute(
                    "UPDATE signup_requests SET mails = mails + 1 WHERE address = ? AND day = ?",
                    (key, day),
                )
            self._prune_signups(db, now)
        return decision

    def _prune_signups(self, db: Database, now: datetime) -> None:
        db.execute(
            "DELETE FROM signup_requests WHERE day < ?",
            ((now - timedelta(days=KEEP_REQUEST_DAYS)).date().isoformat(),),
        )
        db.execute(
            "DELETE FROM signups WHERE expires_at < ? AND mail_status <> 'sending'",
            (iso(now - timedelta(days=KEEP_SIGNUPS_DAYS)),),
        )

    def get_signup(self, signup_id: str) -> Signup | None:
        row = self.db.execute(
            f"SELECT {_SIGNUP_COLUMNS} FROM signups WHERE id = ?", (signup_id,)
        ).fetchone()
        return Signup(*row) if row else None

    def mark_signup_confirmed(self, signup_id: str, *, now: datetime) -> bool:
        """True for the first confirmation of this sign-up (a replay gets False). Call it after
        the reader was saved: a crash in between leaves the link working, never a lost reader."""
        with self.db.transaction() as db:
            cur = db.execute(
                "UPDATE signups SET confirmed_at = ? WHERE id = ? AND confirmed_at IS NULL",
                (iso(now), signup_id),
            )
            return cur.rowcount > 0

    def pending_signups(self, *, now: datetime) -> list[Signup]:
        """Sign-ups not confirmed (yet) and not expired, oldest first."""
        rows = self.db.execute(
            f"SELECT {_SIGNUP_COLUMNS} FROM signups WHERE confirmed_at IS NULL AND expires_at > ? "
            "ORDER BY created_at, id",
            (iso(now),),
        )
        return [Signup(*row) for row in rows]

    def reader_origin(self, address: str) -> tuple[str, bool, bool] | None:
        """(origin, active, unsubscribed) of the reader with this address, or None."""
        row = self.db.execute(
            "SELECT origin, active, unsubscribed_at FROM subscribers WHERE subscriber = ?",
            (address.lower(),),
        ).fetchone()
        return (str(row[0]), bool(row[1]), row[2] is not None) if row else None

    # --- blocked addresses ------------------------------------------------------------------

    def is_blocked(self, address: str) -> bool:
        row = self.db.execute(
            "SELECT COUNT(*) FROM blocked_addresses WHERE address = ?", (address.lower(),)
        ).fetchone()
        return bool(row[0])

    def block_address(self, address: str, *, now: datetime) -> bool:
        """Block it: no sign-up, no confirmation mail (those not sent yet are dropped). False
        when it was blocked already. Its reader, if any, is deactivated by the caller."""
        key = address.lower()
        with self.db.transaction() as db:
            cur = db.execute(
                "INSERT INTO blocked_addresses (address, blocked_at) VALUES (?, ?) "
                "ON CONFLICT (address) DO NOTHING",
                (key, iso(now)),
            )
            db.execute(
                "UPDATE signups SET mail_status = 'failed', last_error = 'address blocked', "
                "claimed_by = NULL, claim_until = NULL "
                "WHERE address = ? AND mail_status IN ('queued', 'pending')",
                (key,),
            )
            return cur.rowcount > 0

    def unblock_address(self, address: str) -> bool:
        with self.db.transaction() as db:
            cur = db.execute("DELETE FROM blocked_addresses WHERE address = ?", (address.lower(),))
            return cur.rowcount > 0

    def blocked_addresses(self) -> list[tuple[str, str]]:
        """(address, blocked_at), by address."""
        rows = self.db.execute(
            "SELECT address, blocked_at FROM blocked_addresses ORDER BY address"
        ).fetchall()
        return [(str(a), str(b)) for a, b in rows]

    # --- confirmation mails ------------------------------------------------------------------

    def claim_signup_mails(
        self, worker: str, *, now: datetime, lease_seconds: float, limit: int = 50
    ) -> list[SignupMail]:
        """Claim the confirmation mails due now: queued or pending ones whose next try has come,
        and 'sending' ones a dead worker left (their claim expired: sealed, repeated as they
        are). Mails of expired, confirmed or blocked sign-ups are dropped ('failed')."""
        stamp, until = iso(now), iso(now + timedelta(seconds=lease_seconds))
        with self.db.transaction() as db:
            db.execute(
                "UPDATE signups SET mail_status = 'failed', last_error = ?, claimed_by = NULL, "
                "claim_until = NULL WHERE mail_status IN ('queued', 'pending') AND "
                "(expires_at <= ? OR confirmed_at IS NOT NULL OR address IN "
                "(SELECT address FROM blocked_addresses)) "
                "AND (claim_until IS NULL OR claim_until < ?)",
                ("not sent: expired, confirmed or blocked first", stamp, stamp),
            )
            db.execute(
                "UPDATE signups SET mail_status = 'pending', sealed = 1 "
                "WHERE mail_status = 'sending' AND claim_until < ?",
                (stamp,),
            )
            rows = db.execute(
                "SELECT id, address, reader, expires_at, mail_status, message_id, message, sealed "
                "FROM signups WHERE mail_status IN ('queued', 'pending') AND next_try_at <= ? "
                "AND (claim_until IS NULL OR claim_until < ?) ORDER BY next_try_at, id LIMIT ?"
                + db.skip_locked,
                (stamp, stamp, limit),
            ).fetchall()
            db.executemany(
                "UPDATE signups SET claimed_by = ?, claim_until = ? WHERE id = ?",
                [(worker, until, row[0]) for row in rows],
            )
        return [
            SignupMail(
                id=row[0],
                address=row[1],
                reader=row[2],
                expires_at=row[3],
                status=row[4],
                message_id=row[5],
                message=bytes(row[6]) if row[6] is not None else None,
                sealed=bool(row[7]),
            )
            for row in rows
        ]

    def store_signup_message(
        self, signup_id: str, worker: str, message_id: str, data: bytes
    ) -> bool:
        """Fix the built bytes of a queued mail ('pending'); False when this worker no longer
        holds it (then it must not send it)."""
        with self.db.transaction() as db:
            cur = db.execute(
                "UPDATE signups SET mail_status = 'pending', message_id = ?, message = ? "
                "WHERE id = ? AND mail_status = 'queued' AND claimed_by = ?",
                (message_id, data, signup_id, worker),
            )
            return cur.rowcount > 0

    def begin_signup_send(self, signup_id: str, worker: str, *, now: datetime) -> None:
        """'sending': committed right before the SMTP transaction."""
        with self.db.transaction() as db:
            db.execute(
                "UPDATE signups SET mail_status = 'sending', attempts = attempts + 1 "
                "WHERE id = ? AND claimed_by = ?",
                (signup_id, worker),
            )

    def finish_signup_send(
        self,
        signup_id: str,
        status: str,
        *,
        now: datetime,
        code: int | None = None,
        detail: str = "",
        unknown: bool = False,
        retry_at: datetime | None = None,
    ) -> None:
        """The outcome: 'sent', 'failed', or 'pending' (tried again at `retry_at`; `unknown`:
        the server may have it, so only these bytes may go again)."""
        if status not in ("sent", "failed", "pending"):
            raise ValueError(status)
        with self.db.transaction() as db:
            db.execute(
                "UPDATE signups SET mail_status = ?, last_code = ?, last_error = ?, "
                "sealed = CASE WHEN ? = 1 THEN 1 ELSE sealed END, next_try_at = ?, "
                "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END, "
                "claimed_by = NULL, claim_until = NULL WHERE id = ?",
                (
                    status,
                    code,
                    detail,
                    1 if unknown else 0,
                    iso(retry_at or now),
                    status,
                    iso(now),
                    signup_id,
                ),
            )

    def release_signup_mails(self, ids: Sequence[str], worker: str) -> None:
        """Let go of claimed mails this worker did not get to (tried again at once)."""
        with self.db.transaction() as db:
            db.executemany(
                "UPDATE signups SET claimed_by = NULL, claim_until = NULL "
                "WHERE id = ? AND claimed_by = ? AND mail_status <> 'sending'",
                [(i, worker) for i in ids],
            )

    def signup_mail_status(self, signup_id: str) -> tuple[str, int, bool]:
        """(mail status, attempts, sealed) of a sign-up's confirmation mail."""
        row = self.db.execute(
            "SELECT mail_status, attempts, sealed FROM signups WHERE id = ?", (signup_id,)
        ).fetchone()
        return (str(row[0]), int(row[1]), bool(row[2])) if row else ("", 0, False)
