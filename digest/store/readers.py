"""Readers in the state: where each one's papers start, who left on the web side, and the
likes and dislikes they gave.

A reader's start point is fixed the first time a run sees them (the papers first seen within
lookback_days are theirs) and never recomputed, so a first digest that keeps failing cannot
let its papers fall out of the window.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from digest.clock import iso
from digest.config import Subscriber, reader_table
from digest.schedule import Cadence
from digest.store.db import Database, Row

FEEDBACK_KINDS = ("like", "dislike")
# A new reader's place in the order readers were added (the web side reads the new ones).
NEXT_ADDED = "(SELECT COALESCE(MAX(added), 0) + 1 FROM subscribers)"


class ReaderStore:
    """The subscribers and feedback tables (a part of Store)."""

    db: Database

    def register_subscribers(
        self, subscribers: Iterable[str], *, now: datetime, lookback_days: int
    ) -> None:
        """Fix each new subscriber's start point, once: the papers first seen within
        lookback_days of now are theirs."""
        with self.db.transaction() as db:
            start = _start_seq(db, now, lookback_days)
            db.executemany(
                f"INSERT INTO subscribers (subscriber, start_seq, first_seen, added) "
                f"VALUES (?, ?, ?, {NEXT_ADDED}) ON CONFLICT (subscriber) DO NOTHING",
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
                "INSERT INTO subscribers (subscriber, start_seq, first_seen, unsubscribed_at, "
                "added) VALUES (?, (SELECT COALESCE(MAX(seq), 0) FROM papers), ?, ?, "
                f"{NEXT_ADDED}) "
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

    def delete_feedback(self, subscriber: str, paper_id: str, kind: str) -> bool:
        """Take back a like or dislike, if it is still `kind` (a later, different word on the
        paper stays); False when there was nothing to take back."""
        with self.db.transaction() as db:
            deleted = db.execute(
                "DELETE FROM feedback WHERE subscriber = ? AND paper_id = ? AND kind = ?",
                (subscriber.lower(), paper_id, kind),
            )
            return deleted.rowcount > 0

    def reader_emails(self, after: int = 0) -> tuple[list[str], int]:
        """Every reader the state knows (active or not: links in mails sent to any of them
        must keep working), lowercased, in the order they were added: (emails, position).
        `after`: a position this returned before, to get only the readers added since (rows
        are never deleted, so positions only grow; 0 reads them all)."""
        rows = self.db.execute(
            "SELECT added, subscriber FROM subscribers WHERE added > ? ORDER BY added", (after,)
        ).fetchall()
        return [str(row[1]) for row in rows], int(rows[-1][0]) if rows else after

    # --- each reader's own model (digest.rank.reader_model.ReaderModelStore) -----------------

    def load_reader_model(self, email: str) -> bytes | None:
        row = self.db.execute(
            "SELECT model FROM reader_models WHERE subscriber = ?", (email.lower(),)
        ).fetchone()
        return bytes(row[0]) if row else None

    def save_reader_models(self, items: Iterable[tuple[str, bytes]]) -> None:
        rows = [(email.lower(), model) for email, model in items]
        if not rows:
            return
        with self.db.transaction() as db:
            db.executemany(
                "INSERT INTO reader_models (subscriber, model) VALUES (?, ?) "
                "ON CONFLICT (subscriber) DO UPDATE SET model = excluded.model",
                rows,
            )

    def delete_reader_model(self, email: str) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM reader_models WHERE subscriber = ?", (email.lower(),))

    def feedback(self, subscriber: str) -> dict[str, str]:
        """This reader's feedback: paper id -> "like" | "dislike"."""
        rows = self.db.execute(
            "SELECT paper_id, kind FROM feedback WHERE subscriber = ? ORDER BY created_at",
            (subscriber.lower(),),
        )
        return dict(rows.fetchall())


# --- readers kept in the state ----------------------------------------------------------------

