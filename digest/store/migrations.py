"""Schema changes as an ordered list, each applied once and recorded in schema_migrations.

The same steps exist for both backends (schema_sqlite.py, schema_postgres.py), in the same
order: a state on either has the same tables at the same version. Each step runs in one
transaction that re-reads the version first, so several processes opening the same state at
once (workers, the web side) never apply a step twice.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from digest.errors import StateError
from digest.store.schema_postgres import POSTGRES
from digest.store.schema_sqlite import SQLITE

# The step names, in order (both backends have the same).
MIGRATIONS = [name for name, _ in SQLITE]
assert [name for name, _ in POSTGRES] == MIGRATIONS, "the two schemas must have the same steps"

_CREATE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)
# Any fixed number: PostgreSQL's advisory lock that one migrating process holds.
_PG_MIGRATION_LOCK = 7_046_151


def migrate_sqlite(conn: sqlite3.Connection) -> int:
    """Bring a SQLite state up to date. Returns the schema version now in force."""
    conn.execute(_CREATE)
    current = _version(conn)
    while current < len(SQLITE):
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = _version(conn)  # another process may have got here first
            if current < len(SQLITE):
                name, sql = SQLITE[current]
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", (current + 1, name, _now())
                )
                current += 1
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current


def migrate_postgres(conn: Any) -> int:
    """Bring a PostgreSQL state up to date, all missing steps in one transaction under an
    advisory lock (its DDL is transactional: a step that fails leaves nothing half done)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_MIGRATION_LOCK,))
        conn.execute(_CREATE)
        current = _version(conn)
        while current < len(POSTGRES):
            name, sql = POSTGRES[current]
            conn.execute(sql)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (%s, %s, %s)", (current + 1, name, _now())
            )
            current += 1
    return current


def _version(conn: Any) -> int:
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    current = int(row[0])
    if current > len(MIGRATIONS):
        raise StateError(
            f"the state has schema version {current}, newer than this program knows "
            f"({len(MIGRATIONS)})",
            fix="upgrade paper digest, or point [digest] state at another state",
        )
    return current


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
