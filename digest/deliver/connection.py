"""One SMTP connection of a worker: opened (TLS, login) when needed, reused, closed cleanly.

    server = SmtpServer(config, password, tls_context=..., local_hostname=...)
    conn = Connection(server)
    await conn.ensure_open()        # raises DeliverySetupError when the server is unusable
    reply = await conn.send(mail)   # MAIL, RCPT, DATA with mail.data as it is
    await conn.close()

What a failure means is decided in digest.deliver.replies; this module only talks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

import aiosmtplib

from digest.config import DeliveryConfig
from digest.deliver.model import OutgoingMail
from digest.deliver.replies import SETUP_FIX, connect_setup_error, login_setup_error
from digest.errors import DeliverySetupError

QUIT_TIMEOUT = 5.0  # seconds: a goodbye never holds up a run for long


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to connect: the config, the password (None: no login), the SSLContext
    for "tls" / "starttls" (None: the system's, verifying certificates) and the EHLO name
    (None: the machine's FQDN)."""

    config: DeliveryConfig
    password: str | None = None
    tls_context: ssl.SSLContext | None = None
    local_hostname: str | None = None

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    async def open(self) -> aiosmtplib.SMTP:
        """Connect, (STARTTLS), login. Raises DeliverySetupError when the server is unusable;
        any other error is the transport's (refused, timed out, dropped: try again later)."""
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
                setup = connect_setup_error(exc, security=cfg.security, where=self.where)
                if setup is not None:
                    raise setup from None
                raise
            # Whatever the config says, mail never goes out in plaintext unless it says "none".
            if cfg.security != "none" and smtp.get_transport_info("sslcontext") is None:
                raise DeliverySetupError(
                    f"SMTP {self.where}: the connection is not encrypted "
                    f"(security = {cfg.security!r}); refusing to send in plaintext",
                    fix=SETUP_FIX,
                )
            if cfg.username:
                try:
                    await smtp.login(cfg.username, self.password or "")
                except Exception as exc:
                    setup = login_setup_error(exc, username=cfg.username, where=self.where)
                    if setup is not None:
                        raise setup from None
                    raise
        except BaseException:
            smtp.close()
            raise
        return smtp


class Connection:
    """One worker's SMTP connection: opened lazily, reused for up to
    config.messages_per_connection transactions, re-opened when due or dropped."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self.smtp: aiosmtplib.SMTP | None = None
        self.messages = 0  # transactions tried on this connection
        self.in_data = False  # the current transaction is past RCPT: the data is going out

    @property
    def is_open(self) -> bool:
        return self.smtp is not None and self.smtp.is_connected

    async def ensure_open(self) -> None:
        if self.is_open and self.messages < self.server.config.messages_per_connection:
            return
        await self.close()
        self.smtp = await self.server.open()
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
        response = await send_data(self.smtp, mail.data)
        return response.message

    async def close(self, *, polite: bool = True) -> None:
        """QUIT (when polite and still connected), then wait until the socket is closed."""
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        transport = smtp.transport
        try:
            if polite and smtp.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await smtp.quit(timeout=min(self.server.config.timeout, QUIT_TIMEOUT))
        finally:
            smtp.close()
            if isinstance(transport, asyncio.Transport):
                await _socket_closed(transport)


async def send_data(smtp: aiosmtplib.SMTP, data: bytes) -> aiosmtplib.SMTPResponse:
    """DATA, with bytes already in wire form dot-stuffed by a plain replace.

    aiosmtplib's data() runs two regular expressions over every message (line endings, then
    dot-stuffing): about 0.7 ms for a 70 KB digest, in the process that also ranks and records
    every mail. build_wire's bytes have CRLF line ends only (checked here at memchr speed), so a
    line start is always right after a CRLF and stuffing is one bytes.replace. Anything else
    takes the library's own path.

    This mirrors aiosmtplib's SMTPProtocol.execute_data_command and SMTP.data with the
    protocol's execute_command, write and read_response, which are not its public API:
    tests/test_deliver_aiosmtplib.py fails, saying what to re-check, when the installed
    aiosmtplib's versions of them change (pyproject pins the versions checked)."""
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
