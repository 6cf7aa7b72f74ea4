"""One run at a time per state file: an exclusive flock on `<state>.lock`.

The lock is released by the kernel when the process dies, so a killed run never leaves a
stale lock behind. The holder writes its role and pid into the file ("daemon 1234",
"send-now 1234") so that whoever finds it taken can say who has it.

- `send-now` waits its turn behind another `send-now` (up to a timeout). The async form polls
  with `asyncio.sleep`, so waiting never blocks the event loop.
- `digest run` (the daemon) holds the lock for its whole life. A `send-now` started meanwhile
  refuses at once (DaemonRunningError, exit 2): the daemon sends on schedule, and two senders
  would only race for the same digests.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from digest.errors import DaemonRunningError, RunLockedError, StateError

DAEMON = "daemon"
SEND_NOW = "send-now"


def lock_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


@dataclass(frozen=True)
class LockHolder:
    role: str  # "daemon", "send-now", ... ("?" when the file names no role)
    pid: int | None
    held: bool  # the flock is taken right now

    @property
    def alive(self) -> bool:
        """The recorded pid is a live process (of this machine's pid namespace)."""
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, someone else's (the daemon under DynamicUser)
            return True
        return True


def read_holder(state_path: Path) -> LockHolder | None:
    """Who holds the lock of `state_path` (held=False: the file names the last holder only)."""
    path = lock_path(state_path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            held = False
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            held = True
        return _parse_holder(os.pread(fd, 64, 0).decode(errors="replace"), held)
    finally:
        os.close(fd)


def lock_holder(state_path: Path) -> int | None:
    """The pid of the process holding the run lock now, or None when nobody holds it."""
    holder = read_holder(state_path)
    return (holder.pid or 0) if holder is not None and holder.held else None


def _parse_holder(text: str, held: bool) -> LockHolder:
    parts = text.split()
    if len(parts) == 1 and parts[0].isdigit():  # written by an older version: the pid alone
        return LockHolder("?", int(parts[0]), held)
    if len(parts) == 2 and parts[1].isdigit():
        return LockHolder(parts[0], int(parts[1]), held)
    return LockHolder("?", None, held)


class _Lock:
    """An open lock file; `try_take` takes the flock without waiting."""

    def __init__(self, state_path: Path, role: str) -> None:
        self.path = lock_path(state_path)
        self.role = role
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(
                f"cannot create the lock file {str(self.path)!r}: {exc.strerror or exc}",
                fix="point [digest] state at a writable folder",
            ) from None

    def try_take(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _parse_holder(os.pread(self.fd, 64, 0).decode(errors="replace"), True)
            if holder.role == DAEMON:
                raise DaemonRunningError(
                    f"the digest daemon (pid {holder.pid}) is running and sends on schedule",
                    fix="let it; to send by hand, stop it first (systemctl stop digest)",
                ) from None
            return False
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{self.role} {os.getpid()}".encode(), 0)
        return True

    def locked_error(self) -> RunLockedError:
        holder = _parse_holder(os.pread(self.fd, 64, 0).decode(errors="replace"), True)
        who = f"{holder.role} " if holder.role != "?" else ""
        return RunLockedError(
            f"another digest run ({who}pid {holder.pid or '?'}) still holds {self.path}",
            fix="wait for it to finish; a killed run releases the lock by itself",
        )

    def close(self) -> None:
        os.close(self.fd)  # closing the descriptor releases the flock


@contextmanager
def run_lock(
    state_path: Path, *, timeout: float = 600.0, poll: float = 0.1, role: str = SEND_NOW
) -> Iterator[None]:
    """Hold the run lock of `state_path`, waiting up to `timeout` seconds for another run."""
    lock = _Lock(state_path, role)
    try:
        deadline = time.monotonic() + timeout
        while not lock.try_take():
            if time.monotonic() >= deadline:
                raise lock.locked_error()
            time.sleep(poll)
        yield
    finally:
        lock.close()


@asynccontextmanager
async def async_run_lock(
    state_path: Path, *, timeout: float = 600.0, poll: float = 0.1, role: str = SEND_NOW
) -> AsyncIterator[None]:
    """`run_lock` for a running event loop: waits with asyncio.sleep, never blocking it."""
    lock = _Lock(state_path, role)
    try:
        deadline = time.monotonic() + timeout
        while not lock.try_take():
            if time.monotonic() >= deadline:
                raise lock.locked_error()
            await asyncio.sleep(poll)
        yield
    finally:
        lock.close()
