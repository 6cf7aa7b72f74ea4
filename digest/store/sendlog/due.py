"""What is due now for many readers at once: the schedule's pure rule (digest.schedule) with
the settled dates read from the send log in one query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
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
    the send log in one query. `log` None: no state yet, nothing is settled."""
    lasts = [(r.email, last_send_date(r.tz, r.send_at, now)) for r in readers]
    settled = log.settled_dates(lasts) if log is not None else set()
    return [
        due_digest(
            r.tz,
            r.send_at,
            now,
            {last} if (email.lower(), last) in settled else set(),
            catch_up=catch_up,
        )
        for r, (email, last) in zip(readers, lasts, strict=True)
    ]
