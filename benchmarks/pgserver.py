"""PostgreSQL for the benchmarks: a throwaway server, or databases on a server you name.

    with Postgres.start() as pg:            # initdb + pg_ctl as the postgres user, in a temp dir
        url = pg.create("bench_r1")         # a fresh database: postgresql://postgres@127.0.0.1:P/bench_r1
        ...
        pg.drop("bench_r1")

    with Postgres.at("postgresql://me@db.example.org/postgres") as pg:   # an existing server
        url = pg.create("bench_r1")

The throwaway server runs Debian's binaries (/usr/lib/postgresql/*/bin) as the `postgres` user
(root may start it with runuser), listens on 127.0.0.1 at a free port, trusts local
connections, and keeps PostgreSQL's defaults otherwise (fsync and synchronous_commit on: what a
user gets). Not part of the test suite.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return Path(found[-1])


class Postgres:
    def __init__(self, server_url: str, folder: Path | None = None) -> None:
        self.server_url = server_url  # a database to connect to for CREATE / DROP DATABASE
        self.folder = folder  # the throwaway server's folder (None: a server of yours)

    @classmethod
    def start(cls) -> Postgres:
        bin_dir = _bin_dir()
        folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        shutil.chown(folder, "postgres", "postgres")
        data, port = folder / "data", _free_port()
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust",
             "-U", "postgres", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={folder}"
        subprocess.run(
            [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options,
             "-l", str(folder / "server.log"), "-w", "start"],
            check=True, capture_output=True,
        )  # fmt: skip
        return cls(f"postgresql://postgres@127.0.0.1:{port}/postgres", folder)

    @classmethod
    def at(cls, url: str) -> Postgres:
        return cls(url)

    def url(self, database: str) -> str:
        parts = urlsplit(self.server_url)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql)

    def create(self, database: str) -> str:
        """A fresh, empty database; returns its URL."""
        self._admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{database}"')
        return self.url(database)

    def drop(self, database: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def close(self) -> None:
        if self.folder is None:
            return
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*as_postgres, str(_bin_dir() / "pg_ctl"), "-D", str(self.folder / "data"),
             "-m", "fast", "-w", "stop"],
            capture_output=True,
        )  # fmt: skip
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
