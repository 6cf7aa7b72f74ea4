import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from digest.errors import StateError
from digest.models import Paper
from digest.store import ClaimLost, StateLocation, Store
from digest.store.migrations import MIGRATIONS

DAY1 = datetime(2026, 6, 12, 7, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def paper(pid: str, **kw) -> Paper:
    return Paper(id=pid, title=kw.pop("title", f"Paper {pid}"), **kw)


@pytest.fixture
def store(tmp_path, state_url):
    """A new state, on each backend."""
    with Store.open(StateLocation.parse(state_url, tmp_path)) as s:
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
    first_seen = dict(store.db.execute("SELECT id, first_seen FROM papers"))
    assert first_seen["2"].startswith("2026-06-12")
    assert first_seen["3"].startswith("2026-06-13")


def test_validators_are_saved_with_the_papers(store):
    store.record_papers([paper("1")], now=DAY1, validators={"hf": ('"abc"', None)})
    state = store.source_state("hf")
    assert state is not None and state.etag == '"abc"' and state.last_error == ""


def test_new_subscriber_gets_lookback_then_only_what_is_newer(store):
    store.record_papers([paper("old")], now=DAY1 - timedelta(days=10))
    store.record_papers([paper("a"), paper("b")], now=DAY1)
    store.register_subscribers(["Ada@x.org"], now=DAY1, lookback_days=3)
    upto = store.max_seq()
    got = store.candidates("ada@x.org", upto_seq=upto)
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
    assert len(store.candidates("ada@x.org", upto_seq=upto)) == 2
    store.begin_send(
        "ada@x.org",
        "2026-06-12",
        message_id="<m1@x>",
        upto_seq=upto,
        paper_ids=["a", "b"],
        message=b"bytes",
        now=DAY1,
    )
    store.mark_sent("ada@x.org", "2026-06-12", now=DAY1)
    assert store.watermark("ada@x.org") == upto
    assert store.message_bytes("ada@x.org", "2026-06-12") == b"bytes"

    store.record_papers([paper("b"), paper("c")], now=DAY2)
    got = store.candidates("ada@x.org", upto_seq=store.max_seq())
    assert [p.id for p in got] == ["c"]


def test_the_start_point_is_fixed_when_first_seen(store):
    store.record_papers([paper("a")], now=DAY1)
    store.register_subscribers(["ada@x.org"], now=DAY1, lookback_days=1)
    # Days later the lookback window has moved past "a", but the start point has not.
    store.register_subscribers(["ada@x.org"], now=DAY1 + timedelta(days=5), lookback_days=1)
    assert [p.id for p in store.candidates("ada@x.org", upto_seq=store.max_seq())] == ["a"]


def test_failed_digest_rolls_into_the_next_date(store):
    store.record_papers([paper("a")], now=DAY1)
    store.register_subscribers(["ada@x.org"], now=DAY1, lookback_days=3)
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
    got = store.candidates("ada@x.org", upto_seq=store.max_seq())
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


def test_a_sealed_digest_keeps_its_papers_and_bytes(store):
    store.record_papers([paper("a")], now=DAY1)
    store.register_subscribers(["ada@x.org"], now=DAY1, lookback_days=3)
    fields = dict(message_id="<m1@x>", upto_seq=store.max_seq(), paper_ids=["a"])
    store.begin_send("ada@x.org", "2026-06-12", message=b"first", now=DAY1, **fields)
    # The connection dropped after the data went out: it may have been delivered.
    store.mark_unsent(
        "ada@x.org",
        "2026-06-12",
        status="pending",
        code=None,
        error="lost",
        now=DAY1,
        unknown=True,
    )
    store.record_papers([paper("b")], now=DAY2)
    assert [p.id for p in store.candidates("ada@x.org", upto_seq=store.max_seq())] == ["b"]
    assert [d.digest_date for d in store.sealed_digests("ada@x.org")] == ["2026-06-12"]
    # Another attempt can never change what it was, nor supersede it.
    store.begin_send(
        "ada@x.org",
        "2026-06-12",
        message=b"other",
        now=DAY2,
        message_id="<m9@x>",
        upto_seq=store.max_seq(),
        paper_ids=["a", "b"],
    )
    record = store.get_digest("ada@x.org", "2026-06-12")
    assert (record.message_id, record.paper_ids, record.attempts) == ("<m1@x>", ("a",), 2)
    assert store.message_bytes("ada@x.org", "2026-06-12") == b"first"
    store.prepare_digest(
        "ada@x.org",
        "2026-06-13",
        message_id="<m2@x>",
        upto_seq=store.max_seq(),
        paper_ids=["b"],
        now=DAY2,
    )
    assert store.get_digest("ada@x.org", "2026-06-12").status == "sending"


def test_a_dead_runs_sending_digest_is_sealed(store):
    store.record_papers([paper("a")], now=DAY1)
    store.begin_send(
        "ada@x.org",
        "2026-06-12",
        message_id="<m1@x>",
        upto_seq=1,
        paper_ids=["a"],
        message=b"x",
        now=DAY1,
    )
    assert store.seal_interrupted(now=DAY2) == 1
    assert store.get_digest("ada@x.org", "2026-06-12").resend_due


def test_a_forced_resend_never_touches_the_digest(store):
    store.record_papers([paper("a")], now=DAY1)
    store.begin_send(
        "ada@x.org",
        "2026-06-12",
        message_id="<m1@x>",
        upto_seq=1,
        paper_ids=["a"],
        message=b"x",
        now=DAY1,
    )
    store.mark_sent("ada@x.org", "2026-06-12", now=DAY1)
    before = store.get_digest("ada@x.org", "2026-06-12")
    rid = store.begin_resend("ada@x.org", "2026-06-12", message_id="<m2@x>", message=b"y", now=DAY2)
    store.mark_resend(rid, status="sending", now=DAY2)
    store.mark_resend(rid, status="failed", now=DAY2, code=550, error="no")
    assert store.get_digest("ada@x.org", "2026-06-12") == before
    assert store.watermark("ada@x.org") == 1
    (resend,) = store.resends("ada@x.org")
    assert (resend.status, resend.attempts, resend.message_id) == ("failed", 1, "<m2@x>")


def test_a_failed_write_rolls_back_and_says_so(store):
    with pytest.raises(StateError, match="cannot write"), store.db.transaction() as conn:
        conn.execute("INSERT INTO runs (command, started_at) VALUES ('x', 'now')")
        conn.execute("INSERT INTO no_such_table VALUES (1)")
    assert store.recent_runs() == []  # rolled back
    with pytest.raises(ValueError), store.db.transaction() as conn:
        conn.execute("INSERT INTO runs (command, started_at) VALUES ('x', 'now')")
        raise ValueError("a bug in the caller")
    assert store.recent_runs() == []  # rolled back too


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


def test_a_claim_keeps_a_reader_to_one_worker_until_it_expires(store):
    store.register_subscribers(["ada@x.org", "bob@x.org"], now=DAY1, lookback_days=3)
    later = DAY1 + timedelta(seconds=60)
    assert store.claim("w1", ["Ada@x.org", "bob@x.org"], now=DAY1, until=later) == {
        "ada@x.org",
        "bob@x.org",
    }
    assert store.claim("w2", ["ada@x.org"], now=DAY1, until=later) == set()  # w1 holds it
    # w1 lets bob go; it starts sending ada's digest and dies mid-send
    store.release("w1", ["bob@x.org"])
    held = later + timedelta(minutes=5)
    assert store.claim("w2", ["bob@x.org"], now=DAY1, until=held) == {"bob@x.org"}
    store.begin_send(
        "ada@x.org",
        "2026-06-12",
        message_id="<m@x>",
        upto_seq=0,
        paper_ids=[],
        message=b"bytes",
        now=DAY1,
        worker="w1",
    )
    assert store.expired_claims(later + timedelta(seconds=1)) == ["ada@x.org"]
    # w2 takes the expired claim over: the digest w1 left 'sending' is sealed (repeated
    # byte for byte or not at all), and w1 can no longer start a transaction for ada
    taken = store.claim(
        "w2",
        ["ada@x.org"],
        now=later + timedelta(seconds=1),
        until=later + timedelta(seconds=61),
    )
    assert taken == {"ada@x.org"}
    [sealed] = store.sealed_digests("ada@x.org")
    assert sealed.message_id == "<m@x>"
    with pytest.raises(ClaimLost, match="another worker took over"):
        store.begin_send(
            "ada@x.org",
            "2026-06-12",
            message_id="<m@x>",
            upto_seq=0,
            paper_ids=[],
            message=b"bytes",
            now=later,
            worker="w1",
        )
    store.mark_sent("ada@x.org", "2026-06-12", now=later, release="w2")
    assert [c.subscriber for c in store.claims()] == ["bob@x.org"]


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
