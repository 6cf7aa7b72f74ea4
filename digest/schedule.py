"""What is due when: one pure function that `send-now` (cron, a timer) and `run` (the daemon) share.

A subscriber's digest for local date D is due at D's *send instant*: `send_at` on D in the
subscriber's time zone, resolved with zoneinfo:

- a `send_at` inside the hour skipped by a spring-forward change (02:30 in Los Angeles on the
  March change day) moves to the first valid instant after the gap (03:00 local, the moment of
  the change), the way cron runs jobs of the skipped hour right after it;
- a `send_at` inside the hour repeated by a fall-back change takes its first occurrence
  (fold=0), so it is never due twice.

**The rule.** At any moment `now`, the candidate is the *latest* local date whose send instant
is at or before `now`. It is due unless that date's digest is already settled (sent, or found
empty). Nothing else decides, so every caller agrees whatever its cadence:

- The daemon wakes at each send instant and sends the date just reached. It passes `catch_up`
  (the config's `catch_up_hours`): a send instant older than that is not sent late (say, in
  the middle of the night after a suspend); it is reported as missed, and because nothing was
  recorded its papers are simply in the next digest. Nothing is lost.
- `send-now` (cron, a systemd timer, by hand) passes no `catch_up`: whatever has been due since
  the last settled digest is due now, however late the run is. A run before the send instant
  finds nothing due ("not due, next: ...") and records nothing.

**Why this survives DST with a timer at a fixed UTC time.** The old rule ("today in the
subscriber's zone") keyed a run by the local date of the run itself. A timer at 07:00 UTC is
00:00 in Los Angeles in summer and 23:00 the day before in winter, so across the November change
two runs landed on the same local date: the second was "already sent" and that day's papers came
a day late. Keying by the latest *passed send instant* instead makes the date a function of the
subscriber's own schedule, not of the timer: the send instants of consecutive local dates are
23, 24 or 25 hours apart, and as long as the timer's time is not within an hour of a
subscriber's send instant, each daily run passes exactly one new send instant. So a daily
07:00 UTC timer gives one digest per local day, consecutive dates, none skipped, and each
digest goes out at the first run at or after its send time (none late, none early). The tests
walk such a timer through both changes in Los Angeles and Berlin.

A run cadence of an hour or less (the shipped timer runs every 15 minutes) is safe for every
`send_at`: send instants are at least 23 hours apart, so every one is met by its own run,
within one cadence after it. With a *daily* timer whose time sits within an hour of a
subscriber's send instant, a DST change can put two send instants between two runs (the older
date's papers then go out under the newer date: merged, not lost) or none (that run finds
nothing due; the next one sends it). Hence the recommendation in deploy/README.md: a frequent
timer, or the daemon.

**Weekly and paused readers** (a Cadence). A weekly reader's candidate dates are only the
dates of their weekday: the rule is the same over those dates, so a frequent timer or the daemon
meets each weekly send instant once, across DST and in any zone (the weekday is the reader's
local one, whatever day it is in UTC). A weekly schedule starts when it is set (`since`: when
the reader joined or chose weekly or another weekday): a weekday whose send instant passed before
that is not owed, so the first weekly mail goes out on the next such weekday, never at once on
another day. A paused reader (`paused_until`) has nothing due for local dates up to and
including that date; the next digest is the first send date after it. Nothing is lost either
way: a digest holds every paper new to the reader since their last one, ranked together.

`--date` bypasses all this: it names the digest explicitly.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_Date = date  # `Due.date` shadows the type inside the class body

FREQUENCIES = ("daily", "weekly", "paused")  # "paused": daily after paused_until
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order


@dataclass(frozen=True)
class Cadence:
    """How often a reader gets a digest: daily, or weekly on one local weekday; and a pause."""

    weekday: int | None = None  # None: daily; 0 (Monday) .. 6 (Sunday): weekly on that day
    paused_until: _Date | None = None  # nothing due for local dates up to and including it
    # When the schedule began (a weekly one: when the reader joined or chose it); a send
    # instant before it is not owed. None: every passed date counts (daily readers).
    since: datetime | None = None

    @classmethod
    def of(cls, frequency: str, weekday: str, paused_until: _Date | None) -> Cadence:
        """From a reader's settings: frequency "daily" | "weekly" | "paused" (daily after
        paused_until), weekday "mon".."sun"."""
        if frequency not in FREQUENCIES:
            raise ValueError(frequency)
        day = WEEKDAYS.index(weekday) if frequency == "weekly" else None
        return cls(day, paused_until)

    @property
    def weekly(self) -> bool:
        return self.weekday is not None

    def sends_on(self, day: _Date) -> bool:
        """Whether `day` is one of this cadence's send dates (the pause aside)."""
        return self.weekday is None or day.weekday() == self.weekday

    def describe(self) -> str:
        """ "daily", "weekly on Monday", "... (paused until 2026-12-24)"."""
        text = "daily" if self.weekday is None else f"weekly on {_DAY_NAMES[self.weekday]}"
        if self.paused_until is not None:
            text += f" (paused until {self.paused_until})"
        return text


