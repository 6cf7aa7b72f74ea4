"""method = "smtp": send through aiosmtplib over a few reused connections.

config.connections workers share one queue. Each worker holds one connection
(digest.deliver.connection) and reuses it for many messages, re-opening it after
config.messages_per_connection messages or when it dropped. Each failed attempt is classified
(digest.deliver.replies) and this module decides what follows:

- transient (4xx, 421, timeouts, dropped connections): retry with exponential backoff,
  reconnecting when the connection is gone, up to config.retries attempts, then "pending".
- permanent (5xx): "failed" at once, no retry; the others carry on.
- unknown (lost after the data went out): retried like a transient failure, and the outcome
  says so; a later permanent refusal then leaves it "pending", never "failed".
- setup (login refused, STARTTLS not offered, TLS failed, password missing): the server cannot
  be used at all. The run stops (mails in flight finish) and deliver_stream() raises
  DeliverySetupError.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
from collections import deque
from dataclasses import dataclass, field

from digest.config import DeliveryConfig
from digest.deliver.connection import Connection, SmtpServer
from digest.deliver.model import (
    AttemptCallback,
    MailQueue,
    OutcomeCallback,
    OutgoingMail,
    SendOutcome,
    Stop,
    one_line,
    take_once,
)
from digest.deliver.ratelimit import RateLimiter
from digest.deliver.replies import Failure, Stage, send_failure
from digest.errors import ConfigError, DeliverySetupError

MAX_RETRY_WAIT = 60.0  # seconds: retry waits double up to this, never to days


@dataclass
class _Run:
    """The state of one deliver_stream() call, shared by its workers (all on one event loop)."""

    queue: MailQueue
    on_attempt: AttemptCallback
    on_outcome: OutcomeCallback
    limiter: RateLimiter | None
    stop: Stop
    deadline: float  # event-loop time after which no new transaction starts
    deadline_text: str
    first: deque[OutgoingMail] = field(default_factory=deque)  # taken to peek, not yet sent
    keys: set[tuple[str, str]] = field(default_factory=set)  # every key taken in this run
    error: BaseException | None = None  # the first fatal error: stops the run
    connect_failures: int = 0  # consecutive failed connects, across workers
    unreachable: str = ""  # set once the server looks down: the rest go "pending" untried

    @property
    def stopping(self) -> bool:
        return self.error is not None

    def may_start(self) -> bool:
        """Whether a new SMTP transaction may start now (no stop, no fatal error, in time)."""
        _raise_if_cancelled()
        if not self.stop.is_set() and asyncio.get_running_loop().time() >= self.deadline:
            self.stop.set(self.deadline_text)
        return not self.stopping and not self.stop.is_set()

    def attempt(self, mail: OutgoingMail) -> None:
        _raise_if_cancelled()
        self.on_attempt(mail)

    def outcome(self, outcome: SendOutcome) -> None:
        _raise_if_cancelled()
        self.on_outcome(outcome)

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc

    async def take(self) -> OutgoingMail | None:
        """The next mail to send, or None when there are no more or the run is stopping."""
        if not self.may_start():
            return None
        if self.first:
            mail: OutgoingMail | None = self.first.popleft()
        else:
            mail = await self.queue.get()
            if mail is None:
                self.queue.put_nowait(None)  # the other workers see the end too
                return None
            if not self.may_start():
                return None
        assert mail is not None
        take_once(self.keys, mail, done="sent")
        return mail


@dataclass
class _Tries:
    """One mail's attempts so far in this run."""

    mail: OutgoingMail
    attempts: int = 0
    last: Failure | None = None  # the last attempt's failure
    unknown: bool = False  # some attempt may have been delivered
    reached: bool = False  # some attempt got as far as on_attempt (a connection was open)

    def pending(self, failure: Failure, attempts: int | None = None) -> SendOutcome:
        used = self.attempts if attempts is None else attempts
        return SendOutcome(
            self.mail, "pending", used, failure.code, failure.detail, unknown=self.unknown
        )


