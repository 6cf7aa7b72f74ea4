"""Weekly and paused readers in the state: the settings round-trip through the store (both
backends), `digest subscribers import/export` and `status`; what is due reads them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import Subscriber, load_config
from digest.schedule import Cadence
from digest.status import render_schedule
from digest.store import ReaderSchedule, StateLocation, Store, due_now
from tests.support.helpers import write_config

MON = datetime(2026, 6, 15, 5, 30, tzinfo=UTC)  # Monday 07:30 in Berlin
WEEKLY = Subscriber(
    email="wes@example.org",
    timezone="Europe/Berlin",
    send_at=time(7, 30),
    frequency="weekly",
    weekday="fri",
    paused_until=date(2026, 6, 30),
)


@pytest.fixture
def store(tmp_path, state_url):
    with Store.open(StateLocation.parse(state_url, tmp_path)) as s:
        yield s


def test_the_schedule_settings_round_trip_through_the_state(store):
    daily = Subscriber(email="dan@example.org")
    assert store.save_readers([WEEKLY, daily], origin="import", now=MON, lookback_days=3) == 2
    assert store.active_readers() == [daily, WEEKLY]
    schedules = {r.email: r for r in store.reader_schedules()}
    assert schedules["wes@example.org"] == ReaderSchedule(
        "wes@example.org", "Europe/Berlin", time(7, 30), "weekly", "fri", date(2026, 6, 30)
    )
    assert schedules["wes@example.org"].cadence == Cadence(4, date(2026, 6, 30))
    assert schedules["dan@example.org"].cadence == Cadence()
    listing = {r.email: r.schedule for r in store.reader_listing()}
    assert listing == {
        "dan@example.org": "daily",
        "wes@example.org": "weekly on Friday (paused until 2026-06-30)",
    }
    # the same settings again change nothing; a pause lifted is a change
    assert store.save_readers([WEEKLY], origin="import", now=MON, lookback_days=3) == 0
    unpaused = Subscriber(**{**WEEKLY.__dict__, "paused_until": None})
    assert store.save_readers([unpaused], origin="import", now=MON, lookback_days=3) == 1
    assert store.active_readers(["wes@example.org"]) == [unpaused]


def test_a_schedule_begins_when_the_reader_joins_or_changes_frequency_or_weekday(store):
    later = MON + timedelta(days=2)
    store.save_readers([WEEKLY], origin="import", now=MON, lookback_days=3)
    assert store.schedule_starts(["WES@example.org"]) == {"wes@example.org": MON}
    # another pause, send time or name: the same schedule, begun when it was
    moved = Subscriber(**{**WEEKLY.__dict__, "paused_until": None, "send_at": time(9, 0)})
    store.save_readers([moved], origin="import", now=later, lookback_days=3)
    assert store.schedule_starts(["wes@example.org"]) == {"wes@example.org": MON}
    # another weekday, or daily: a new schedule, from now
    monday = Subscriber(**{**moved.__dict__, "weekday": "mon"})
    store.save_readers([monday], origin="import", now=later, lookback_days=3)
    assert store.schedule_starts(["wes@example.org"]) == {"wes@example.org": later}
    daily = Subscriber(**{**monday.__dict__, "frequency": "daily"})
    store.save_readers([daily], origin="config", now=later + timedelta(hours=1), lookback_days=3)
    assert store.schedule_starts(["wes@example.org"]) == {
        "wes@example.org": later + timedelta(hours=1)
    }
    assert store.schedule_starts(["nobody@example.org"]) == {}


def test_what_is_due_reads_the_cadence_and_when_it_began(store):
    """A weekly-on-Monday reader who joins on a Wednesday is owed nothing for that week's
    Monday; one who joined before it is; a paused one nothing until after the pause."""
    wednesday = MON + timedelta(days=2)
    early = Subscriber(
        email="early@example.org", timezone="Europe/Berlin", send_at=time(7, 30),
        frequency="weekly", weekday="mon",
    )  # fmt: skip
    late = Subscriber(**{**early.__dict__, "email": "late@example.org"})
    paused = Subscriber(**{**early.__dict__, "email": "paused@example.org",
                           "frequency": "daily", "paused_until": date(2026, 6, 17)})  # fmt: skip
    store.save_readers([early, paused], origin="import", now=MON - timedelta(days=1),
                       lookback_days=3)  # fmt: skip
    store.save_readers([late], origin="import", now=wednesday, lookback_days=3)
    readers = store.active_readers()
    now = wednesday + timedelta(hours=3)
    dues = {r.email: d for r, d in zip(readers, due_now(store, readers, now), strict=True)}
    assert dues["early@example.org"].date == date(2026, 6, 15)
    assert dues["late@example.org"].date is None and dues["late@example.org"].missed is None
    assert dues["late@example.org"].next_date == date(2026, 6, 22)
    assert dues["paused@example.org"].date is None
    assert dues["paused@example.org"].paused_until == date(2026, 6, 17)
    assert dues["paused@example.org"].next_date == date(2026, 6, 18)
    # the light schedules (the daemon's, `status`'s) agree with the full readers
    schedules = store.reader_schedules()
    assert [d.date for d in due_now(store, schedules, now)] == [
        dues[r.email].date for r in schedules
    ]
    text = render_schedule(store, schedules, now=now, lease=timedelta(seconds=60))
    assert "paused@example.org: 2026-06-18 07:30 CEST / 05:30 UTC; paused until 2026-06-17" in text
    assert "late@example.org: 2026-06-22 07:30 CEST / 05:30 UTC; weekly on Monday" in text
    assert "early@example.org: 2026-06-22 07:30 CEST / 05:30 UTC; weekly on Monday; due now" in text


def test_import_and_export_keep_the_schedule(tmp_path):
    config = load_config(
        write_config(tmp_path / "digest.toml", sources=[{"type": "hf-papers"}], subscribers=[])
    )
    runner = CliRunner()
    jsonl = tmp_path / "readers.jsonl"
    jsonl.write_text(
        json.dumps({"email": "wes@example.org", "frequency": "weekly", "weekday": "Friday",
                    "paused_until": "2026-06-30", "timezone": "Europe/Berlin"}) + "\n"
        + json.dumps({"email": "dan@example.org"}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    done = runner.invoke(cli, ["subscribers", "import", str(jsonl), "-c", str(config.path)])
    assert done.exit_code == 0, done.output
    exported = runner.invoke(cli, ["subscribers", "export", "-c", str(config.path)])
    lines = [json.loads(line) for line in exported.output.splitlines()]
    wes = next(line for line in lines if line["email"] == "wes@example.org")
    dan = next(line for line in lines if line["email"] == "dan@example.org")
    assert (wes["frequency"], wes["weekday"], wes["paused_until"]) == (
        "weekly",
        "fri",
        "2026-06-30",
    )
    assert (dan["frequency"], dan["weekday"]) == ("daily", "mon") and "paused_until" not in dan
    as_csv = runner.invoke(cli, ["subscribers", "export", "--csv", "-c", str(config.path)])
    header, *rows = as_csv.output.splitlines()
    assert header.endswith(",frequency,weekday,paused_until")
    assert any(row.endswith(",weekly,fri,2026-06-30") for row in rows)
    assert any(row.endswith(",daily,mon,") for row in rows)
    # both read back as they were (nothing changes)
    for name, text in (("back.jsonl", exported.output), ("back.csv", as_csv.output)):
        (tmp_path / name).write_text(text, encoding="utf-8")
        again = runner.invoke(cli, ["subscribers", "import", name, "-c", str(config.path)])
        assert "(0 new or changed, 2 as they were)" in again.output, again.output
    listed = runner.invoke(cli, ["subscribers", "list", "-c", str(config.path)])
    assert "07:00 Europe/Berlin, weekly on Friday (paused until 2026-06-30)" in listed.output
    # a bad value in a file names the line and imports nothing
    bad = tmp_path / "bad.csv"
    bad.write_text("email,frequency\nx@example.org,weekly\ny@example.org,fortnightly\n")
    refused = runner.invoke(cli, ["subscribers", "import", str(bad), "-c", str(config.path)])
    assert refused.exit_code == 2
    assert "bad.csv: line 3 (y@example.org): frequency = 'fortnightly' is not one of" in (
        refused.output
    )


def test_a_profile_page_edit_moves_the_schedule_as_the_config_would(store):
    """What the profile page saves (weekly, a pause) is in the schedule's columns, and a new
    frequency starts a new schedule, as a change in the config does."""
    from digest.store.readers import edits_between

    daily = Subscriber(email="pat@example.org", timezone="Europe/Berlin", send_at=time(7, 30))
    store.save_readers([daily], origin="signup", now=MON, lookback_days=3)
    later = MON + timedelta(days=2)
    weekly = Subscriber(**{**daily.__dict__, "frequency": "weekly", "weekday": "fri"})
    store.save_page_edits(weekly, edits_between(daily, weekly), now=later)
    [schedule] = store.reader_schedules()
    assert schedule.cadence == Cadence(4)
    assert store.schedule_starts(["pat@example.org"]) == {"pat@example.org": later}
    assert store.reader_row("pat@example.org").reader == weekly

    paused = Subscriber(**{**weekly.__dict__, "paused_until": date(2026, 7, 1)})
    store.save_page_edits(paused, edits_between(daily, paused), now=later + timedelta(days=1))
    [schedule] = store.reader_schedules()
    assert schedule.cadence == Cadence(4, date(2026, 7, 1))
    # a pause alone is no new schedule
    assert store.schedule_starts(["pat@example.org"]) == {"pat@example.org": later}
    assert store.page_edits("pat@example.org")["paused_until"] == "2026-07-01"
