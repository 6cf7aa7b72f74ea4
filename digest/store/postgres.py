"""The state on PostgreSQL (psycopg 3): the same tables, statements and guarantees as SQLite.

Statements are the shared SQL with `?` placeholders, turned into psycopg's `%s` once each.
The connection is in autocommit mode, so a read is its own snapshot and each `transaction()`
is one short transaction, as on SQLite. Papers are recorded under an advisory lock, so their
sequence numbers commit in order and every reader sees a prefix of them (a paper can never
appear below a watermark already taken).

A dry run connects with `scratch=True`: everything it does runs in one transaction (each
`transaction()` a savepoint in it) that is rolled back when it closes, so nothing it writes is
ever seen by anyone else. It holds the rows it wrote until then.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from digest.errors import StateError
from digest.location import StateLocation
from digest.store.db import Cursor, Database
from digest.store.migrations import migrate_postgres

CONNECT_TIMEOUT = 10  # seconds


@functools.lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """The shared SQL with psycopg's placeholders (no statement of ours has a literal ?)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _lock_key(name: str) -> int:
    """A stable 63-bit key for pg_advisory_xact_lock."""
    return zlib.crc32(name.encode()) | (0x5EED << 32)


class PostgresDatabase(Database):
    dialect = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    row_lock = " FOR UPDATE"

    def __init__(self, conn: psycopg.Connection[Any], location: StateLocation, *, scratch: bool):
        super().__init__(None if scratch else location)
        self.conn = conn
        self.url = location.url
        self.scratch = scratch

    @classmethod
    def connect(cls, location: StateLocation, *, scratch: bool = False) -> PostgresDatabase:
        options: dict[str, Any] = {"application_name": "paper-digest"}
        password = location.password()
        if password:
            options["password"] = password  # else libpq's PGPASSWORD, ~/.pgpass, a service file
        try:
            conn = psycopg.connect(
                location.url,
                autocommit=not scratch,
                connect_timeout=CONNECT_TIMEOUT,
                **options,
            )
        except psycopg.Error as exc:
            raise _connect_error(location, exc) from None
        try:
            migrate_postgres(conn)
            if scratch:
                # Open the one transaction everything else happens in (each transaction()
                # below becomes a savepoint of it); close() rolls it back.
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            conn.close()
            raise StateError(
                f"cannot use the PostgreSQL state {location.url}: {_first_line(exc)}",
                fix="check that the user may create tables in that database",
            ) from None
        return cls(conn, location, scratch=scratch)

    def close(self) -> None:
        if self.scratch and not self.conn.closed:
            self.conn.rollback()  # a dry run leaves nothing behind
        self.conn.close()

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        try:
            return self.conn.execute(_pg(sql), params)
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.executemany(_pg(sql), list(rows))
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        try:
            with self.conn.transaction():
                yield self
        except psycopg.Error as exc:
            raise StateError(
                f"cannot write the PostgreSQL state {self.url}: {_first_line(exc)}",
                fix="check the database server; what was sent is recorded and the rest goes "
                "out on the next run",
            ) from None

    def limit_lock_wait(self, seconds: float) -> None:
        self.execute(f"SET lock_timeout = {max(1, round(seconds * 1000))}")

    def continue_counter(self, table: str, column: str) -> None:
        self.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
            f"COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
        )

    def lock(self, name: str) -> None:
        if not self.scratch:  # a dry run must never hold up the real workers
            self.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(name),))

    def _lost(self, exc: psycopg.Error) -> StateError:
        return StateError(
            f"lost the PostgreSQL state {self.url}: {_first_line(exc)}",
            fix="check the database server; what was sent is recorded and the next run "
            "sends the rest",
        )


def _connect_error(location: StateLocation, exc: psycopg.Error) -> StateError:
    text = _first_line(exc)
    if "password authentication failed" in text or "no password supplied" in text:
        fix = (
            f"set ${location.password_env}"
            if location.password_env
            else "set state_password_env, PGPASSWORD or ~/.pgpass"
        ) + " to the database user's password"
    elif "does not exist" in text and "database" in text:
        fix = "create the database (createdb), or correct the name in state"
    elif "role" in text and "does not exist" in text:
        fix = "create the user (createuser), or correct the user in state"
    else:
        fix = "check host, port and that the PostgreSQL server is running"
    return StateError(f"cannot connect to the PostgreSQL state {location.url}: {text}", fix=fix)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
