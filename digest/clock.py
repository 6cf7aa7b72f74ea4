"""Time, passed in: a Clock is a function that says what time it is (aware, UTC).

The run, the daemon, the state and the web side all take their clock from their caller, so a
test fixes the time with `fixed(moment)` or steps it with its own function, never by patching.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The system's time, aware, in UTC: the default clock."""
    return datetime.now(UTC)


def fixed(moment: datetime) -> Clock:
    """A clock stopped at `moment` (aware)."""
    if moment.tzinfo is None:
        raise ValueError("a clock's time must be aware (tzinfo=UTC)")
    return lambda: moment


def iso(moment: datetime) -> str:
    """How the state writes a moment: ISO 8601 in UTC, to the second (sorts as text)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")
