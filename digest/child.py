"""What a run's worker processes (the render pool, the embedding model) share."""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.context
import os
import signal

_PR_SET_PDEATHSIG = 1


def spawn_context() -> multiprocessing.context.SpawnContext:
    """Workers are spawned, never forked: a fork of a process with an event loop, threads and
    open sockets is not safe."""
    return multiprocessing.get_context("spawn")


def die_with_parent() -> None:
    """A worker ends when the run's process dies, even by SIGKILL (Linux): no orphan keeps
    working, or holds the run's stdout open."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the pool notices a dead parent by itself
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)
