"""The due function, with fixed datetimes only (never a sleep, never the real clock)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.schedule import DAILY, WEEKDAYS, Cadence, due_digest, send_instant

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


# --- weekly and paused readers ------------------------------------------------------------------

KIRITIMATI = "Pacific/Kiritimati"  # UTC+14: its Monday morning is Sunday afternoon in UTC
PAGO_PAGO = "Pacific/Pago_Pago"  # UTC-11: its Monday morning is Monday evening in UTC
KOLKATA = "Asia/Kolkata"  # UTC+5:30


def weekly(day: str, **more) -> Cadence:
    return Cadence(WEEKDAYS.index(day), **more)


def paused(until: str, cadence: Cadence = DAILY) -> Cadence:
    return dataclasses.replace(cadence, paused_until=d(until))


# (zone, send_at, cadence, now UTC, settled dates, catch_up) -> (due date, next send UTC)
WEEKLY_CASES = [
    # LA, Sundays at 02:30: the spring change (Sun 2026-03-08) skips 02:30, sent at 03:00 PDT
    (LA, "02:30", weekly("sun"), "2026-03-08 09:59:59", (), None, "2026-03-01", "2026-03-08 10:00"),
    (LA, "02:30", weekly("sun"), "2026-03-08 09:59:59", ("2026-03-01",), None, None,
     "2026-03-08 10:00"),
    (LA, "02:30", weekly("sun"), "2026-03-08 10:00", ("2026-03-01",), None, "2026-03-08",
     "2026-03-15 09:30"),
    # LA, Sundays at 01:30: the autumn change (Sun 2026-11-01) repeats it: the first one counts
    (LA, "01:30", weekly("sun"), "2026-11-01 08:30", (), None, "2026-11-01", "2026-11-08 09:30"),
    (LA, "01:30", weekly("sun"), "2026-11-01 09:30", ("2026-11-01",), None, None,
     "2026-11-08 09:30"),
    # LA, Mondays at 07:00: 15:00 UTC in winter, 14:00 UTC the Monday after the change
    (LA, "07:00", weekly("mon"), "2026-03-09 13:59", ("2026-03-02",), None, None,
     "2026-03-09 14:00"),
    (LA, "07:00", weekly("mon"), "2026-03-09 14:00", ("2026-03-02",), None, "2026-03-09",
     "2026-03-16 14:00"),
    # Berlin, Sundays at 02:30: spring (03-29) skipped -> 03:00 CEST; autumn (10-25) repeated
    (BERLIN, "02:30", weekly("sun"), "2026-03-29 00:59", ("2026-03-22",), None, None,
     "2026-03-29 01:00"),
    (BERLIN, "02:30", weekly("sun"), "2026-03-29 01:00", ("2026-03-22",), None, "2026-03-29",
     "2026-04-05 00:30"),
    (BERLIN, "02:30", weekly("sun"), "2026-10-25 00:30", (), None, "2026-10-25", "2026-11-01 01:30"),
    (BERLIN, "02:30", weekly("sun"), "2026-10-25 01:30", ("2026-10-25",), None, None,
     "2026-11-01 01:30"),
    # the weekday is the reader's own: Kiritimati's Monday 07:00 is Sunday 17:00 in UTC
    (KIRITIMATI, "07:00", weekly("mon"), "2026-06-14 16:59", ("2026-06-08",), None, None,
     "2026-06-14 17:00"),
    (KIRITIMATI, "07:00", weekly("mon"), "2026-06-14 17:00", ("2026-06-08",), None, "2026-06-15",
     "2026-06-21 17:00"),
    # Pago Pago's Monday 07:00 is Monday 18:00 in UTC; its Sunday 23:30 is Monday 10:30 UTC
    (PAGO_PAGO, "07:00", weekly("mon"), "2026-06-15 17:59", ("2026-06-08",), None, None,
     "2026-06-15 18:00"),
    (PAGO_PAGO, "07:00", weekly("mon"), "2026-06-16 10:00", ("2026-06-08",), None, "2026-06-15",
     "2026-06-22 18:00"),
    (PAGO_PAGO, "23:30", weekly("sun"), "2026-06-15 10:30", ("2026-06-07",), None, "2026-06-14",
     "2026-06-22 10:30"),
    # Kolkata (+5:30): Monday 04:00 is Sunday 22:30 UTC; on a Wednesday a Friday reader waits
    (KOLKATA, "04:00", weekly("mon"), "2026-06-14 22:29", ("2026-06-08",), None, None,
     "2026-06-14 22:30"),
    (KOLKATA, "04:00", weekly("mon"), "2026-06-14 22:30", ("2026-06-08",), None, "2026-06-15",
     "2026-06-21 22:30"),
    (KOLKATA, "07:00", weekly("fri"), "2026-06-17 12:00", ("2026-06-12",), None, None,
     "2026-06-19 01:30"),
    # the daemon's catch-up window applies to the weekday's send instant
    (BERLIN, "07:30", weekly("mon"), "2026-06-15 17:30", (), H12, "2026-06-15", "2026-06-22 05:30"),
    (BERLIN, "07:30", weekly("mon"), "2026-06-15 17:30:01", (), H12, None, "2026-06-22 05:30"),
    # a weekly schedule begun on Wednesday owes nothing for that week's Monday
    (BERLIN, "07:30", weekly("mon", since=utc("2026-06-17 10:00")), "2026-06-18 12:00", (), None,
     None, "2026-06-22 05:30"),
    (BERLIN, "07:30", weekly("mon", since=utc("2026-06-17 10:00")), "2026-06-22 05:30", (), None,
     "2026-06-22", "2026-06-29 05:30"),
    (BERLIN, "07:30", weekly("mon", since=utc("2026-06-15 05:00")), "2026-06-15 06:00", (), None,
     "2026-06-15", "2026-06-22 05:30"),
    # paused until the 20th (a Saturday): nothing up to and including it, the 21st is due
    (BERLIN, "07:30", paused("2026-06-20"), "2026-06-15 06:00", (), None, None, "2026-06-21 05:30"),
    (BERLIN, "07:30", paused("2026-06-20"), "2026-06-20 23:00", (), None, None, "2026-06-21 05:30"),
    (BERLIN, "07:30", paused("2026-06-20"), "2026-06-21 05:29", (), None, None, "2026-06-21 05:30"),
    (BERLIN, "07:30", paused("2026-06-20"), "2026-06-21 05:30", (), None, "2026-06-21",
     "2026-06-22 05:30"),
    # paused weekly: the first weekday after the pause; a pause ending on the weekday holds it
    (BERLIN, "07:30", paused("2026-06-17", weekly("mon")), "2026-06-18 12:00", (), None, None,
     "2026-06-22 05:30"),
    (BERLIN, "07:30", paused("2026-06-17", weekly("mon")), "2026-06-22 05:30", (), None,
     "2026-06-22", "2026-06-29 05:30"),
    (BERLIN, "07:30", paused("2026-06-22", weekly("mon")), "2026-06-22 06:00", (), None, None,
     "2026-06-29 05:30"),
    # a pause ending across DST and far from UTC
    (LA, "07:00", paused("2026-03-07"), "2026-03-08 13:59", (), None, None, "2026-03-08 14:00"),
    (LA, "07:00", paused("2026-03-07"), "2026-03-08 14:00", (), None, "2026-03-08",
     "2026-03-09 14:00"),
    (KIRITIMATI, "07:00", paused("2026-06-14"), "2026-06-13 17:00", (), None, None,
     "2026-06-14 17:00"),
    (KIRITIMATI, "07:00", paused("2026-06-14"), "2026-06-14 17:00", (), None, "2026-06-15",
     "2026-06-15 17:00"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("zone", "send_at", "cadence", "now", "settled", "catch_up", "due", "next_at"), WEEKLY_CASES
)
def test_due_digest_weekly_and_paused(zone, send_at, cadence, now, settled, catch_up, due, next_at):
    result = due_digest(
        ZoneInfo(zone),
        time.fromisoformat(send_at),
        utc(now),
        {d(s) for s in settled},
        catch_up=catch_up,
        cadence=cadence,
    )
    assert result.date == (d(due) if due else None)
    assert result.next_at == utc(next_at)
    # the coming digest's date is the local date of its send instant, on the weekday
    assert result.next_date == result.next_at.astimezone(ZoneInfo(zone)).date()
    assert cadence.sends_on(result.next_date)
    if due is None and cadence.paused_until is None and not settled and catch_up is None:
        assert result.missed is None  # not owed (before the schedule began), not missed


def test_a_paused_reader_is_told_until_when():
    result = due_digest(ZoneInfo(BERLIN), time(7, 30), utc("2026-06-15 06:00"), cadence=paused(
        "2026-06-20"))  # fmt: skip
    assert result.paused_until == d("2026-06-20") and not result.settled and result.missed is None
    assert result.last == d("2026-06-15")  # the date the pause holds back


def test_cadence_of_reader_settings():
    assert Cadence.of("daily", "fri", None) == DAILY  # the weekday means nothing for daily
    assert Cadence.of("weekly", "fri", d("2026-12-24")) == Cadence(4, d("2026-12-24"))
    assert Cadence.of("weekly", "sun", None).describe() == "weekly on Sunday"
    # DESIGN's frequency = "paused" (with paused_until): daily once the pause ends
    assert Cadence.of("paused", "mon", d("2026-12-24")) == Cadence(None, d("2026-12-24"))
    with pytest.raises(ValueError):
        Cadence.of("monthly", "mon", None)


def _weekly_timer(zone, send_at, cadence, first_run, runs, every):
    tz, at = ZoneInfo(zone), time.fromisoformat(send_at)
    settled: set[date] = set()
    sent = []
    for i in range(runs):
        now = first_run + i * every
        due = due_digest(tz, at, now, settled, cadence=cadence)
        if due.date is not None:
            settled.add(due.date)
            sent.append((now, due.date))
    return sent


@pytest.mark.parametrize("zone", [LA, BERLIN, KIRITIMATI, PAGO_PAGO, KOLKATA])
@pytest.mark.parametrize("send_at", ["01:30", "02:30", "23:45"])
@pytest.mark.parametrize("day", ["sun", "mon"])
@pytest.mark.parametrize("first_run", ["2026-03-01 00:00", "2026-10-18 00:00"])
def test_half_hour_timer_sends_one_weekly_digest_a_week_across_dst(zone, send_at, day, first_run):
    """Five weeks of a 30-minute timer over a DST change (each on a Sunday): one digest a
    week, each on the reader's local weekday, consecutive weeks, within the cadence."""
    tz, at = ZoneInfo(zone), time.fromisoformat(send_at)
    cadence = weekly(day, since=utc(first_run))
    every = timedelta(minutes=30)
    sent = _weekly_timer(zone, send_at, cadence, utc(first_run), 5 * 7 * 48, every)
    dates = [sent_date for _, sent_date in sent]
    start, end = utc(first_run), utc(first_run) + 5 * 7 * 48 * every
    local = start.astimezone(tz).date() - timedelta(days=1)
    expected = [  # every weekday whose send instant the timer's span holds, once
        day
        for day in (local + timedelta(days=i) for i in range(40))
        if cadence.sends_on(day) and start <= send_instant(tz, at, day) <= end - every
    ]
    assert dates == expected
    assert len(dates) >= 4 and dates == [dates[0] + timedelta(weeks=i) for i in range(len(dates))]
    for run_at, sent_date in sent:
        assert timedelta(0) <= run_at - send_instant(tz, at, sent_date) < every


@pytest.mark.parametrize(
    ("zone", "send_at", "first_run"),
    [(LA, "07:00", "2026-02-26 07:00"), (BERLIN, "07:30", "2026-10-08 07:00"),
     (KIRITIMATI, "07:00", "2026-06-01 07:00")],
)  # fmt: skip
def test_daily_timer_sends_weekly_digests_on_their_weekday_across_dst(zone, send_at, first_run):
    """A timer at 07:00 UTC for four weeks: four weekly digests, none early, none a day late."""
    tz, at = ZoneInfo(zone), time.fromisoformat(send_at)
    cadence = weekly("sun", since=utc(first_run))
    sent = _weekly_timer(zone, send_at, cadence, utc(first_run), 28, timedelta(days=1))
    dates = [sent_date for _, sent_date in sent]
    assert len(dates) == 4 and dates == [dates[0] + timedelta(weeks=i) for i in range(4)]
    for run_at, sent_date in sent:
        assert timedelta(0) <= run_at - send_instant(tz, at, sent_date) < timedelta(days=1)
