"""Copy a whole state into another, empty one: `digest state copy SRC DST`, e.g. a SQLite
file into PostgreSQL when the service outgrows one machine.

Every table is copied as it is, in an order that keeps references whole, rows in batches; the
destination keeps its own identity (it is a new state: a daemon started on the old one stops
rather than run on this one unknowingly). Stop the senders first: what they write during the
copy is not in it.
"""

from __future__ import annotations

from collections.abc import Callable

from digest.errors import StateError
from digest.store import Store

# Every table, in the order they are copied (schema_migrations and meta are the destination's).
TABLES = (
    "papers",
    "sources",
    "runs",
    "subscribers",
    "digests",
    "sent_papers",
    "resends",
    "feedback",
    "paper_embeddings",
    "profile_embeddings",
    "reader_models",
    "workers",
    "profile_edits",
    "imported_papers",
    "signups",
    "blocked_addresses",
    "signup_requests",
)
# Columns whose numbers a database hands out itself: the next one continues after the copy.
COUNTERS = (("papers", "seq"), ("runs", "id"), ("resends", "id"))
BATCH = 1000


def copy_state(
    source: Store, target: Store, *, progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Copy every table of `source` into `target`, which must hold no papers, readers or
    digests yet. Returns the rows copied per table."""
    for table in ("papers", "subscribers", "digests"):
        if target.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]:
            raise StateError(
                f"the destination state already holds {table}",
                fix="copy into a new, empty database (or file)",
            )
    copied: dict[str, int] = {}
    with target.db.transaction() as db:
        for table in TABLES:
            cursor = source.db.execute(f"SELECT * FROM {table}")
            columns = [c[0] for c in cursor.description]
            insert = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})"
            )
            total = 0
            while rows := cursor.fetchmany(BATCH):
                db.executemany(insert, [tuple(row) for row in rows])
                total += len(rows)
            copied[table] = total
            if progress is not None:
                progress(table, total)
        for table, column in COUNTERS:
            db.continue_counter(table, column)
    return copied
