"""A run's claims on readers, and the heartbeat that keeps them (see digest.store.workers).

    claims = Claims.for_run(store, worker, clock, lease)      # a dry run: Claims.none()
    mine = claims.take(emails)         # those this worker may now work on
    ...                                # the send log lets each go with its last write
    claims.release(emails)             # those it decided needs no mail
    await claims.beat_until(stop)      # a task: extends the claims every lease / 3

Nothing else keeps two workers apart: not a lock on the state, so any number of daemons and
send-now processes, on one machine or many, share one state and its readers.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from digest.clock import Clock
from digest.store import Store

CLAIM_BATCH = 32  # readers claimed per transaction


def new_worker_id() -> str:
    """A worker's id: unique across machines and restarts."""
    return uuid.uuid4().hex[:16]


def register(store: Store, worker: str, role: str, clock: Clock) -> None:
    store.register_worker(
        worker, role=role, host=socket.gethostname(), pid=os.getpid(), now=clock()
    )


@dataclass
class Claims:
    store: Store | None  # None: a dry run, which claims nothing (it works on a copy)
    worker: str
    clock: Clock
    lease: timedelta
    _releasing: list[str] = field(default_factory=list)

    @classmethod
    def none(cls, clock: Clock) -> Claims:
        return cls(None, "", clock, timedelta(0))

    def take(self, emails: Sequence[str]) -> set[str]:
        """Claim what is free (or expired) of these readers; returns those claimed
        (lowercased)."""
        if self.store is None:
            return {email.lower() for email in emails}
        now = self.clock()
        return self.store.claim(self.worker, emails, now=now, until=now + self.lease)

    def release(self, email: str) -> None:
        """Let a reader go who needs no mail from this run (written in batches)."""
        if self.store is None:
            return
        self._releasing.append(email)
        if len(self._releasing) >= CLAIM_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.store is not None and self._releasing:
            self.store.release(self.worker, self._releasing)
        self._releasing = []

    def beat(self) -> None:
        if self.store is not None:
            now = self.clock()
            self.store.heartbeat(self.worker, now=now, until=now + self.lease)

    async def beat_until(self, stop: asyncio.Event) -> None:
        """Extend this worker's claims every lease / 3 until `stop` is set."""
        every = max(self.lease.total_seconds() / 3, 0.2)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=every)
            except TimeoutError:
                self.beat()

    @property
    def poll(self) -> float:
        """How often to look again at readers another worker holds."""
        return min(max(self.lease.total_seconds() / 4, 0.1), 2.0)
