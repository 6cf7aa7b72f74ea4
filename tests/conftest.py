"""Shared test setup: no test reads the user's config or touches the internet; and the markers
(slow, browser, subprocess, postgres), given here from what each test uses."""

from __future__ import annotations

import tempfile
import types

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


# The two backends a state can live on; tests that take `state_url` run on each.
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def state_url(request: pytest.FixtureRequest) -> str:
    """`[digest] state` for a test, on each backend: a SQLite file (relative to the config
    file), or the URL of a fresh PostgreSQL database (skipped without PostgreSQL)."""
    if request.param == "sqlite":
        return "state.sqlite3"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def real_model():
    """The shipped embedding model in this process, loaded once for the session."""
    from digest.rank.embed import Embedder

    return Embedder()


# --- markers -------------------------------------------------------------------------------------
# Given from what a test uses, so that no test file has to say it (see [tool.pytest.ini_options]
# markers in pyproject.toml). tests/test_markers.py checks that every name below still exists.

# Tests that wait in real time, by node id ("file::name" covers every parameter): each takes
# seconds alone, and together they would put `pytest -m "not slow"` over a minute. The number
# is the test's own timeout in seconds (None: the default of pyproject's `timeout`).
SLOW: dict[str, int | None] = {
    # 40-100 s to the next minute boundary, then a minute more, by design (its docstring).
    "tests/test_daemon_process.py::test_daemon_sends_each_subscriber_at_their_time_and_stops_cleanly": 300,
    "tests/test_crash_and_concurrency.py::test_a_killed_run_is_caught_up_with_at_most_the_in_flight_duplicates": 240,
    "tests/test_crash_and_concurrency.py::test_two_runs_at_once_share_the_digests_and_send_each_once": 240,
    "tests/test_integrity.py::test_sigterm_stops_cleanly_and_the_next_run_sends_the_rest": None,
    "tests/test_integrity.py::test_sigterm_to_the_whole_group_as_systemd_sends_it": None,
    "tests/test_integrity.py::test_the_delivery_deadline_leaves_the_rest_pending": None,
    "tests/test_source_failures.py::test_a_failing_feed_does_not_stop_the_page_and_loses_nothing[a timeout]": None,
    "tests/test_deliver.py::test_stall_past_timeout_ends_pending": None,
    # 3,000 readers' mails, twice, among several worker processes; a daemon taken over.
    "tests/test_workers.py::test_workers_share_a_days_digests_and_a_killed_one_loses_nothing": 300,
    "tests/test_workers.py::test_a_daemon_killed_right_after_claiming_leaves_the_digest_to_the_other": 120,
    # These run the CLI in-process, whose run loads the shipped model in its own process
    # (2-9 s each since the restructure; the test gives no model of its own).
    "tests/test_cli.py::test_send_now_writes_to_the_outbox_once_per_date": None,
    "tests/test_cli.py::test_dry_run_changes_nothing_and_writes_html": None,
    "tests/test_cli.py::test_preview_json_is_in_rank_order": None,
    "tests/test_cli.py::test_preview_out_writes_html": None,
    "tests/test_cli.py::test_status_shows_runs_and_digests": None,
    "tests/test_cli.py::test_example_config_dry_run_on_a_local_page_writes_a_digest": None,
    "tests/test_source_failures.py::test_preview_json_with_every_kind_of_source": None,
}
# Fixtures that make a test slow: the shipped model (~6 s to load once, then real inference).
SLOW_FIXTURES = {"real_model"}
# A browser test uses the `browser` fixture or Debian's chromium (tests/support/browser.py).
BROWSER_FIXTURES = {"browser"}
BROWSER_NAMES = {"CHROMIUM"}
# A subprocess test calls the subprocess module, itself or through a helper of the tests.
SUBPROCESS_NAMES = {"subprocess"}
POSTGRES_FIXTURES = {"postgres_server"}


def _names_used(function: types.FunctionType) -> set[str]:
    """The global names a test function uses, and those of the test helpers it calls (the
    functions of tests/ it names, followed through), read from their code objects."""
    seen: set[types.FunctionType] = set()
    names: set[str] = set()
    todo = [function]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        own: set[str] = set()
        codes = [current.__code__]
        while codes:
            code = codes.pop()
            own.update(code.co_names)
            codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        names |= own
        for name in own & current.__globals__.keys():
            helper = current.__globals__[name]
            if isinstance(helper, types.FunctionType):  # through a decorator (@contextmanager)
                helper = getattr(helper, "__wrapped__", helper)
            if isinstance(helper, types.FunctionType) and helper.__module__.startswith("tests"):
                todo.append(helper)
    return names


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        function = getattr(item, "function", None)
        names = _names_used(function) if isinstance(function, types.FunctionType) else set()
        slow_key = next((k for k in (item.nodeid, item.nodeid.split("[")[0]) if k in SLOW), None)
        browser = bool(fixtures & BROWSER_FIXTURES or names & BROWSER_NAMES)
        if slow_key is not None or fixtures & SLOW_FIXTURES or browser:
            item.add_marker(pytest.mark.slow)
        if slow_key is not None and SLOW[slow_key] is not None:
            item.add_marker(pytest.mark.timeout(SLOW[slow_key]))
        if browser:
            item.add_marker(pytest.mark.browser)
        if names & SUBPROCESS_NAMES:
            item.add_marker(pytest.mark.subprocess)
        if fixtures & POSTGRES_FIXTURES:
            item.add_marker(pytest.mark.postgres)
