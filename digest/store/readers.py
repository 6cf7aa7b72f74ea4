"""Readers in the state: where each one's papers start, who left on the web side, and the
likes and dislikes they gave.

A reader's start point is fixed the first time a run sees them (the papers first seen within
lookback_days are theirs) and never recomputed, so a first digest that keeps failing cannot
let its papers fall out of the window.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from digest.clock import iso
from digest.store.db import Database

FEEDBACK_KINDS = ("like", "dislike")


class ReaderStore:
    """The subscribers and feedback tables (a part of Store)."""

    db: Database

    def register_subscribers(
        self, subscribers: Iterable[str], *, now: datetime, lookback_days: int
    ) -> None:
        """Fix each new subscriber's start point, once: the papers first seen within
        lookback_days of now are theirs."""
        since = iso(now - timedelta(days=lookback_days))
        with self.db.transaction() as db:
            start = db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM papers WHERE first_seen < ?", (since,)
            ).fetchone()[0]
            db.executemany(
                "INSERT INTO subscribers (subscriber, start_seq, first_seen) "
                "VALUES (?, ?, ?) ON CONFLICT (subscriber) DO NOTHING",
                [(email.lower(), start, iso(now)) for email in subscribers],
            )

    def subscriber_start(self, subscriber: str) -> int | None:
        row = self.db.execute(
            "SELECT start_seq FROM subscribers WHERE subscriber = ?", (subscriber.lower(),)
        ).fetchone()
        return None if row is None else int(row[0])

    def set_unsubscribed(self, subscriber: str, unsubscribed: bool, *, now: datetime) -> None:
        """Record that the reader left (or came back). The config still says who may subscribe;
        this only overrides it."""
        key, stamp = subscriber.lower(), iso(now)
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO subscribers (subscriber, start_seq, first_seen, unsubscribed_at) "
                "VALUES (?, (SELECT COALESCE(MAX(seq), 0) FROM papers), ?, ?) "
                "ON CONFLICT (subscriber) DO UPDATE SET unsubscribed_at = excluded.unsubscribed_at",
                (key, stamp, stamp if unsubscribed else None),
            )

    def unsubscribed(self) -> dict[str, str]:
        """Readers who unsubscribed on the web side: email -> when."""
        rows = self.db.execute(
            "SELECT subscriber, unsubscribed_at FROM subscribers WHERE unsubscribed_at IS NOT NULL"
        )
        return dict(rows.fetchall())

    def record_feedback(self, subscriber: str, paper_id: str, kind: str, *, now: datetime) -> None:
        """A like or dislike of a paper; the latest word on a paper replaces the earlier one."""
        if kind not in FEEDBACK_KINDS:
            raise ValueError(kind)
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO feedback (subscriber, paper_id, kind, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (subscriber, paper_id) DO UPDATE SET kind = excluded.kind, "
                "created_at = excluded.created_at",
                (subscriber.lower(), paper_id, kind, iso(now)),
            )

    def feedback(self, subscriber: str) -> dict[str, str]:
        """This reader's feedback: paper id -> "like" | "dislike"."""
        rows = self.db.execute(
            "SELECT paper_id, kind FROM feedback WHERE subscriber = ? ORDER BY created_at",
            (subscriber.lower(),),
        )
        return dict(rows.fetchall())
