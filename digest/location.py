"""Where the state lives: a SQLite file (the embedded default) or a PostgreSQL database.

    [digest]
    state = "digest.sqlite3"                          # a file, relative to the config file
    state = "postgresql://digest@db.example.org/digest"
    state_password_env = "DIGEST_DB_PASSWORD"         # optional; else libpq's PGPASSWORD,
                                                      # ~/.pgpass or a service file

The password never sits in the config file: a URL that carries one is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class BadLocation(ValueError):
    """The state setting is not a usable path or PostgreSQL URL (the message says why; `fix`
    says what to write instead)."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True)
class StateLocation:
    """A SQLite file (`path`) or a PostgreSQL database (`url`)."""

    path: Path | None = None
    url: str = ""
    password_env: str = ""  # names the environment variable holding the database password

    @classmethod
    def parse(cls, value: str, base: Path) -> StateLocation:
        """`value` as the config writes it; a relative path is relative to `base`."""
        if value.lower().startswith(POSTGRES_SCHEMES):
            return cls(url=_check_url(value))
        if not value.strip():
            raise BadLocation("state is empty", fix='write a file name, e.g. "digest.sqlite3"')
        return cls(path=base / value)

    @property
    def is_postgres(self) -> bool:
        return bool(self.url)

    def password(self) -> str | None:
        """The database password from the environment variable the config names (None: leave
        it to libpq: PGPASSWORD, ~/.pgpass, a service file)."""
        return os.environ.get(self.password_env) or None if self.password_env else None

    def exists(self) -> bool:
        """Whether there is a state to read (a database always exists once reachable)."""
        return self.path.exists() if self.path is not None else True

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else self.url


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is not None:
        raise BadLocation(
            "state: the PostgreSQL URL carries a password",
            fix="remove it from the URL; set state_password_env, PGPASSWORD or ~/.pgpass",
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port == -1 or not parts.path.strip("/"):
        raise BadLocation(
            f"state = {url!r} is not a PostgreSQL URL with a database name",
            fix='write it as "postgresql://user@host:5432/dbname"',
        )
    return url
