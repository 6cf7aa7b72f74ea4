"""What a daemon tick finds due: pure decisions over the readers' schedules (no I/O but the one
read of what is settled, through digest.store.due_now)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from digest.schedule import Cadence, Due, due_digest
from digest.store import ReaderSchedule, Store, due_now

GroupKey = tuple[str, time]  # (time zone name, send_at)


@dataclass(frozen=True)
class Plan:
    """What a tick found: the digests due now, and the ones missed (outside the window)."""

    due: list[tuple[ReaderSchedule, date]] = field(default_factory=list)
    missed: list[tuple[ReaderSchedule, Due]] = field(default_factory=list)


def plan_tick(
    store: Store | None, readers: Sequence[ReaderSchedule], now: datetime, *, catch_up: timedelta
) -> Plan:
    """Which readers have a digest due at `now` (and which were missed). Reads only."""
    plan = Plan()
    for reader, due in zip(readers, due_now(store, readers, now, catch_up=catch_up), strict=True):
        if due.date is not None:
            plan.due.append((reader, due.date))
        elif due.missed is not None:
            plan.missed.append((reader, due))
    return plan


def group_key(reader: ReaderSchedule) -> GroupKey:
    return (reader.timezone, reader.send_at)


def group_label(key: GroupKey) -> str:
    return f"{key[1]:%H:%M} {key[0]}"


def next_wakeups(readers: Sequence[ReaderSchedule], now: datetime) -> dict[GroupKey, datetime]:
    """Each distinct (time zone, send_at) and its next send instant after `now`: the earliest
    of its readers' (a group of weekly or paused readers only wakes when one of them is due)."""
    wakeups: dict[GroupKey, datetime] = {}
    seen: set[tuple[GroupKey, Cadence]] = set()
    for reader in readers:
        key, cadence = group_key(reader), reader.cadence
        if (key, cadence) in seen:
            continue
        seen.add((key, cadence))
        at = due_digest(ZoneInfo(key[0]), key[1], now, cadence=cadence).next_at
        wakeups[key] = min(at, wakeups.get(key, at))
    return wakeups
