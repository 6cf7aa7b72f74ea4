"""A rate limit shared by all SMTP workers: at most N messages per minute, evenly spaced."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    """Hands out send slots at least 60/per_minute seconds apart (no bursts).

    Shared by every worker of one run. Slots are reserved in call order, so waiting workers
    queue up fairly. clock and sleep can be injected for tests.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self._clock = clock
        self._sleep = sleep
        self._next_slot: float | None = None

    def reserve(self) -> float:
        """Reserve the next slot; return how many seconds to wait for it (0 if free now)."""
        now = self._clock()
        if self._next_slot is None or self._next_slot <= now:
            self._next_slot = now + self.interval
            return 0.0
        wait = self._next_slot - now
        self._next_slot += self.interval
        return wait

    async def acquire(self) -> None:
        # reserve() runs without an await, so concurrent workers never get the same slot.
        wait = self.reserve()
        if wait > 0:
            await self._sleep(wait)