ORIGINS = ("config", "signup", "import")
READER_COLUMNS = "subscriber, name, profile, timezone, send_at, frequency, weekday, paused_until"


@dataclass(frozen=True)
class ReaderSchedule:
    """When a reader gets their digest (what the schedule needs, and nothing more)."""

    email: str
    timezone: str
    send_at: time
    frequency: str = "daily"  # or "weekly", on `weekday`
    weekday: str = "mon"
    paused_until: date | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def cadence(self) -> Cadence:
        return Cadence.of(self.frequency, self.weekday, self.paused_until)


@dataclass(frozen=True)
class ReaderListing:
    """One line of `digest subscribers list`."""

    email: str
    name: str
    origin: str  # "config" | "signup" | "import"
    active: bool
    timezone: str
    send_at: str
    unsubscribed_at: str | None
    first_seen: str
    schedule: str = "daily"  # "weekly on Friday (paused until 2026-12-24)", ...


# The settings kept as the profile's JSON (the others have columns of their own).
PROFILE_KEYS = ("keywords", "exclude", "authors", "like", "max_papers", "min_score", "upvote_boost")


def profile_json(sub: Subscriber) -> str:
    """The reader's settings as the state keeps them (timezone, send_at, frequency, weekday
    and paused_until have columns: the schedule reads them without the profiles)."""
    table = reader_table(sub)
    profile = {key: table[key] for key in PROFILE_KEYS}
    return json.dumps(profile, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def reader_from_row(row: Row) -> Subscriber:
    email, name, profile, timezone, send_at, frequency, weekday, paused_until = row
    data = json.loads(profile)
    return Subscriber(
        email=email,
        name=name,
        keywords=dict(data.get("keywords", {})),
        exclude=tuple(data.get("exclude", ())),
        authors=tuple(data.get("authors", ())),
        like=tuple(data.get("like", ())),
        max_papers=int(data.get("max_papers", 15)),
        min_score=float(data.get("min_score", 0.3)),
        upvote_boost=float(data.get("upvote_boost", 0.0)),
        timezone=timezone,
        send_at=_hhmm(send_at),
        frequency=frequency,
        weekday=weekday,
        paused_until=_day(paused_until),
    )


# What the profile page may change, and how each is kept in JSON (send_at as "HH:MM").
EDITABLE = (
    "keywords",
    "exclude",
    "authors",
    "max_papers",
    "min_score",
    "timezone",
    "send_at",
    "frequency",
    "weekday",
    "paused_until",
)


def edits_between(base: Subscriber, edited: Subscriber) -> dict[str, object]:
    """The editable fields where `edited` differs from `base`, as JSON values."""
    out: dict[str, object] = {}
    for name in EDITABLE:
        value = getattr(edited, name)
        if value != getattr(base, name):
            out[name] = _json_value(value)
    return out


def apply_edits(sub: Subscriber, edits: dict[str, object]) -> Subscriber:
    """`sub` with these page edits (from edits_between) in place of its own values."""
    changes: dict[str, object] = {}
    for name, value in edits.items():
        if name not in EDITABLE:
            continue  # a field a later version no longer lets the page change
        if name == "send_at":
            changes[name] = _hhmm(str(value))
        elif name in ("exclude", "authors"):
            changes[name] = tuple(str(v) for v in value) if isinstance(value, list) else ()
        elif name == "keywords":
            changes[name] = dict(value) if isinstance(value, dict) else {}
        elif name == "paused_until":
            changes[name] = date.fromisoformat(value) if isinstance(value, str) and value else None
        else:
            changes[name] = value
    return replace(sub, **changes) if changes else sub  # type: ignore[arg-type]


def _json_value(value: object) -> object:
    if isinstance(value, time):
        return f"{value:%H:%M}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


class ReaderProfiles:
    """The readers' settings in the subscribers table (a part of Store)."""

    db: Database

    def save_readers(
        self, readers: Sequence[Subscriber], *, origin: str, now: datetime, lookback_days: int
    ) -> int:
        """Add these readers, or update them (a reader of another origin becomes this one's:
        the config wins for the readers it lists). Returns how many rows changed. A new
        reader's start point is fixed now, once."""
        if origin not in ORIGINS:
            raise ValueError(origin)
        stamp = iso(now)
        rows = [
            (
                sub.email.lower(),
                sub.name,
                profile_json(sub),
                sub.timezone,
                f"{sub.send_at:%H:%M}",
                sub.frequency,
                sub.weekday,
                sub.paused_until.isoformat() if sub.paused_until else "",
                origin,
                stamp,
            )
            for sub in readers
        ]
        # Only the rows that change are written (in email order): a sync that changes nothing
        # writes and locks nothing, so it never waits on, or deadlocks with, the claims and
        # heartbeats of other workers updating these rows (PostgreSQL locks every row an
        # upsert meets, changed or not).
        current = {
            row[0]: tuple(row[1:])
            for row in self.db.select_in(
                "SELECT subscriber, name, profile, timezone, send_at, frequency, weekday, "
                "paused_until, origin FROM subscribers WHERE active = 1 "
                "AND subscriber IN ({marks})",
                [row[0] for row in rows],
            )
        }
        rows = sorted(row for row in rows if current.get(row[0]) != row[1:9])
        if not rows:
            return 0
        changed = 0
        with self.db.transaction() as db:
            start = _start_seq(db, now, lookback_days)
            for row in rows:
                cur = db.execute(
                    "INSERT INTO subscribers (subscriber, name, profile, timezone, send_at, "
                    "frequency, weekday, paused_until, origin, updated_at, start_seq, "
                    "first_seen, schedule_since, active, added) "
                    f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, {NEXT_ADDED}) "
                    "ON CONFLICT (subscriber) DO UPDATE SET name = excluded.name, "
                    "profile = excluded.profile, timezone = excluded.timezone, "
                    "send_at = excluded.send_at, origin = excluded.origin, active = 1, "
                    "updated_at = excluded.updated_at, "
                    # a new frequency or weekday is a new schedule: it owes nothing before now
                    "schedule_since = CASE WHEN subscribers.schedule_since = '' "
                    "OR subscribers.frequency <> excluded.frequency "
                    "OR subscribers.weekday <> excluded.weekday "
                    "THEN excluded.schedule_since ELSE subscribers.schedule_since END, "
                    "frequency = excluded.frequency, weekday = excluded.weekday, "
                    "paused_until = excluded.paused_until "
                    "WHERE subscribers.active = 0 "
                    "OR subscribers.origin <> excluded.origin "
                    "OR subscribers.profile <> excluded.profile "
                    "OR subscribers.name <> excluded.name "
                    "OR subscribers.timezone <> excluded.timezone "
                    "OR subscribers.send_at <> excluded.send_at "
                    "OR subscribers.frequency <> excluded.frequency "
                    "OR subscribers.weekday <> excluded.weekday "
                    "OR subscribers.paused_until <> excluded.paused_until",
                    (*row, start, stamp, stamp),
                )
                changed += max(cur.rowcount, 0)
        return changed

    def sync_config_readers(
        self,
        readers: Sequence[Subscriber],
        *,
        now: datetime,
        lookback_days: int,
        page_edits: bool = False,
    ) -> None:
        """The config's [[subscriber]] tables, into the state: the config wins for the readers
        it lists; a reader it no longer lists is deactivated (history kept). `page_edits`
        ([web] profile_edit): what a reader changed on the profile page wins over their table
        for the fields they changed (the rest is the config's)."""
        if page_edits:
            readers = self.with_page_edits(readers)
        self.save_readers(readers, origin="config", now=now, lookback_days=lookback_days)
        listed = {sub.email.lower() for sub in readers}
        gone = [
            email
            for (email,) in self.db.execute(
                "SELECT subscriber FROM subscribers WHERE origin = 'config' AND active = 1"
            )
            if email not in listed
        ]
        if gone:
            self.deactivate_readers(gone, now=now)

    def with_page_edits(self, readers: Sequence[Subscriber]) -> list[Subscriber]:
        """These readers with what each changed on the profile page applied."""
        rows = self.db.select_in(
            "SELECT subscriber, edits FROM profile_edits WHERE subscriber IN ({marks})",
            [sub.email.lower() for sub in readers],
        )
        edits = {str(email): json.loads(text) for email, text in rows}
        return [apply_edits(sub, edits.get(sub.email.lower(), {})) for sub in readers]

    def deactivate_readers(self, emails: Sequence[str], *, now: datetime) -> int:
        """No more digests for these readers; their history stays. Returns how many were
        active."""
        stamp = iso(now)
        with self.db.transaction() as db:
            changed = 0
            for email in emails:
                cur = db.execute(
                    "UPDATE subscribers SET active = 0, updated_at = ? "
                    "WHERE subscriber = ? AND active = 1",
                    (stamp, email.lower()),
                )
                changed += max(cur.rowcount, 0)
        return changed

    def active_readers(self, emails: Sequence[str] | None = None) -> list[Subscriber]:
        """The readers who get digests (all, or those of `emails`), by email."""
        rows: Iterable[Row]
        if emails is None:
            rows = self.db.execute(
                f"SELECT {READER_COLUMNS} FROM subscribers WHERE active = 1 ORDER BY subscriber"
            )
        else:
            rows = self.db.select_in(
                f"SELECT {READER_COLUMNS} FROM subscribers WHERE active = 1 "
                "AND subscriber IN ({marks})",
                sorted({e.lower() for e in emails}),
            )
        readers = [reader_from_row(row) for row in rows]
        return sorted(readers, key=lambda r: r.email)

    def reader_schedules(self) -> list[ReaderSchedule]:
        """Every active reader's time zone, send time and cadence (light: no profiles)."""
        rows = self.db.execute(
            "SELECT subscriber, timezone, send_at, frequency, weekday, paused_until "
            "FROM subscribers WHERE active = 1 ORDER BY subscriber"
        )
        return [
            ReaderSchedule(email, tz, _hhmm(send_at), frequency, weekday, _day(paused))
            for email, tz, send_at, frequency, weekday, paused in rows
        ]

    def schedule_starts(self, emails: Sequence[str]) -> dict[str, datetime]:
        """When each of these readers' schedule began (they joined, or last changed frequency
        or weekday): lowercased email -> aware UTC. A weekly send instant before it is not
        owed (digest.schedule.Cadence.since)."""
        rows = self.db.select_in(
            "SELECT subscriber, schedule_since FROM subscribers WHERE subscriber IN ({marks})",
            sorted({e.lower() for e in emails}),
        )
        return {str(email): datetime.fromisoformat(since) for email, since in rows if since}

    def reader_listing(self) -> list[ReaderListing]:
        rows = self.db.execute(
            "SELECT subscriber, name, origin, active, timezone, send_at, unsubscribed_at, "
            "first_seen, frequency, weekday, paused_until FROM subscribers ORDER BY subscriber"
        )
        listing = []
        for *head, frequency, weekday, paused in rows:
            schedule = Cadence.of(frequency, weekday, _day(paused)).describe()
            email, name, origin, active, tz, send_at, left, first = head
            listing.append(
                ReaderListing(email, name, origin, bool(active), tz, send_at, left, first, schedule)
            )
        return listing


def _start_seq(db: Database, now: datetime, lookback_days: int) -> int:
    """The start point of a reader first seen now: the papers first seen within
    lookback_days are theirs."""
    since = iso(now - timedelta(days=lookback_days))
    row = db.execute(
        "SELECT COALESCE(MAX(seq), 0) FROM papers WHERE first_seen < ?", (since,)
    ).fetchone()
    return int(row[0])


def _hhmm(text: str) -> time:
    hour, minute = (int(part) for part in text.split(":"))
    return time(hour, minute)


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text else None
