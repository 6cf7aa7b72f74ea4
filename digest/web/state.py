"""The web side's way to the state: a few worker threads, and a bounded wait for each.

A run holds SQLite's write lock for a moment at a time, but a stuck or hostile process can hold
it for long. SQLite's own wait is 30 s, and every request waiting on it held one of the
thread pool's threads: likes were answered 500 after 30 s (and lost), and pages waited for a
thread meanwhile. Here a request waits at most `wait_seconds` for a worker, then at most
`lock_seconds` for the lock; past either it gets StateBusy (the app answers 503 with
Retry-After, and nothing was recorded). Reads and writes have workers of their own, and a read
never waits for a writer (WAL): pages are answered while writes wait for the lock.

    state = StateAccess(path)
    await state.read(fn, *args)    # fn(store or None when there is no state file yet, *args)
    await state.write(fn, *args)   # fn(store, *args); creates the state file if needed

Each call opens the state on its own in its worker thread: nothing is shared across threads.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from digest.errors import StateError
from digest.location import StateLocation
from digest.store import Store

log = logging.getLogger("digest.web")

T = TypeVar("T")

READ_THREADS = 6
WRITE_THREADS = 3  # SQLite takes one writer at a time anyway
WAIT_SECONDS = 3.0  # for a free worker
LOCK_SECONDS = 3.0  # for another process's write lock
RETRY_AFTER_SECONDS = 5


class StateBusy(Exception):
    """The state could not be read or written in time (or not at all): nothing was recorded."""


class StateAccess:
    def __init__(
        self,
        path: StateLocation | Path,
        *,
        read_threads: int = READ_THREADS,
        write_threads: int = WRITE_THREADS,
        wait_seconds: float = WAIT_SECONDS,
        lock_seconds: float = LOCK_SECONDS,
    ) -> None:
        self.path = path
        self.wait_seconds = wait_seconds
        self.lock_seconds = lock_seconds
        # (waited for with a deadline, the threads themselves: never waited for)
        self._readers = anyio.CapacityLimiter(read_threads), anyio.CapacityLimiter(read_threads)
        self._writers = anyio.CapacityLimiter(write_threads), anyio.CapacityLimiter(write_threads)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._call(False, fn, args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._call(True, fn, args)

    async def _call(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        gate, workers = self._writers if write else self._readers
        try:
            with anyio.fail_after(self.wait_seconds):
                await gate.acquire()
        except TimeoutError:
            what = "write" if write else "read"
            log.warning(
                "web: no state %s worker free in %g s: answered 503", what, self.wait_seconds
            )
            raise StateBusy("no worker free") from None
        try:
            # Not cancellable once started: a write that began is waited for, so the answer
            # always says whether it was recorded (its own wait is bounded by lock_seconds).
            call = functools.partial(self._in_thread, write, fn, args)
            return await anyio.to_thread.run_sync(call, limiter=workers)
        finally:
            gate.release()

    def _in_thread(self, write: bool, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            if not write and not self.path.exists():
                return fn(None, *args)  # a GET never creates the state
            with Store.open(self.path) as store:
                store.db.limit_lock_wait(self.lock_seconds)
                return fn(store, *args)
        except (StateError, sqlite3.DatabaseError) as exc:
            log.warning("web: the state is not available (%s): answered 503", _first_line(exc))
            raise StateBusy(str(exc)) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()
    return text[0] if text else type(exc).__name__