DAILY = Cadence()
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Due:
    date: _Date | None  # the digest date to send now, or None
    next_at: datetime  # aware UTC: the next send instant after now (after a pause)
    last: _Date  # the latest send date whose send instant has passed (due, settled or missed)
    last_at: datetime  # aware UTC: that date's send instant
    missed: _Date | None = None  # not settled, but older than catch_up: rolls into the next
    next_date: _Date | None = None  # the local date of next_at: the coming digest
    paused_until: _Date | None = None  # set when the reader's pause holds `last` back
    settled: bool = False  # `last` is settled (sent or found empty)


def send_instant(tz: ZoneInfo, send_at: time, day: date) -> datetime:
    """The aware UTC instant of `send_at` on local date `day` (gap: after it; fold: first)."""
    naive = datetime.combine(day, send_at.replace(tzinfo=None, fold=0))
    first = naive.replace(tzinfo=tz)  # fold=0: the first occurrence of a repeated time
    utc = first.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == naive:
        return utc
    # In a gap: fold=0 uses the offset before the change (an instant after it), fold=1 the
    # offset after (an instant before it). The change lies between; find it to the second.
    lo = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = utc
    after = hi.astimezone(tz).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def last_send_date(tz: ZoneInfo, send_at: time, now: datetime, cadence: Cadence = DAILY) -> date:
    """The latest local send date (each day, or the cadence's weekday) whose send instant is
    at or before `now`. The pause and `since` do not move it (see due_digest)."""
    day = now.astimezone(tz).date() + timedelta(days=1)
    while not cadence.sends_on(day) or send_instant(tz, send_at, day) > now:
        day -= timedelta(days=1)
    return day


def next_send_date(tz: ZoneInfo, send_at: time, after: date, cadence: Cadence = DAILY) -> date:
    """The first send date after `after` that the cadence sends on: past its pause, and with a
    send instant at or after its `since`."""
    day = after + timedelta(days=1)
    if cadence.paused_until is not None and day <= cadence.paused_until:
        day = cadence.paused_until + timedelta(days=1)
    while not cadence.sends_on(day) or (
        cadence.since is not None and send_instant(tz, send_at, day) < cadence.since
    ):
        day += timedelta(days=1)
    return day


def due_digest(
    tz: ZoneInfo,
    send_at: time,
    now: datetime,
    settled: Collection[date] = (),
    *,
    catch_up: timedelta | None = None,
    cadence: Cadence = DAILY,
) -> Due:
    """Which digest is due at `now` (aware), given the dates already settled in the store.

    `catch_up=None` (send-now): the latest passed date is due however late. With a window (the
    daemon), a send instant older than it is `missed` instead of due. `cadence`: weekly on a
    weekday, paused until a date, begun at `since` (default: daily, never paused)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    last = last_send_date(tz, send_at, now, cadence)
    last_at = send_instant(tz, send_at, last)
    coming = next_send_date(tz, send_at, last, cadence)
    base = Due(None, send_instant(tz, send_at, coming), last, last_at, next_date=coming)
    if cadence.paused_until is not None and last <= cadence.paused_until:
        return replace(base, paused_until=cadence.paused_until)
    if cadence.since is not None and last_at < cadence.since:
        return base  # it passed before this schedule began: not owed
    if last in settled:
        return replace(base, settled=True)
    if catch_up is not None and now - last_at > catch_up:
        return replace(base, missed=last)
    return replace(base, date=last)


def describe_instant(moment: datetime, tz: ZoneInfo) -> str:
    """'2026-11-24 07:30 CET / 06:30 UTC': a send instant in the subscriber's zone and in UTC."""
    local = moment.astimezone(tz)
    utc = moment.astimezone(UTC)
    if local.tzname() == "UTC":  # a reader in UTC: once is enough
        return f"{utc:%Y-%m-%d %H:%M} UTC"
    same_day = local.date() == utc.date()
    utc_text = utc.strftime("%H:%M UTC" if same_day else "%Y-%m-%d %H:%M UTC")
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} / {utc_text}"
