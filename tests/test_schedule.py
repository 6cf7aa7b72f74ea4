"""The due function, with fixed datetimes only (never a sleep, never the real clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.schedule import due_digest, send_instant

LA = "America/Los_Angeles"
BERLIN = "Europe/Berlin"
H12 = timedelta(hours=12)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def d(text: str) -> date:
    return date.fromisoformat(text)


# (zone, send_at, now UTC, settled dates, catch_up) -> (due date, next send UTC)
CASES = [
    # east of UTC: Berlin summer (+2) and winter (+1), Tokyo (+9, the day before in UTC)
    (BERLIN, "07:30", "2026-06-15 05:29:59", (), None, "2026-06-14", "2026-06-15 05:30"),
    (BERLIN, "07:30", "2026-06-15 05:30", (), None, "2026-06-15", "2026-06-16 05:30"),
    (BERLIN, "07:30", "2026-01-15 06:30", (), None, "2026-01-15", "2026-01-16 06:30"),
    ("Asia/Tokyo", "07:00", "2026-06-14 22:00", (), None, "2026-06-15", "2026-06-15 22:00"),
    # west of UTC: Los Angeles summer (-7) and winter (-8)
    (LA, "07:00", "2026-06-15 13:59", (), None, "2026-06-14", "2026-06-15 14:00"),
    (LA, "07:00", "2026-06-15 14:00", (), None, "2026-06-15", "2026-06-16 14:00"),
    (LA, "07:00", "2026-01-15 15:00", (), None, "2026-01-15", "2026-01-16 15:00"),
    # far from UTC: Kiritimati (+14) sends the 15th on the 14th in UTC; Adak (-9/-10)
    ("Pacific/Kiritimati", "07:00", "2026-06-14 16:59", (), None, "2026-06-14", "2026-06-14 17:00"),
    ("Pacific/Kiritimati", "07:00", "2026-06-14 17:00", (), None, "2026-06-15", "2026-06-15 17:00"),
    ("America/Adak", "07:00", "2026-06-15 16:00", (), None, "2026-06-15", "2026-06-16 16:00"),
    ("America/Adak", "07:00", "2026-01-15 16:59", (), None, "2026-01-14", "2026-01-15 17:00"),
    # spring forward in LA (2026-03-08, 02:00 -> 03:00): 02:30 is skipped, sent at 03:00 PDT
    (LA, "02:30", "2026-03-08 09:59:59", (), None, "2026-03-07", "2026-03-08 10:00"),
    (LA, "02:30", "2026-03-08 10:00", (), None, "2026-03-08", "2026-03-09 09:30"),
    (LA, "07:00", "2026-03-08 14:00", (), None, "2026-03-08", "2026-03-09 14:00"),
    # fall back in LA (2026-11-01, 02:00 -> 01:00): 01:30 happens twice, the first one counts
    (LA, "01:30", "2026-11-01 08:30", (), None, "2026-11-01", "2026-11-02 09:30"),
    (LA, "01:30", "2026-11-01 09:30", ("2026-11-01",), None, None, "2026-11-02 09:30"),
    (LA, "07:00", "2026-11-01 15:00", (), None, "2026-11-01", "2026-11-02 15:00"),
    # Berlin: spring 2026-03-29 (02:00 -> 03:00), fall 2026-10-25 (03:00 -> 02:00)
    (BERLIN, "02:30", "2026-03-29 00:59", (), None, "2026-03-28", "2026-03-29 01:00"),
    (BERLIN, "02:30", "2026-03-29 01:00", (), None, "2026-03-29", "2026-03-30 00:30"),
    (BERLIN, "02:30", "2026-10-25 00:30", (), None, "2026-10-25", "2026-10-26 01:30"),
    (BERLIN, "02:30", "2026-10-25 01:30", ("2026-10-25",), None, None, "2026-10-26 01:30"),
    # already settled: nothing due until the next send instant
    (BERLIN, "07:30", "2026-06-15 09:00", ("2026-06-15",), None, None, "2026-06-16 05:30"),
    # an older unsettled date does not matter: the latest passed date is the one due
    (BERLIN, "07:30", "2026-06-15 09:00", ("2026-06-13",), None, "2026-06-15", "2026-06-16 05:30"),
    # catch-up (the daemon): inside the window it is sent late, outside it is missed
    (BERLIN, "07:30", "2026-06-15 17:30", (), H12, "2026-06-15", "2026-06-16 05:30"),
    (BERLIN, "07:30", "2026-06-15 17:30:01", (), H12, None, "2026-06-16 05:30"),
    (BERLIN, "07:30", "2026-06-16 05:00", (), H12, None, "2026-06-16 05:30"),  # after a suspend
    (BERLIN, "07:30", "2026-06-16 05:00", (), None, "2026-06-15", "2026-06-16 05:30"),  # send-now
    (LA, "07:00", "2026-06-16 01:59", (), H12, "2026-06-15", "2026-06-16 14:00"),
    (LA, "07:00", "2026-06-16 02:01", (), H12, None, "2026-06-16 14:00"),
]


@pytest.mark.parametrize(("zone", "send_at", "now", "settled", "catch_up", "due", "next_at"), CASES)
def test_due_digest(zone, send_at, now, settled, catch_up, due, next_at):
    result = due_digest(
        ZoneInfo(zone),
        time.fromisoformat(send_at),
        utc(now),
        {d(s) for s in settled},
        catch_up=catch_up,
    )
    assert result.date == (d(due) if due else None)
    assert result.next_at == utc(next_at)
    assert result.next_at.tzinfo is not None


def test_missed_names_the_date_that_rolls_over():
    result = due_digest(ZoneInfo(BERLIN), time(7, 30), utc("2026-06-16 05:00"), catch_up=H12)
    assert result.missed == d("2026-06-15")
    assert result.last_at == utc("2026-06-15 05:30")


def test_now_must_be_aware():
    with pytest.raises(ValueError):
        due_digest(ZoneInfo(BERLIN), time(7), datetime(2026, 6, 15, 7))


@pytest.mark.parametrize(
    ("zone", "send_at", "day", "instant"),
    [
        (LA, "02:30", "2026-03-08", "2026-03-08 10:00"),  # skipped: the moment of the change
        (LA, "01:30", "2026-11-01", "2026-11-01 08:30"),  # repeated: the first occurrence
        (BERLIN, "02:00", "2026-03-29", "2026-03-29 01:00"),  # the first skipped minute
        ("Pacific/Apia", "07:00", "2011-12-30", "2011-12-30 10:00"),  # a whole day skipped
    ],
)
def test_send_instant(zone, send_at, day, instant):
    assert send_instant(ZoneInfo(zone), time.fromisoformat(send_at), d(day)) == utc(instant)


def _timer(zone: str, send_at: str, first_run: datetime, runs: int, every: timedelta):
    """Fire send-now's rule at a fixed cadence; return (run time, digest date) of each digest."""
    tz, at = ZoneInfo(zone), time.fromisoformat(send_at)
    settled: set[date] = set()
    sent = []
    for i in range(runs):
        now = first_run + i * every
        due = due_digest(tz, at, now, settled)
        if due.date is not None:
            settled.add(due.date)
            sent.append((now, due.date))
    return sent


