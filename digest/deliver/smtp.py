"""method = "smtp": send through aiosmtplib over a few reused connections.

config.connections workers share one queue. Each worker holds one connection and reuses it for
many messages, re-opening it after config.messages_per_connection messages or when it dropped.
Replies are classified per recipient:

- 4xx (also 421), timeouts, dropped connections: transient. Retry with exponential backoff,
  reconnecting when the connection is gone, up to config.retries attempts, then "pending".
- 5xx: "failed" at once, no retry; the others carry on.
- login refused, STARTTLS not offered, TLS handshake failed, password missing: the server
  cannot be used at all. The run stops (mails in flight finish) and deliver() raises
  DeliverySetupError.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from dataclasses import dataclass, field

import aiosmtplib

from digest.config import DeliveryConfig
from digest.deliver.model import (
    AttemptCallback,
    ListDelivery,
    MailQueue,
    OutcomeCallback,
    OutgoingMail,
    SendOutcome,
    Stop,
    one_line,
    take_once,
)
from digest.deliver.ratelimit import RateLimiter
from digest.errors import DeliverySetupError

SETUP_FIX = "check username / password_env / security in [delivery]"
_QUIT_TIMEOUT = 5.0
MAX_RETRY_WAIT = 60.0  # seconds: retry waits double up to this, never to days


@dataclass
class _Failure:
    """One failed attempt, classified."""

    permanent: bool
    detail: str
    code: int | None = None
    # The connection dropped or timed out after the message data went out: it may have been
    # delivered, so only these bytes may be sent again (see SendOutcome.unknown).
    unknown: bool = False


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
        if not self.stop.is_set() and asyncio.get_running_loop().time() >= self.deadline:
            self.stop.set(self.deadline_text)
        return not self.stopping and not self.stop.is_set()

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


class _Connection:
    """One worker's SMTP connection: opened lazily, reused, re-opened when due."""

    def __init__(self, mailer: SmtpMailer, password: str | None) -> None:
        self.mailer = mailer
        self.password = password
        self.smtp: aiosmtplib.SMTP | None = None
        self.messages = 0  # transactions tried on this connection
        self.in_data = False  # the current transaction is past RCPT: the data is going out

    @property
    def is_open(self) -> bool:
        return self.smtp is not None and self.smtp.is_connected

    async def ensure_open(self) -> None:
        if self.is_open and self.messages < self.mailer.config.messages_per_connection:
            return
        await self.close()
        self.smtp = await self.mailer.open_connection(self.password)
        self.messages = 0

    async def send(self, mail: OutgoingMail) -> str:
        """MAIL, RCPT, DATA with the mail's bytes as they are. Returns the server's reply."""
        assert self.smtp is not None
        self.messages += 1
        self.in_data = False
        try:
            await self.smtp.mail(mail.sender)
            await self.smtp.rcpt(mail.recipient)
        except aiosmtplib.SMTPResponseException:
            if self.smtp.is_connected:  # leave the connection ready for the next mail
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await self.smtp.rset()
            raise
        self.in_data = True
        response = await _data(self.smtp, mail.data)
        return response.message

    async def close(self, *, polite: bool = True) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        transport = smtp.transport
        try:
            if polite and smtp.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await smtp.quit(timeout=min(self.mailer.config.timeout, _QUIT_TIMEOUT))
        finally:
            smtp.close()
            if isinstance(transport, asyncio.Transport):
                await _socket_closed(transport)


