"""What is due now for many readers at once: the schedule's pure rule (digest.schedule) with
the settled dates read from the send log in one query."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from digest.schedule import Cadence, Due, due_digest, last_send_date, send_instant


class Scheduled(Protocol):
    """A reader as the schedule sees them (config.Subscriber and store.ReaderSchedule are)."""

    @property
    def email(self) -> str: ...
    @property
    def tz(self) -> ZoneInfo: ...
    @property
    def send_at(self) -> time: ...
    @property
    def cadence(self) -> Cadence: ...


class ScheduleState(Protocol):
    """What the schedule reads from the state (the Store is one)."""

    def settled_dates(self, keys: Iterable[tuple[str, date]]) -> set[tuple[str, date]]: ...
    def schedule_starts(self, emails: Sequence[str]) -> dict[str, datetime]: ...


Group = tuple[ZoneInfo, time, Cadence]


def due_now(
    log: ScheduleState | None,
    readers: Sequence[Scheduled],
    now: datetime,
    *,
    catch_up: timedelta | None = None,
) -> list[Due]:
    """Each reader's Due at `now` (digest.schedule.due_digest), the settled dates (and when
    weekly readers' schedules began) read from the state in one query each. `log` None: no
    state yet, nothing is settled. Readers of one (time zone, send time, cadence) share the
    computation: 10,000 readers cost a few groups' worth."""
    groups: list[Group] = [(r.tz, r.send_at, r.cadence) for r in readers]
    last_of: dict[Group, tuple[date, datetime]] = {}
    for group in groups:
        if group not in last_of:
            last = last_send_date(*group[:2], now, group[2])
            last_of[group] = (last, send_instant(*group[:2], last))
    lasts = [(r.email, last_of[g][0]) for r, g in zip(readers, groups, strict=True)]
    settled = log.settled_dates(lasts) if log is not None else set()
    weekly = [r.email for r, g in zip(readers, groups, strict=True) if g[2].weekly]
    starts = log.schedule_starts(weekly) if log is not None and weekly else {}
    dues: dict[tuple[Group, bool], Due] = {}
    out: list[Due] = []
    for (email, last), group in zip(lasts, groups, strict=True):
        since = starts.get(email.lower())
        if since is not None and since > last_of[group][1]:
            # A weekly schedule begun after its last weekday's send instant: that one is not
            # owed (only then does `since` change the outcome, so the group is shared otherwise).
            group = (group[0], group[1], replace(group[2], since=since))
        done = (email.lower(), last) in settled
        due = dues.get((group, done))
        if due is None:
            due = dues[(group, done)] = due_digest(
                group[0],
                group[1],
                now,
                {last} if done else set(),
                catch_up=catch_up,
                cadence=group[2],
            )
        out.append(due)
    return out
