"""A throwaway PostgreSQL server for the tests: Debian's own binaries, one cluster per session.

    def test_x(postgres_url):          # a fresh, empty database on the session's server
        with psycopg.connect(postgres_url) as conn: ...

``postgres_url`` is ``postgresql://digest@127.0.0.1:PORT/test_N``: role ``digest`` (not a
superuser) owns the database and logs in over TCP without a password. For password logins,
``postgres_server.password_url(name)`` gives the same database as role ``digest_pw`` (a member of
``digest``; scram-sha-256; the password is ``postgres_server.password``, not in the URL).
Each database is dropped when its test ends; the server, its files and its socket when the
session ends.

The server: ``initdb`` and ``postgres`` from /usr/lib/postgresql/*/bin (the newest version there;
nothing on PATH is needed), a data directory in a fresh temporary folder, listening on 127.0.0.1
on a free port, its unix socket in that folder. postgres refuses to run as root: when the tests
run as root, the server runs as the ``postgres`` user (which Debian's package creates), else
``nobody``, and owns the folder. It is this session's own child, started without pg_ctl so that
it dies with the session (the parent-death signal) even when pytest is killed. Durability is
off (fsync, synchronous_commit, full_page_writes): nothing here outlives the session.
When the binaries are missing, every test that uses the server is skipped with one reason.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.smtpd import free_port

BIN_PARENT = Path("/usr/lib/postgresql")
NOT_FOUND = (
    "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
    "apt-get install postgresql"
)
HOST = "127.0.0.1"
SUPERUSER = "postgres"  # the cluster's superuser (the fixture's own admin connections only)
USER = "digest"
PASSWORD_USER = "digest_pw"
PASSWORD = "digest-test-password"
START_LIMIT = 60.0  # seconds for the server to accept connections

# The system's temporary folder, read at import, before any test points tempfile at its tmp_path
# (a test's tmp_path lies under a folder only root can enter).
SYSTEM_TMP = tempfile.gettempdir()

HBA = f"""\
local all all                   trust
host  all {PASSWORD_USER} {HOST}/32 scram-sha-256
host  all all           {HOST}/32 trust
"""
SETTINGS = """
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
"""


def find_bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/VERSION/bin that has initdb and postgres."""

    def version(bin_dir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in bin_dir.parent.name.split(".") if part.isdigit())

    found = [
        bin_dir
        for bin_dir in BIN_PARENT.glob("*/bin")
        if all(os.access(bin_dir / name, os.X_OK) for name in ("initdb", "postgres"))
    ]
    return max(found, key=version, default=None)


def server_account() -> pwd.struct_passwd | None:
    """Who runs the server: None for this process's own user, unless that is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists")


# Loaded once here, so that the child, between fork and exec, only makes a call.
_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the server's process, after it took the server's user: SIGQUIT (postgres' immediate
    shutdown, which also ends its backends) when the test session's process dies."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT)


@dataclass
class PostgresServer:
    """A running server (see the module docstring)."""

    bin_dir: Path
    base: Path  # the temporary folder: data/, the socket, the log
    account: pwd.struct_passwd | None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    password: str = PASSWORD
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def url(self, dbname: str, user: str = USER) -> str:
        return f"postgresql://{user}@{HOST}:{self.port}/{dbname}"

    def password_url(self, dbname: str) -> str:
        return self.url(dbname, PASSWORD_USER)

    # -- running as the server's user -----------------------------------------------------------

    def _as_account(self) -> dict[str, Any]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        if self.account is None:
            return {"env": env, "cwd": self.base}
        env["HOME"] = str(self.base)
        return {
            "env": env,
            "cwd": self.base,
            "user": self.account.pw_uid,
            "group": self.account.pw_gid,
            "extra_groups": [],
        }

    def init(self) -> None:
        if self.account is not None:
            os.chown(self.base, self.account.pw_uid, self.account.pw_gid)
        command = [str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", SUPERUSER]
        command += ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=120, **self._as_account()
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        (self.data / "pg_hba.conf").write_text(HBA)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(SETTINGS + f"unix_socket_directories = '{self.base}'\n")

    def start(self) -> None:
        """Start on a free port; another port if that one was taken in the meantime."""
        for _ in range(3):
            self.port = free_port()
            command = [str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
            with self.log.open("ab") as log:
                self.process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                    **self._as_account(),
                )
            if self._wait_ready():
                return
            if "already in use" not in self.log.read_text(errors="replace"):
                break
        raise RuntimeError(f"postgres did not start; its log:\n{self.log.read_text()}")

    def _wait_ready(self) -> bool:
        """Until postmaster.pid says ready (as pg_ctl waits), or the server exits."""
        assert self.process is not None
        pid_file = self.data / "postmaster.pid"
        deadline = time.monotonic() + START_LIMIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                lines = pid_file.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            if (
                len(lines) >= 8
                and lines[0] == str(self.process.pid)
                and lines[7].strip() == "ready"
            ):
                return True
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(
            f"postgres not ready after {START_LIMIT:.0f} s; its log:\n{self.log.read_text()}"
        )

    def stop(self) -> None:
        """Fast shutdown (SIGINT); immediate (SIGQUIT), then SIGKILL, if that hangs."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
            process.send_signal(sig)
            try:
                process.wait(timeout=20)
                return
            except subprocess.TimeoutExpired:
                continue

    # -- databases ------------------------------------------------------------------------------

    def admin(self) -> Any:
        """A superuser connection over the unix socket (autocommit), for the fixture itself."""
        import psycopg

        return psycopg.connect(
            host=str(self.base), port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        )

    def create_roles(self) -> None:
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE {USER} LOGIN")
            conn.execute(f"CREATE ROLE {PASSWORD_USER} LOGIN IN ROLE {USER} PASSWORD '{PASSWORD}'")

    def create_database(self) -> str:
        """A fresh, empty database owned by ``digest``: a copy of template1, ~80 ms (file copy;
        PostgreSQL 15's default, WAL-logged, takes twice as long and its drop seven times)."""
        name = f"test_{next(self._names)}"
        with self.admin() as conn:
            copy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
            conn.execute(f"CREATE DATABASE {name} OWNER {USER}{copy}")
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start_server(bin_dir: Path) -> PostgresServer:
    server = PostgresServer(
        bin_dir=bin_dir,
        base=Path(tempfile.mkdtemp(prefix="digest-pg-", dir=SYSTEM_TMP)),
        account=server_account(),
    )
    try:
        server.init()
        server.start()
        server.create_roles()
    except BaseException:
        remove_server(server)
        raise
    return server


def remove_server(server: PostgresServer) -> None:
    server.stop()
    shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's server, started on first use (skips with NOT_FOUND without PostgreSQL)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(NOT_FOUND)
    server = start_server(bin_dir)
    try:
        yield server
    finally:
        remove_server(server)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for this test, as a URL (dropped when the test ends)."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)
