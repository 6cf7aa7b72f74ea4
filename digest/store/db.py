"""One connection to the state, and its transactions, on either backend.

    db = open_database(location)              # SQLite file or PostgreSQL, migrated
    with db.transaction():                    # one write transaction; a failed write rolls back
        db.execute("INSERT ...", (a, b))
    rows = db.execute("SELECT ...", (x,)).fetchall()

Every statement is written once, with `?` placeholders, in the SQL both backends share (the
PostgreSQL connection turns `?` into its own placeholders). Writes happen only inside
`transaction()`: each is short, so a process killed at any point leaves the state consistent.
A write that fails (disk full, read-only file, a database gone away) becomes a StateError
naming the fix; what was committed before stays as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from digest.errors import StateError, StateReplaced
from digest.location import StateLocation
from digest.store.migrations import migrate_sqlite

IN_CHUNK = 500  # keys per "IN (...)": under SQLite's limit on the variables of a statement
Row = tuple[Any, ...]


class Cursor(Protocol):
    """What both drivers' cursors give: rows as tuples."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int) -> list[Any]: ...

    @property
    def description(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database:
    """An open state: the shared part of both backends."""

    dialect = ""
    # Appended to a SELECT that picks rows to claim: other workers skip rows locked by one.
    skip_locked = ""
    # Appended to a SELECT whose row must not change until the transaction ends.
    row_lock = ""

    def __init__(self, location: StateLocation | None) -> None:
        self.location = location  # None: an in-memory copy (dry runs, previews)

    @property
    def path(self) -> Path | None:
        return self.location.path if self.location is not None else None

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[Database]:
        raise NotImplementedError

    def limit_lock_wait(self, seconds: float) -> None:
        """How long a statement waits for another connection's lock before it fails (a
        StateError for a write) instead of the 30 s `open` allows: the web side answers a
        reader within seconds rather than holding a thread."""
        raise NotImplementedError

    def continue_counter(self, table: str, column: str) -> None:
        """After rows were inserted with their own numbers in a counted column (a copy): the
        next number handed out follows the largest (SQLite keeps track by itself)."""

    def lock(self, name: str) -> None:
        """Inside a transaction: wait until no other process holds `name`, and hold it until
        the transaction ends (SQLite's write lock does this for every transaction already)."""

    def close(self) -> None:
        raise NotImplementedError

    def select_in(self, sql: str, keys: Iterable[object], *params: object) -> Iterator[Row]:
        """Rows of `sql` for many keys: its "{marks}" becomes the placeholders of a chunk of
        keys (SQLite caps the variables of one statement); `params` come before them."""
        keys = list(keys)
        for start in range(0, len(keys), IN_CHUNK):
            chunk = keys[start : start + IN_CHUNK]
            yield from self.execute(sql.format(marks=",".join("?" * len(chunk))), (*params, *chunk))


class SqliteDatabase(Database):
    """A SQLite state file (or an in-memory copy of one)."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, location: StateLocation | None) -> None:
        super().__init__(location)
        self.conn = conn

    @classmethod
    def open(cls, location: StateLocation, *, create: bool = True) -> SqliteDatabase:
        path = location.path
        assert path is not None
        if not create and not path.exists():
            raise StateReplaced(
                f"the state file {str(path)!r} is gone; nothing more is sent, so no digest "
                "goes out twice",
                fix="put it back, or restart the daemon to start a new state on purpose",
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: every commit survives a killed process; a power cut can lose
            # the last commits (README: Delivery guarantees), never corrupt the file.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            migrate_sqlite(conn)
            db = cls(conn, location)
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
        return db

    @classmethod
    def copy_of(cls, location: StateLocation) -> SqliteDatabase:
        """An in-memory copy of the state file (empty when there is none yet)."""
        path = location.path
        assert path is not None
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
            migrate_sqlite(conn)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"cannot read state file {str(path)!r}: {exc}") from None
        return cls(conn, None)

    def close(self) -> None:
        self.conn.close()

    def limit_lock_wait(self, seconds: float) -> None:
        self.conn.execute(f"PRAGMA busy_timeout = {max(0, round(seconds * 1000))}")

    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self.conn.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """One write transaction. A failed write (disk full, read-only file, corrupted file)
        rolls back and becomes a StateError: what was committed before stays as it was."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
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