@pytest.mark.parametrize(
    ("zone", "send_at", "first_run"),
    [
        (LA, "07:00", "2026-10-30 07:00"),  # fall back on 11-01 (the old rule's double date)
        (LA, "07:00", "2026-03-06 07:00"),  # spring forward on 03-08
        (LA, "00:30", "2026-10-30 07:00"),
        (BERLIN, "07:30", "2026-10-23 07:00"),  # fall back on 10-25
        (BERLIN, "07:30", "2026-03-27 07:00"),  # spring forward on 03-29
        ("Pacific/Kiritimati", "07:00", "2026-06-13 07:00"),
        ("America/Adak", "07:00", "2026-10-30 07:00"),
    ],
)
def test_daily_timer_at_fixed_utc_time_across_dst(zone, send_at, first_run):
    """A timer at 07:00 UTC for four days: four digests, consecutive dates, none late (each
    goes out at the first run at or after its send instant)."""
    tz, at = ZoneInfo(zone), time.fromisoformat(send_at)
    sent = _timer(zone, send_at, utc(first_run), 4, timedelta(days=1))
    assert len(sent) == 4
    dates = [day for _, day in sent]
    assert dates == [dates[0] + timedelta(days=i) for i in range(4)]
    for run_at, day in sent:
        late_by = run_at - send_instant(tz, at, day)
        assert timedelta(0) <= late_by < timedelta(days=1)


def test_old_rule_would_have_sent_one_local_date_twice():
    """Why the rule changed: 'today in the subscriber's zone' at 07:00 UTC repeats 2026-11-01."""
    runs = [utc("2026-10-31 07:00") + timedelta(days=i) for i in range(4)]
    old = [r.astimezone(ZoneInfo(LA)).date() for r in runs]
    assert old[1] == old[2]
    new = [day for _, day in _timer(LA, "07:00", runs[0], 4, timedelta(days=1))]
    assert len(set(new)) == 4


@pytest.mark.parametrize("zone", [LA, BERLIN, "America/Adak", "Pacific/Kiritimati", "Asia/Tokyo"])
@pytest.mark.parametrize("send_at", ["00:00", "01:30", "02:30", "07:00", "23:45"])
@pytest.mark.parametrize("first_run", ["2026-03-05 00:00", "2026-10-22 00:00"])
def test_quarter_hour_timer_sends_every_date_once_within_the_cadence(zone, send_at, first_run):
    tz, at = ZoneInfo(zone), time.fromisoformat(send_at)
    every = timedelta(minutes=15)
    sent = _timer(zone, send_at, utc(first_run), 10 * 96, every)
    dates = [day for _, day in sent]
    assert dates == [dates[0] + timedelta(days=i) for i in range(len(dates))]
    assert len(dates) >= 9
    for run_at, day in sent[1:]:
        assert timedelta(0) <= run_at - send_instant(tz, at, day) < every
