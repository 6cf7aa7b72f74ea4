"""Shared test setup: no test reads the user's config or touches the internet."""

from __future__ import annotations

import tempfile

import pytest

# Fixtures shared across test files live in their own modules; importing them here shares them.
from tests.support.httpserver import http_server  # noqa: F401
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401
from tests.support.smtpd import smtp_server  # noqa: F401


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Point everything at tmp_path: no stray ./digest.toml or $DIGEST_CONFIG is ever read."""
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    monkeypatch.delenv("DIGEST_SMTP_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)
    # Dry runs write into a fresh temporary folder; keep those inside the test's own tmp_path.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture(scope="session")
def real_model():
    """The shipped embedding model, loaded once for the session."""
    from digest.rank.embed import load_embedder

    return load_embedder()
