"""What is due now for many readers at once: the schedule's pure rule (digest.schedule) with
the settled dates read from the send log in one query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from digest.schedule import Due, due_digest, last_send_date
from digest.store.sendlog.log import SendLogStore


class Scheduled(Protocol):
    """A reader as the schedule sees them (config.Subscriber is one)."""

    @property
    def email(self) -> str: ...
    @property
    def tz(self) -> ZoneInfo: ...
    @property
    def send_at(self) -> time: ...


def due_now(
    log: SendLogStore | None,
    readers: Sequence[Scheduled],
    now: datetime,
    *,
    catch_up: timedelta | None = None,
) -> list[Due]:
    """Each reader's Due at `now` (digest.schedule.due_digest), the settled dates read from
    the send log in one query. `log` None: no state yet, nothing is settled. Readers of one
    (time zone, send time) share the computation: 10,000 readers cost a few groups' worth."""
    groups = [(r.tz, r.send_at) for r in readers]
    last_of: dict[tuple[ZoneInfo, time], date] = {}
    for group in groups:
        if group not in last_of:
            last_of[group] = last_send_date(*group, now)
    lasts = [(r.email, last_of[g]) for r, g in zip(readers, groups, strict=True)]
    settled = log.settled_dates(lasts) if log is not None else set()
    dues: dict[tuple[ZoneInfo, time, bool], Due] = {}
    out: list[Due] = []
    for (email, last), group in zip(lasts, groups, strict=True):
        done = (email.lower(), last) in settled
        due = dues.get((*group, done))
        if due is None:
            due = dues[(*group, done)] = due_digest(
                *group, now, {last} if done else set(), catch_up=catch_up
            )
        out.append(due)
    return out