class SmtpMailer:
    """Delivers through an SMTP server with aiosmtplib (see the module docstring).

    tls_context: the SSLContext for "tls" / "starttls" (default: the system's, verifying
    certificates); tests pass one that trusts their own CA. sender: the envelope MAIL FROM
    (default: each mail's own sender). local_hostname: the EHLO name (default: the machine's
    FQDN). backoff: seconds before the first retry, doubling after, never over MAX_RETRY_WAIT.
    """

    def __init__(
        self,
        config: DeliveryConfig,
        *,
        backoff: float = 2.0,
        tls_context: ssl.SSLContext | None = None,
        sender: str | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self.config = config
        self.backoff = backoff
        self.tls_context = tls_context
        self.sender = sender
        self.local_hostname = local_hostname

    async def deliver_stream(
        self,
        queue: MailQueue,
        *,
        on_attempt: AttemptCallback,
        on_outcome: OutcomeCallback,
        stop: Stop | None = None,
    ) -> None:
        first = await queue.get()
        if first is None:  # nothing to send: no connection, no password needed
            queue.put_nowait(None)
            return
        server = self._server()
        cfg = self.config
        limiter = RateLimiter(cfg.max_per_minute) if cfg.max_per_minute else None
        loop = asyncio.get_running_loop()
        run = _Run(
            queue,
            on_attempt,
            on_outcome,
            limiter,
            stop or Stop.new(),
            deadline=loop.time() + cfg.deadline_minutes * 60,
            deadline_text=f"the delivery deadline ({cfg.deadline_minutes:g} min) passed",
        )
        run.first.append(first)
        tasks = [asyncio.create_task(self._worker(run, server)) for _ in range(cfg.connections)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if run.error is not None:
            raise run.error

    async def check(self) -> None:
        """Connect, (STARTTLS), log in and say goodbye, sending nothing (`check --connect`).

        Raises DeliverySetupError when the server cannot be used, or the connection error.
        """
        conn = Connection(self._server())
        try:
            await conn.ensure_open()
        finally:
            await conn.close()

    def _server(self) -> SmtpServer:
        """Where to connect, with the password. The config was validated on load (host,
        security, password_env); a password missing from the environment means the server
        cannot be used, as a refused login does."""
        try:
            password = self.config.smtp_password()
        except ConfigError as exc:
            raise DeliverySetupError(exc.message, fix=exc.fix) from None
        return SmtpServer(self.config, password, self.tls_context, self.local_hostname)

    async def _worker(self, run: _Run, server: SmtpServer) -> None:
        conn = Connection(server)
        try:
            while (mail := await run.take()) is not None:
                if run.unreachable:
                    run.outcome(
                        SendOutcome(mail, "pending", 0, detail=f"not tried: {run.unreachable}")
                    )
                    continue
                outcome = await self._send_one(run, conn, mail)
                if outcome is not None:
                    run.outcome(outcome)
        except asyncio.CancelledError:
            await conn.close(polite=False)
            raise
        except Exception as exc:  # DeliverySetupError, or a callback raised: stop the run
            run.fail(exc)
        finally:
            await conn.close()

    async def _send_one(
        self, run: _Run, conn: Connection, mail: OutgoingMail
    ) -> SendOutcome | None:
        """Try one mail up to config.retries times and say how it ended; None when the run
        stopped before its first attempt (then it was never sent)."""
        cfg = self.config
        sender = self.sender or mail.sender
        if not sender:
            detail = "the message has no From address (needed as the envelope sender)"
            return SendOutcome(mail, "failed", 0, None, detail)
        sendable = dataclasses.replace(mail, sender=sender)
        tries = _Tries(mail)
        while True:
            if not run.may_start():
                return None if tries.last is None else tries.pending(tries.last)
            tries.attempts += 1
            result = await self._attempt(run, conn, sendable, tries)
            if isinstance(result, SendOutcome):
                return result
            failure = result
            tries.unknown = tries.unknown or failure.unknown
            if failure.permanent:
                if tries.unknown:  # an earlier attempt may have been delivered: keep it open
                    return tries.pending(failure)
                return SendOutcome(mail, "failed", tries.attempts, failure.code, failure.detail)
            tries.last = failure
            if tries.attempts >= cfg.retries or not run.may_start():
                if run.connect_failures >= cfg.retries and not tries.reached:
                    run.unreachable = failure.detail  # the server looks down: spare it the rest
                return tries.pending(failure)
            wait = min(self.backoff * 2 ** (tries.attempts - 1), MAX_RETRY_WAIT)
            await _sleep_unless_stopped(wait, run)

    async def _attempt(
        self, run: _Run, conn: Connection, sendable: OutgoingMail, tries: _Tries
    ) -> SendOutcome | Failure:
        """One attempt: (re)open the connection if needed, then MAIL, RCPT, DATA. The outcome
        when the server took it, else the failure. A setup error gives a mail that was tried
        before its outcome ("pending"), then stops the run."""
        timeout = self.config.timeout
        try:
            await conn.ensure_open()
        except DeliverySetupError as exc:
            if tries.last is not None:
                failure = Failure(False, one_line(exc.message), exc.code)
                run.outcome(tries.pending(failure, attempts=tries.attempts - 1))
            raise
        except Exception as exc:
            run.connect_failures += 1
            return send_failure(exc, stage="connect", timeout=timeout)
        run.connect_failures = 0
        if run.limiter is not None:
            await run.limiter.acquire()
        tries.reached = True
        run.attempt(tries.mail)
        try:
            reply = await conn.send(sendable)
        except Exception as exc:
            stage: Stage = "data" if conn.in_data else "envelope"
            failure = send_failure(exc, stage=stage, timeout=timeout)
            if not conn.is_open:
                await conn.close(polite=False)
            return failure
        return SendOutcome(tries.mail, "sent", tries.attempts, 250, one_line(f"250 {reply}"))


def _raise_if_cancelled() -> None:
    """Raise CancelledError in a worker whose cancellation was swallowed. Python 3.11's
    asyncio.wait_for (aiosmtplib waits for every reply with it) returns the reply instead of
    raising when the reply arrives in the same loop turn as the cancellation; the task then
    goes on as if never cancelled. Checked before every transaction and callback, so a
    cancelled worker starts nothing and reports nothing more (its mail in flight gets no
    outcome, as with any cancellation)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _sleep_unless_stopped(seconds: float, run: _Run) -> None:
    """Wait before a retry; a stop (SIGTERM, the deadline) ends the wait at once."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.stop.requested.wait(), timeout=seconds)
