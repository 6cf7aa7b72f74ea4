"""One run at a time per state file: an exclusive flock on `<state>.lock`.

The lock is released by the kernel when the process dies, so a killed run never leaves a
stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from digest.errors import RunLockedError, StateError


def lock_path_of(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


def lock_holder(state_path: Path) -> int | None:
    """The pid of the process holding the run lock now, or None when nobody holds it."""
    try:
        fd = os.open(lock_path_of(state_path), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").split()
            return int(text[-1]) if text and text[-1].isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextmanager
def run_lock(state_path: Path, *, timeout: float = 600.0, poll: float = 0.1) -> Iterator[None]:
    """Hold the run lock of `state_path`, waiting up to `timeout` seconds for another run."""
    lock_path = lock_path_of(state_path)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StateError(
            f"cannot create the lock file {str(lock_path)!r}: {exc.strerror or exc}",
            fix="point [digest] state at a writable folder",
        ) from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    raise RunLockedError(
                        f"another digest run (pid {holder}) still holds {lock_path}",
                        fix="wait for it to finish; a killed run releases the lock by itself",
                    ) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
