"""One connection to the state, and its transactions.

    db = Database.open_sqlite(path)          # creating and migrating the file if needed
    with db.transaction():                   # one write transaction; a failed write rolls back
        db.execute("INSERT ...", (a, b))
    rows = db.execute("SELECT ...", (x,)).fetchall()

Every statement is written once, with `?` placeholders, in the SQL that both backends share.
Writes happen only inside `transaction()`: each is short, so a process killed at any point
leaves the state consistent. A write that fails (disk full, read-only file, damaged file)
becomes a StateError naming the fix; what was committed before stays as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from digest.errors import StateError
from digest.store.migrations import migrate

IN_CHUNK = 500  # keys per "IN (...)": under SQLite's limit on the variables of a statement
Row = tuple[Any, ...]


class Database:
    """An open SQLite state: `path` is None for an in-memory copy (dry runs, previews)."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None) -> None:
        self.conn = conn
        self.path = path

    # --- opening ------------------------------------------------------------------------

    @classmethod
    def open_sqlite(cls, path: Path) -> Database:
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
    def copy_of_sqlite(cls, path: Path) -> Database:
        """An in-memory copy of the state at `path` (empty when there is none yet): a dry run
        works on it as a real run works on the file, and the file is never written."""
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

    # --- statements ---------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self.conn.executemany(sql, rows)

    def select_in(self, sql: str, keys: Iterable[object], *params: object) -> Iterator[Row]:
        """Rows of `sql` for many keys: its "{marks}" becomes the placeholders of a chunk of
        keys (SQLite caps the variables of one statement); `params` come before them."""
        keys = list(keys)
        for start in range(0, len(keys), IN_CHUNK):
            chunk = keys[start : start + IN_CHUNK]
            yield from self.conn.execute(
                sql.format(marks=",".join("?" * len(chunk))), (*params, *chunk)
            )

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
