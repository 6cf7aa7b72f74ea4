"""The throwaway PostgreSQL of tests/support/postgres.py: a database per test, isolated, usable
with psycopg as the URL says; password logins; the server runs as a user that is not root."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import PostgresServer


def test_a_fresh_database_takes_a_table_and_gives_back_what_was_written(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("digest",)
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchone() == (0,)
        conn.execute("CREATE TABLE paper (id text PRIMARY KEY, title text NOT NULL)")
        conn.execute("INSERT INTO paper VALUES (%s, %s)", ("2606.13677", "Ünïcode title"))
    with psycopg.connect(postgres_url) as conn:  # committed: another connection sees it
        rows = conn.execute("SELECT id, title FROM paper").fetchall()
    assert rows == [("2606.13677", "Ünïcode title")]


def test_two_databases_are_isolated(postgres_server: PostgresServer) -> None:
    first, second = postgres_server.create_database(), postgres_server.create_database()
    try:
        with psycopg.connect(postgres_server.url(first)) as conn:
            conn.execute("CREATE TABLE paper (id text)")
            conn.execute("INSERT INTO paper VALUES ('a')")
        with (
            psycopg.connect(postgres_server.url(second)) as conn,
            pytest.raises(psycopg.errors.UndefinedTable),
        ):
            conn.execute("SELECT * FROM paper")
    finally:
        postgres_server.drop_database(first)
        postgres_server.drop_database(second)
    with postgres_server.admin() as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database")]
    assert first not in names and second not in names


def test_a_password_login_needs_the_password(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    url = postgres_server.password_url(postgres_url.rsplit("/", 1)[1])
    with psycopg.connect(url, password=postgres_server.password) as conn:
        conn.execute("CREATE TABLE t (x int)")  # a member of the owner may create tables
        assert conn.execute("SELECT current_user").fetchone() == ("digest_pw",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(url, password="wrong")


def test_the_server_runs_as_an_unprivileged_user(postgres_server: PostgresServer) -> None:
    assert postgres_server.process is not None
    status = Path(f"/proc/{postgres_server.process.pid}/status").read_text()
    [uids] = [line for line in status.splitlines() if line.startswith("Uid:")]
    real_uid = int(uids.split()[1])
    account = postgres_server.account
    assert real_uid != 0
    assert real_uid == (os.getuid() if account is None else account.pw_uid)
