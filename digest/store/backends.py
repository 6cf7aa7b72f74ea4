"""Open the state on the backend its location names: a SQLite file or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from digest.location import StateLocation
from digest.store.db import Database, SqliteDatabase


def open_database(location: StateLocation | Path, *, create: bool = True) -> Database:
    """Open (creating and migrating if needed) the state at `location`. `create=False`: a
    SQLite file that is not there is an error, not a new empty state."""
    location = _location(location)
    if location.is_postgres:
        from digest.store.postgres import PostgresDatabase

        return PostgresDatabase.connect(location)
    return SqliteDatabase.open(location, create=create)


def copy_of_database(location: StateLocation | Path) -> Database:
    """The state at `location` to work on and throw away (a dry run): an in-memory copy of a
    SQLite file; for PostgreSQL, one transaction that is rolled back when it is closed."""
    location = _location(location)
    if location.is_postgres:
        from digest.store.postgres import PostgresDatabase

        return PostgresDatabase.connect(location, scratch=True)
    return SqliteDatabase.copy_of(location)


def _location(location: StateLocation | Path) -> StateLocation:
    return location if isinstance(location, StateLocation) else StateLocation(path=location)
