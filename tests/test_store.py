import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from digest.errors import RunLockedError, StateError
from digest.lock import run_lock
from digest.migrations import MIGRATIONS
from digest.models import Paper
from digest.store import Store

DAY1 = datetime(2026, 6, 12, 7, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def paper(pid: str, **kw) -> Paper:
    return Paper(id=pid, title=kw.pop("title", f"Paper {pid}"), **kw)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "state.sqlite3") as s:
        yield s


def test_schema_is_created_and_migrations_recorded(tmp_path):
    path = tmp_path / "state.sqlite3"
    Store.open(path).close()
    Store.open(path).close()  # reopening applies nothing twice
    conn = sqlite3.connect(path)
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))


def test_state_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "state.sqlite3"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'x')")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="newer than this program knows"):
        Store.open(path)


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path):
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="cannot use state file"):
        Store.open(path)


def test_record_papers_counts_new_and_keeps_first_seen(store):
    assert store.record_papers([paper("1"), paper("2")], now=DAY1) == 2
    assert store.record_papers([paper("2", upvotes=9), paper("3")], now=DAY2) == 1
    assert store.get_papers(["2"])["2"].upvotes == 9
    first_seen = dict(store.conn.execute("SELECT id, first_seen FROM papers"))
    assert first_seen["2"].startswith("2026-06-12")
    assert first_seen["3"].startswith("2026-06-13")


def test_validators_are_saved_with_the_papers(store):
    store.record_papers([paper("1")], now=DAY1, validators={"hf": ('"abc"', None)})
    state = store.source_state("hf")
    assert state is not None and state.etag == '"abc"' and state.last_error == ""


def test_new_subscriber_gets_lookback_then_only_what_is_newer(store):
    store.record_papers([paper("old")], now=DAY1 - timedelta(days=10))
    store.record_papers([paper("a"), paper("b")], now=DAY1)
    upto = store.max_seq()
    got = store.candidates("ada@x.org", upto_seq=upto, lookback_days=3, now=DAY1)
    assert [p.id for p in got] == ["a", "b"]

    store.prepare_digest(
        "ada@x.org",
        "2026-06-12",
        message_id="<m1@x>",
        upto_seq=upto,
        paper_ids=["a", "b"],
        now=DAY1,
    )
    # Not sent yet: the same papers are still candidates.
    assert len(store.candidates("ada@x.org", upto_seq=upto, lookback_days=3, now=DAY1)) == 2
    store.mark_sending("ada@x.org", "2026-06-12", now=DAY1)
    store.mark_sent("ada@x.org", "2026-06-12", now=DAY1)
    assert store.watermark("ada@x.org") == upto

    store.record_papers([paper("b"), paper("c")], now=DAY2)
    got = store.candidates("ada@x.org", upto_seq=store.max_seq(), lookback_days=3, now=DAY2)
    assert [p.id for p in got] == ["c"]


def test_failed_digest_rolls_into_the_next_date(store):
    store.record_papers([paper("a")], now=DAY1)
    store.prepare_digest(
        "ada@x.org",
        "2026-06-12",
        message_id="<m1@x>",
        upto_seq=store.max_seq(),
        paper_ids=["a"],
        now=DAY1,
    )
    store.mark_unsent(
        "ada@x.org", "2026-06-12", status="pending", code=451, error="later", now=DAY1
    )
    store.record_papers([paper("b")], now=DAY2)
    got = store.candidates("ada@x.org", upto_seq=store.max_seq(), lookback_days=3, now=DAY2)
    assert [p.id for p in got] == ["a", "b"]
    store.prepare_digest(
        "ada@x.org",
        "2026-06-13",
        message_id="<m2@x>",
        upto_seq=store.max_seq(),
        paper_ids=["a", "b"],
        now=DAY2,
    )
    assert store.get_digest("ada@x.org", "2026-06-12").status == "superseded"


def test_force_puts_back_the_papers_of_that_date(store):
    store.record_papers([paper("a")], now=DAY1)
    store.prepare_digest(
        "ada@x.org",
        "2026-06-12",
        message_id="<m1@x>",
        upto_seq=store.max_seq(),
        paper_ids=["a"],
        now=DAY1,
    )
    store.mark_sent("ada@x.org", "2026-06-12", now=DAY1)
    upto = store.max_seq()
    assert store.candidates("ada@x.org", upto_seq=upto, lookback_days=3, now=DAY1) == []
    again = store.candidates(
        "ada@x.org", upto_seq=upto, lookback_days=3, now=DAY1, resend_date="2026-06-12"
    )
    assert [p.id for p in again] == ["a"]


def test_open_copy_never_writes_the_file(tmp_path):
    path = tmp_path / "state.sqlite3"
    with Store.open(path) as s:
        s.record_papers([paper("a")], now=DAY1)
    before = path.read_bytes()
    with Store.open_copy(path) as copy:
        copy.record_papers([paper("b")], now=DAY2)
        assert copy.count_papers() == 2
    assert path.read_bytes() == before
    with Store.open(path) as s:
        assert s.count_papers() == 1
    # No file at all: the copy starts empty and creates nothing.
    with Store.open_copy(tmp_path / "missing.sqlite3") as copy:
        assert copy.count_papers() == 0
    assert not (tmp_path / "missing.sqlite3").exists()


def test_run_lock_excludes_a_second_holder(tmp_path):
    state = tmp_path / "state.sqlite3"
    with (
        run_lock(state),
        pytest.raises(RunLockedError, match="another digest run"),
        run_lock(state, timeout=0.2),
    ):
        pass
    with run_lock(state, timeout=0.2):  # released
        pass


def test_feedback_and_unsubscribes_are_recorded(tmp_path):
    from datetime import UTC, datetime

    from digest.store import Store

    now = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    with Store.open(tmp_path / "s.sqlite3") as store:
        store.record_feedback("Ada@Example.org", "2606.00467", "like", now=now)
        store.record_feedback("ada@example.org", "2606.00468", "dislike", now=now)
        store.record_feedback("ada@example.org", "2606.00467", "dislike", now=now)
        assert store.feedback("ada@example.org") == {
            "2606.00467": "dislike",
            "2606.00468": "dislike",
        }
        assert store.feedback("bob@example.org") == {}
        store.set_unsubscribed("Ada@example.org", True, now=now)
        assert set(store.unsubscribed()) == {"ada@example.org"}
        store.set_unsubscribed("ada@example.org", False, now=now)
        assert store.unsubscribed() == {}
