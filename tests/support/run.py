"""Running the service in a test: its dependencies, passed in (nothing is patched)."""

from __future__ import annotations

from datetime import datetime

from digest.clock import Clock, fixed
from digest.deliver import Mailer
from digest.run import Deps, ModelFactory


def deps(
    now: datetime | None = None,
    *,
    clock: Clock | None = None,
    mailer: Mailer | None = None,
    model: ModelFactory | None = None,
) -> Deps:
    """Deps for a test run: the clock stopped at `now` (or `clock`), the mailer given (else the
    config's), and keywords only unless `model` starts one (the shipped model costs seconds per
    day of papers; the tests that are about it ask for it)."""
    if clock is None:
        clock = fixed(now) if now is not None else Deps().clock
    return Deps(clock=clock, mailer=mailer, model=model)
