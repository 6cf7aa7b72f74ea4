"""The producing side of the stream: claim readers a batch at a time, plan each one's digest,
record what the plan decided, and queue its mails in order while up to BUILD_AHEAD of them are
being built. Readers another worker holds are looked at again until that worker is done with
them or its claim expires (a send-now waits; the daemon leaves them to its takeover watch).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from digest.config import Subscriber
from digest.deliver import MailQueue, OutgoingMail, Stop
from digest.errors import DigestError
from digest.mailbuild import BuiltMail, MailBuilder
from digest.plan import MailJob, RunContext, plan_subscriber
from digest.run.claims import CLAIM_BATCH, Claims
from digest.run.lines import Lines
from digest.run.report import SubscriberReport
from digest.schedule import Due
from digest.store import Recorder

log = logging.getLogger(__name__)

BUILD_AHEAD = 32  # mails being built at once (in the render pool)
WAIT_FOR_OTHERS = 120.0  # seconds at most a send-now waits for readers other workers hold

Due_ = tuple[Subscriber, Due]


@dataclass
class InFlight:
    """Mails queued per reader that have no outcome yet: the last outcome lets the claim go."""

    mails: dict[str, int] = field(default_factory=dict)

    def add(self, email: str) -> None:
        self.mails[email] = self.mails.get(email, 0) + 1

    def done(self, email: str) -> bool:
        """One mail of `email` is done; True when it was their last."""
        left = self.mails.get(email, 1) - 1
        if left <= 0:
            self.mails.pop(email, None)
            return True
        self.mails[email] = left
        return False


@dataclass
class Producer:
    ctx: RunContext
    queue: MailQueue
    builder: MailBuilder
    recorder: Recorder
    claims: Claims
    lines: Lines
    stop: Stop
    in_flight: InFlight
    build: bool  # False: plan only (a preview that writes no files)
    building: deque[tuple[MailJob, SubscriberReport, asyncio.Future[BuiltMail] | None]] = field(
        default_factory=deque
    )

    async def run(self, due: Sequence[Due_], *, wait_for_others: bool) -> None:
        """Every due reader this worker can claim, then (`wait_for_others`) those others
        held; ends the queue with None."""
        later = await self._claim_and_plan(due)
        if later and wait_for_others:
            # Ship what is built first: its readers stay claimed until their mails' outcomes,
            # and the other workers may be waiting for them as this one waits for theirs.
            await self._ship_all()
            later = await self._after_others(later)
        for sub, _ in later:
            detail = "another worker has this digest"
            self.lines.add(SubscriberReport(sub.email, "", "elsewhere", detail=detail))
        self.claims.flush()
        await self._ship_all()
        await put_unless_stopped(self.queue, None, self.stop)

    async def _ship_all(self) -> None:
        while self.building and not self.stop.is_set():
            await self._ship_oldest()

    async def _claim_and_plan(self, due: Sequence[Due_]) -> list[Due_]:
        """Plan the readers claimed now; return those another worker holds."""
        later: list[Due_] = []
        for start in range(0, len(due), CLAIM_BATCH):
            if self.stop.is_set():
                break
            batch = due[start : start + CLAIM_BATCH]
            mine = self.claims.take([sub.email for sub, _ in batch])
            self.ctx.trending.look_up(
                self.ctx.store, [s.email for s, _ in batch if s.email.lower() in mine]
            )
            for sub, sub_due in batch:
                if self.stop.is_set():
                    break
                if sub.email.lower() in mine:
                    await self._subscriber(sub, sub_due)
                else:
                    later.append((sub, sub_due))
            # The readers of this batch that need no mail go now: another worker may be
            # waiting for them (held until the run's end, two workers waited for each other).
            self.claims.flush()
        return later

    async def _after_others(self, later: list[Due_]) -> list[Due_]:
        """Look again at the readers other workers hold until each is free (done, or its
        worker died and the claim expired) or WAIT_FOR_OTHERS runs out."""
        deadline = time.monotonic() + max(WAIT_FOR_OTHERS, 2 * self.claims.lease.total_seconds())
        while later and not self.stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(self.claims.poll)
            later = await self._claim_and_plan(later)
        return later

    async def _subscriber(self, sub: Subscriber, due: Due) -> None:
        try:
            plan = plan_subscriber(self.ctx, sub, due)
        except DigestError:
            raise  # the state cannot be read or written: stop the run
        except Exception as exc:  # one subscriber's digest must not stop the others
            log.info("planning the digest of %s failed", sub.email, exc_info=True)
            self.lines.add(SubscriberReport(sub.email, "", "failed", detail=f"not built: {exc!r}"))
            self.claims.release(sub.email)
            return
        if plan.record_empty:
            last = not plan.jobs
            self.recorder.empty(plan.email, plan.digest_date, upto_seq=plan.upto_seq, last=last)
        elif not plan.jobs:
            self.claims.release(sub.email)
        if plan.status:
            self.lines.add(
                SubscriberReport(
                    plan.email,
                    plan.digest_date,
                    plan.status,
                    candidates=plan.candidates,
                    detail=plan.detail,
                )
            )
        for job in plan.jobs:
            line = self.lines.planned(plan, job, keep_papers=self.ctx.options.keep_papers)
            if not self.build:
                continue
            future = None
            if job.data is None:
                assert job.content is not None and job.headers is not None
                future = self.builder.submit(job.content, job.headers)
            self.in_flight.add(job.key[0])
            self.building.append((job, line, future))
            while len(self.building) > BUILD_AHEAD or (
                self.building and _ready(self.building[0][2])
            ):
                await self._ship_oldest()
        await asyncio.sleep(0)  # let the SMTP workers and signals in between subscribers

    async def _ship_oldest(self) -> None:
        job, line, future = self.building.popleft()
        try:
            built = None if future is None else await future
        except Exception as exc:  # one subscriber's digest must not stop the others
            log.info("building the digest of %s failed", job.key[0], exc_info=True)
            line.status, line.detail = "failed", f"not built: {exc!r}"
            if self.in_flight.done(job.key[0]):
                self.claims.release(job.key[0])
            return
        data = job.data
        if built is not None:
            data, job.log.packed = built.wire, built.packed
        assert data is not None
        self.recorder.queued(job.log)
        mail = OutgoingMail(
            key=job.key,
            recipient=job.recipient,
            data=data,
            sender=self.ctx.config.digest.from_email,
            message_id=job.log.message_id,
            context=job,
        )
        await put_unless_stopped(self.queue, mail, self.stop)


async def put_unless_stopped(queue: MailQueue, item: OutgoingMail | None, stop: Stop) -> None:
    """Queue an item, waiting for room; once the run stops nobody takes from the queue, so
    stop waiting then (a None still goes in if there is room, for a worker waiting on get)."""
    while not stop.is_set():
        if not queue.full():
            queue.put_nowait(item)
            return
        putting = asyncio.ensure_future(queue.put(item))
        stopping = asyncio.ensure_future(stop.requested.wait())
        await asyncio.wait({putting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if putting.done():
            return
        putting.cancel()
    if item is None and not queue.full():
        queue.put_nowait(None)


def _ready(future: asyncio.Future[BuiltMail] | None) -> bool:
    return future is None or future.done()