async def _data(smtp: aiosmtplib.SMTP, data: bytes) -> aiosmtplib.SMTPResponse:
    """DATA, with bytes already in wire form dot-stuffed by a plain replace.

    aiosmtplib's data() runs two regular expressions over every message (line endings, then
    dot-stuffing): about 0.7 ms for a 70 KB digest, in the process that also ranks and records
    every mail. build_wire's bytes have CRLF line ends only (checked here at memchr speed), so a
    line start is always right after a CRLF and stuffing is one bytes.replace. Anything else
    takes the library's own path."""
    protocol = smtp.protocol
    if protocol is None or not _crlf_only(data):
        return await smtp.data(data)
    stuffed = (b"." if data.startswith(b".") else b"") + data.replace(b"\r\n.", b"\r\n..")
    try:
        start = await protocol.execute_command(b"DATA", timeout=smtp.timeout)
        if start.code != aiosmtplib.SMTPStatus.start_input:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        protocol.write(stuffed + b".\r\n")  # read_response follows with no await between
        response = await protocol.read_response(timeout=smtp.timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        smtp.close()  # as SMTP.data does
        raise
    if response.code != aiosmtplib.SMTPStatus.completed:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return response


def _crlf_only(data: bytes) -> bool:
    """Every line ends in CRLF, the last one too; no bare CR or LF."""
    crlf = data.count(b"\r\n")
    return data.endswith(b"\r\n") and data.count(b"\n") == crlf and data.count(b"\r") == crlf


class SmtpMailer(ListDelivery):
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

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    # --- the run ---------------------------------------------------------------------------

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
        password = self._password()
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
        tasks = [asyncio.create_task(self._worker(run, password)) for _ in range(cfg.connections)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if run.error is not None:
            raise run.error

    def _password(self) -> str | None:
        cfg = self.config
        if not cfg.host:
            raise DeliverySetupError(
                "SMTP delivery needs a host", fix='set host in [delivery], or method = "outbox"'
            )
        if cfg.security not in ("starttls", "tls", "none"):
            raise DeliverySetupError(
                f"security = {cfg.security!r} is not one of starttls, tls, none",
                fix="set security in [delivery]",
            )
        if not cfg.username:
            return None
        if not cfg.password_env:
            raise DeliverySetupError(
                f"username {cfg.username!r} is set but password_env is not",
                fix='set password_env = "DIGEST_SMTP_PASSWORD" in [delivery] and export it',
            )
        password = cfg.password()
        if not password:
            raise DeliverySetupError(
                f"${cfg.password_env} is empty or not set: no SMTP password for {cfg.username!r}",
                fix=f"export {cfg.password_env}=... (the SMTP password)",
            )
        return password

    async def _worker(self, run: _Run, password: str | None) -> None:
        conn = _Connection(self, password)
        try:
            while (mail := await run.take()) is not None:
                if run.unreachable:
                    run.on_outcome(
                        SendOutcome(mail, "pending", 0, detail=f"not tried: {run.unreachable}")
                    )
                    continue
                outcome = await self._send_one(run, conn, mail)
                if outcome is not None:
                    run.on_outcome(outcome)
        except asyncio.CancelledError:
            await conn.close(polite=False)
            raise
        except Exception as exc:  # DeliverySetupError, or a callback raised: stop the run
            run.fail(exc)
        finally:
            await conn.close()

    async def _send_one(
        self, run: _Run, conn: _Connection, mail: OutgoingMail
    ) -> SendOutcome | None:
        """Try one mail up to config.retries times and say how it ended; None when the run
        stopped before its first attempt (then it was never sent)."""
        cfg = self.config
        sender = self.sender or mail.sender
        if not sender:
            detail = "the message has no From address (needed as the envelope sender)"
            return SendOutcome(mail, "failed", 0, None, detail)
        sendable = OutgoingMail(mail.key, mail.recipient, mail.data, sender, mail.message_id)
        attempts = 0
        last: _Failure | None = None  # the last attempt's failure
        unknown = False  # some attempt may have been delivered
        tried = False  # on_attempt was called at least once
        while True:
            if not run.may_start():
                if last is None:
                    return None
                return _pending(mail, attempts, last, unknown)
            attempts += 1
            failure: _Failure
            try:
                await conn.ensure_open()
            except DeliverySetupError as exc:
                if last is not None:  # it may have been attempted before: give it an outcome
                    failure = _Failure(False, one_line(exc.message), exc.code)
                    run.on_outcome(_pending(mail, attempts - 1, failure, unknown))
                raise
            except Exception as exc:
                failure = self._classify(exc, None)
                run.connect_failures += 1
            else:
                run.connect_failures = 0
                if run.limiter is not None:
                    await run.limiter.acquire()
                tried = True
                run.on_attempt(mail)
                try:
                    reply = await conn.send(sendable)
                except Exception as exc:
                    failure = self._classify(exc, conn)
                    if not conn.is_open:
                        await conn.close(polite=False)
                else:
                    return SendOutcome(mail, "sent", attempts, 250, one_line(f"250 {reply}"))
                unknown = unknown or failure.unknown
                if failure.permanent:
                    if unknown:  # an earlier attempt may have been delivered: keep it open
                        return _pending(mail, attempts, failure, unknown)
                    return SendOutcome(mail, "failed", attempts, failure.code, failure.detail)
            last = failure
            if attempts >= cfg.retries or not run.may_start():
                if run.connect_failures >= cfg.retries and not tried:
                    run.unreachable = failure.detail  # the server looks down: spare it the rest
                return _pending(mail, attempts, failure, unknown)
            wait = min(self.backoff * 2 ** (attempts - 1), MAX_RETRY_WAIT)
            await _sleep_unless_stopped(wait, run)

    async def check(self) -> None:
        """Connect, (STARTTLS), log in and say goodbye, sending nothing (`check --connect`).

        Raises DeliverySetupError when the server cannot be used, or the connection error.
        """
        conn = _Connection(self, self._password())
        try:
            await conn.ensure_open()
        finally:
            await conn.close()

    # --- connections -----------------------------------------------------------------------

    async def open_connection(self, password: str | None = None) -> aiosmtplib.SMTP:
        """Connect, (STARTTLS), login. Raises DeliverySetupError when the server is unusable."""
        cfg = self.config
        smtp = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            timeout=cfg.timeout,
            use_tls=cfg.security == "tls",
            # True: STARTTLS or fail (never plaintext); False: plain, no opportunistic upgrade.
            start_tls=cfg.security == "starttls",
            tls_context=self.tls_context,
            local_hostname=self.local_hostname,
        )
        try:
            try:
                await smtp.connect()
            except Exception as exc:
                setup = self._connect_setup_error(exc)
                if setup is not None:
                    raise setup from None
                raise
            if cfg.security != "none" and smtp.get_transport_info("sslcontext") is None:
                raise DeliverySetupError(
                    f"SMTP {self.where}: the connection is not encrypted "
                    f"(security = {cfg.security!r}); refusing to send in plaintext",
                    fix=SETUP_FIX,
                )
            if cfg.username:
                await self._login(smtp, password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    async def _login(self, smtp: aiosmtplib.SMTP, password: str) -> None:
        cfg = self.config
        try:
            await smtp.login(cfg.username, password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise DeliverySetupError(
                f"SMTP {self.where}: login refused for {cfg.username!r}: "
                f"{one_line(f'{exc.code} {exc.message}')}",
                code=exc.code,
                fix=SETUP_FIX,
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500 and exc.code != 454:
                raise  # transient (e.g. 421): retry later
            raise DeliverySetupError(
                f"SMTP {self.where}: login failed for {cfg.username!r}: "
                f"{one_line(f'{exc.code} {exc.message}')}",
                code=exc.code,
                fix=SETUP_FIX,
            ) from None
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            raise
        except aiosmtplib.SMTPException as exc:  # no AUTH offered, no usable mechanism
            raise DeliverySetupError(
                f"SMTP {self.where}: cannot log in as {cfg.username!r}: {one_line(exc)}",
                fix=SETUP_FIX,
            ) from None

    def _connect_setup_error(self, exc: BaseException) -> DeliverySetupError | None:
        """Which connect() failures mean "this server cannot be used" (vs. try again later)."""
        cfg = self.config
        tls_error = _find_ssl_error(exc)
        if tls_error is not None:
            return DeliverySetupError(
                f"SMTP {self.where}: TLS failed ({cfg.security}): "
                f"{one_line(tls_error.reason or tls_error)}",
                fix=SETUP_FIX,
            )
        if type(exc) is aiosmtplib.SMTPException and cfg.security == "starttls":
            # aiosmtplib raises a bare SMTPException when STARTTLS is not offered.
            return DeliverySetupError(
                f'SMTP {self.where} does not offer STARTTLS (security = "starttls"); '
                "refusing to send in plaintext",
                fix=SETUP_FIX,
            )
        if type(exc) is aiosmtplib.SMTPResponseException and cfg.security == "starttls":
            # Inside connect() only the STARTTLS command raises a bare response error.
            return DeliverySetupError(
                f"SMTP {self.where}: STARTTLS refused: {one_line(f'{exc.code} {exc.message}')}",
                code=exc.code,
                fix=SETUP_FIX,
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 500:
            # A 5xx greeting or EHLO reply: this server does not take mail from us at all.
            return DeliverySetupError(
                f"SMTP {self.where} refused the session: {one_line(f'{exc.code} {exc.message}')}",
                code=exc.code,
                fix="check host / port / security in [delivery]",
            )
        return None

    # --- classification --------------------------------------------------------------------

    def _classify(self, exc: BaseException, conn: _Connection | None) -> _Failure:
        timeout = self.config.timeout
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            refused = exc.recipients[0] if exc.recipients else None
            if refused is None:
                return _Failure(False, "recipient refused")
            return _by_code(refused.code, refused.message)
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            if conn is None:  # greeting, EHLO or login: never this recipient's fault
                return _Failure(False, one_line(f"{exc.code} {exc.message}"), exc.code)
            return _by_code(exc.code, exc.message)
        # After the data went out, a lost reply means the server may have accepted the mail.
        unknown = conn is not None and conn.in_data
        after = " after the message data was sent (it may have been delivered)" if unknown else ""
        if isinstance(exc, TimeoutError):  # SMTPTimeoutError and asyncio's
            what = "connecting" if conn is None else "sending"
            text = f"timed out {what} after {timeout:g}s{after}: {exc}"
            return _Failure(False, one_line(text), unknown=unknown)
        if isinstance(exc, ConnectionError | OSError):  # SMTPServerDisconnected, SMTPConnectError
            what = "cannot connect" if conn is None else "connection lost"
            return _Failure(False, one_line(f"{what}{after}: {exc}"), unknown=unknown)
        if isinstance(exc, aiosmtplib.SMTPNotSupported | ValueError):
            # An address the server cannot take (non-ASCII without SMTPUTF8, bad characters).
            return _Failure(True, one_line(f"{exc}"))
        if isinstance(exc, aiosmtplib.SMTPException):
            return _Failure(False, one_line(f"{type(exc).__name__}: {exc}"))
        # Anything else is a message we cannot serialise: a build bug; do not loop on it.
        return _Failure(True, one_line(f"{type(exc).__name__}: {exc}"))


def _pending(mail: OutgoingMail, attempts: int, failure: _Failure, unknown: bool) -> SendOutcome:
    return SendOutcome(mail, "pending", attempts, failure.code, failure.detail, unknown=unknown)


async def _sleep_unless_stopped(seconds: float, run: _Run) -> None:
    """Wait before a retry; a stop (SIGTERM, the deadline) ends the wait at once."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.stop.requested.wait(), timeout=seconds)


def _by_code(code: int, message: str) -> _Failure:
    detail = one_line(f"{code} {message}")
    return _Failure(500 <= code < 600, detail, code)


def _find_ssl_error(exc: BaseException | None) -> ssl.SSLError | None:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


async def _socket_closed(transport: asyncio.Transport, *, limit: float = 1.0) -> None:
    """Wait (briefly) until the transport's socket is really closed.

    A TLS transport closes asynchronously (the TLS shutdown takes a few loop turns); if the
    event loop ends first, the socket is left to the garbage collector, which warns.
    """
    if not transport.is_closing():
        transport.close()
    sock = transport.get_extra_info("socket")
    deadline = asyncio.get_running_loop().time() + limit
    while sock is not None and sock.fileno() != -1:
        if asyncio.get_running_loop().time() >= deadline:
            transport.abort()  # the peer never finished the TLS shutdown: drop it
            await asyncio.sleep(0)
            return
        await asyncio.sleep(0.005)
