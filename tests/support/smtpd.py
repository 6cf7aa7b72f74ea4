"""A real, recording aiosmtpd server on 127.0.0.1 with scripted faults (pytest fixture).

    def test_send(smtp_server):                      # plain SMTP, no TLS, no AUTH
        mailer = smtp_server.mailer(connections=2)   # an SmtpMailer aimed at it (backoff 0)
        asyncio.run(deliver_list(mailer, mails, on_attempt=..., on_outcome=...))
        [received] = smtp_server.messages           # what the SERVER accepted
        received.message["Message-ID"], received.rcpt_tos, received.data
        smtp_server.handler.data_seen               # every DATA read, refused or dropped too

``data`` is the message exactly as it came in: aiosmtpd's envelope.original_content, the lines
between DATA and the final "." with their CRLFs, only the SMTP dot-stuffing undone (the server
runs with decode_data=False: nothing is decoded or converted).

Other server modes: call ``smtp_server.restart(...)`` first, e.g.
``restart(tls="starttls")`` (STARTTLS offered and required before MAIL),
``restart(tls="implicit")`` (TLS from the first byte, like port 465),
``restart(users={"digest": "s3cret"})`` (AUTH PLAIN/LOGIN offered, any other login gets 535).
``smtp_server.delivery_config(**overrides)`` gives a DeliveryConfig whose host, port and
security match the current mode; ``smtp_server.client_tls_context()`` an SSLContext that trusts
the test CA (trustme) for 127.0.0.1 / localhost.

Scripted faults (on ``smtp_server.handler``; ``times=None`` means always, ``nth=N`` skips the
first N-1 transactions that reach that stage):

    handler.refuse("a@x", "451 4.7.1 try later", times=1)   # RCPT reply for that recipient
    handler.refuse("b@x", "550 5.1.1 no such user")          # always
    handler.refuse(None, "452 4.3.1 full", at="data")        # DATA reply, any recipient
    handler.drop(at="data", nth=3)     # 3rd message: read it, then cut the connection, no reply
    handler.drop(at="rcpt", address="c@x")
    handler.stall(5, at="data", times=2)  # sleep before replying (client timeouts)

Counters: ``handler.connections`` (client sessions that said EHLO/HELO, so not the controller's
own start-up probe), ``handler.messages`` (accepted only), ``handler.log`` (one line per
command the handler saw, e.g. "2 RCPT a@x -> 451 4.7.1 try later", "1 RSET", "1 QUIT").

Threading: aiosmtpd runs the server on its own event loop in a thread. Records are appended
before the server replies, so once the client has its reply the record is there.
On teardown the fixture waits for clients to hang up, then closes any connection still open, so
no ResourceWarning leaks into later tests (pytest runs with filterwarnings = error).
"""

from __future__ import annotations

import asyncio
import email.policy
import functools
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from typing import Any, Literal

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from digest.config import DeliveryConfig
from digest.deliver import SmtpMailer

HOST = "127.0.0.1"
TlsMode = Literal["none", "starttls", "implicit"]
Stage = Literal["rcpt", "data"]


# --- certificates ------------------------------------------------------------------------------


@functools.cache
def _ca() -> trustme.CA:
    return trustme.CA()


@functools.cache
def _server_cert() -> trustme.LeafCert:
    return _ca().issue_cert("127.0.0.1", "localhost")


def server_tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _server_cert().configure_cert(ctx)
    return ctx


def client_tls_context() -> ssl.SSLContext:
    """A client SSLContext that trusts the test CA (and nothing else)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=None)
    _ca().configure_trust(ctx)
    return ctx


# --- what the server received ------------------------------------------------------------------


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes  # the DATA bytes as received (dot-stuffing undone, nothing else changed)
    connection: int  # 1-based number of the client session it came in on
    tls: bool  # the session was encrypted (STARTTLS or implicit TLS)
    login: str | None  # the AUTH user, if the session logged in

    @functools.cached_property
    def message(self) -> EmailMessage:
        """`data` parsed with email.policy.default (when a test first asks: parsing every
        mail as it arrives would make the server the bottleneck of a long run)."""
        parsed = BytesParser(policy=email.policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str | None:
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(self.data)
        value = headers["Message-ID"]
        return None if value is None else str(value)


@dataclass
class _Fault:
    stage: Stage
    address: str | None  # None: any recipient
    action: Literal["reply", "drop", "stall"]
    reply: str = ""
    seconds: float = 0.0
    skip: int = 0  # matching transactions to let through first (nth - 1)
    times: int | None = 1  # None: always

    def matches(self, stage: Stage, addresses: list[str]) -> bool:
        if stage != self.stage or self.times == 0:
            return False
        if self.address is not None and self.address.lower() not in (a.lower() for a in addresses):
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        if self.times is not None:
            self.times -= 1
        return True


@dataclass
class RecordingHandler:
    """The aiosmtpd handler: records sessions and messages, plays scripted faults."""

    users: dict[str, str] = field(default_factory=dict)  # AUTH: login -> password
    messages: list[ReceivedMessage] = field(default_factory=list)
    # Every DATA the server read to its end, before any scripted reply, drop or stall:
    # (recipients, bytes as received). A dropped DATA may have been delivered: it is here.
    data_seen: list[tuple[list[str], bytes]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    connections: int = 0
    auth_attempts: int = 0
    _faults: list[_Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- scripting ------------------------------------------------------------------------------

    def refuse(
        self,
        address: str | None,
        reply: str,
        *,
        times: int | None = None,
        at: Stage = "rcpt",
        nth: int = 1,
    ) -> None:
        """Answer `reply` (e.g. "451 4.7.1 try later") instead of 250 for that recipient."""
        self._add(_Fault(at, address, "reply", reply=reply, skip=nth - 1, times=times))

    def drop(
        self,
        *,
        at: Stage = "data",
        nth: int = 1,
        address: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Cut the connection instead of replying (at DATA: after reading the message)."""
        self._add(_Fault(at, address, "drop", skip=nth - 1, times=times))

    def stall(
        self,
        seconds: float,
        *,
        at: Stage = "data",
        nth: int = 1,
        address: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Sleep before replying: past the client's timeout, it hangs up and nothing is kept."""
        self._add(_Fault(at, address, "stall", seconds=seconds, skip=nth - 1, times=times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _fault(self, stage: Stage, addresses: list[str]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(stage, addresses):
                    return fault
        return None

    def _note(self, server: SMTP, line: str) -> None:
        with self._lock:
            self.log.append(f"{_conn_no(server)} {line}")

    # -- aiosmtpd hooks -------------------------------------------------------------------------

    def _session_started(self, server: SMTP) -> None:
        if getattr(server, "_digest_conn", None) is None:
            with self._lock:
                self.connections += 1
                server._digest_conn = self.connections  # type: ignore[attr-defined]

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self._session_started(server)
        self._note(server, f"EHLO {hostname}")
        session.host_name = hostname
        return responses

    async def handle_HELO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        self._session_started(server)
        self._note(server, f"HELO {hostname}")
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        self._note(server, f"MAIL {address}")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = await self._play(server, "rcpt", [address])
        if reply is None:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            reply = "250 OK"
        self._note(server, f"RCPT {address} -> {reply}")
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        rcpts = list(envelope.rcpt_tos)
        raw = envelope.original_content or b""
        with self._lock:
            self.data_seen.append((rcpts, raw))
        reply = await self._play(server, "data", rcpts)
        if reply is None:
            auth = session.auth_data  # (session.login_data is deprecated)
            login = auth.login if isinstance(auth, LoginPassword) else None
            with self._lock:
                self.messages.append(
                    ReceivedMessage(
                        mail_from=envelope.mail_from or "",
                        rcpt_tos=rcpts,
                        data=raw,
                        connection=_conn_no(server),
                        tls=_encrypted(server, session),
                        login=login.decode() if isinstance(login, bytes) else login,
                    )
                )
                reply = f"250 2.0.0 OK queued as {len(self.messages)}"
        self._note(server, f"DATA {','.join(rcpts)} -> {reply}")
        return reply

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._note(server, "RSET")
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._note(server, "QUIT")
        return "221 Bye"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        with self._lock:
            self.auth_attempts += 1
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.users.get(auth_data.login.decode()) == auth_data.password.decode()
        )
        self._note(server, f"AUTH {mechanism} -> {'ok' if ok else 'refused'}")
        # handled=False: let aiosmtpd answer "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    async def _play(self, server: SMTP, stage: Stage, addresses: list[str]) -> str | None:
        fault = self._fault(stage, addresses)
        if fault is None:
            return None
        if fault.action == "reply":
            return fault.reply
        if fault.action == "stall":
            self._note(server, f"{stage.upper()} stalling {fault.seconds}s")
            await asyncio.sleep(fault.seconds)  # cancelled if the client hangs up meanwhile
            return None
        self._note(server, f"{stage.upper()} dropping the connection")
        _abort(server)
        # aiosmtpd cancels this session's task on connection_lost; never reply.
        await asyncio.sleep(30)
        return "421 4.4.2 connection dropped"


def _encrypted(server: SMTP, session: Session) -> bool:
    # session.ssl is set by STARTTLS; with implicit TLS the transport itself is TLS.
    transport = server.transport
    return session.ssl is not None or (
        transport is not None and transport.get_extra_info("ssl_object") is not None
    )


def _abort(server: SMTP) -> None:
    """Cut a server-side connection at once (no reply, no TLS goodbye)."""
    transport = server.transport
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    elif transport is not None:
        transport.close()


def _conn_no(server: SMTP) -> int:
    return getattr(server, "_digest_conn", 0)


# --- the server --------------------------------------------------------------------------------


class _TrackingSMTP(SMTP):
    """aiosmtpd's SMTP that keeps a set of its open connections, to close them on stop."""

    def __init__(self, handler: Any, *, live: set[SMTP], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._live = live

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._live.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            self._live.discard(self)


class _Controller(Controller):
    def __init__(self, handler: Any, *, live: set[SMTP], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._live = live

    def factory(self) -> SMTP:
        return _TrackingSMTP(self.handler, live=self._live, **self.SMTP_kwargs)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class SmtpTestServer:
    """A running aiosmtpd server on 127.0.0.1:port (see the module docstring)."""

    host = HOST

    def __init__(self) -> None:
        self.port = 0
        self.tls: TlsMode = "none"
        self.handler = RecordingHandler()
        self._controller: _Controller | None = None
        self._live: set[SMTP] = set()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, *, tls: TlsMode = "none", users: dict[str, str] | None = None) -> None:
        """Start with a fresh handler. tls: "none", "starttls" (offered and required before
        MAIL) or "implicit". users: offer AUTH (also without TLS) and accept only these."""
        assert self._controller is None, "already running"
        self.tls = tls
        self.handler = RecordingHandler(users=dict(users or {}))
        kwargs: dict[str, Any] = {
            "decode_data": False,  # envelope.original_content: the bytes as they came in
            "server_hostname": "smtp.test",  # no socket.getfqdn() in the server
            "ready_timeout": 10.0,
        }
        if tls == "starttls":
            kwargs.update(tls_context=server_tls_context(), require_starttls=True)
        elif tls == "implicit":
            kwargs["ssl_context"] = server_tls_context()
        if users is not None:
            kwargs.update(
                authenticator=self.handler.authenticate,
                auth_require_tls=False,  # also test AUTH over plain connections
            )
        self._live = set()
        self.port = free_port()
        controller = _Controller(
            self.handler, live=self._live, hostname=HOST, port=self.port, **kwargs
        )
        controller.start()
        self._controller = controller

    def restart(self, *, tls: TlsMode = "none", users: dict[str, str] | None = None) -> None:
        """Stop, then start in another mode (new port, fresh handler and records)."""
        self.stop()
        self.start(tls=tls, users=users)

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is None:
            return
        # Give clients a moment to hang up (QUIT, or the close after a failure) ...
        deadline = time.monotonic() + 5.0
        while self._live and time.monotonic() < deadline:
            time.sleep(0.01)
        # ... then close whatever is left, on the server's own loop, before stopping it.
        if self._live:
            done = threading.Event()

            def close_all() -> None:
                for proto in list(self._live):
                    _abort(proto)
                controller.loop.call_soon(done.set)

            controller.loop.call_soon_threadsafe(close_all)
            done.wait(5.0)
            deadline = time.monotonic() + 5.0
            while self._live and time.monotonic() < deadline:
                time.sleep(0.01)
        controller.stop()

    # -- helpers for tests ----------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        return self.handler.messages

    def client_tls_context(self) -> ssl.SSLContext:
        return client_tls_context()

    def delivery_config(self, **overrides: Any) -> DeliveryConfig:
        """A DeliveryConfig aimed at this server; security follows the server's TLS mode."""
        security = {"none": "none", "starttls": "starttls", "implicit": "tls"}[self.tls]
        base = DeliveryConfig(
            method="smtp",
            host=self.host,
            port=self.port,
            security=security,
            connections=2,
            timeout=5.0,
            retries=3,
        )
        return replace(base, **overrides)

    def mailer(self, *, backoff: float = 0.0, **overrides: Any) -> SmtpMailer:
        """An SmtpMailer for delivery_config(**overrides), trusting the test CA, no backoff."""
        return SmtpMailer(
            self.delivery_config(**overrides),
            backoff=backoff,
            tls_context=client_tls_context(),
            local_hostname="client.test",
        )


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """A real aiosmtpd server on 127.0.0.1 (plain SMTP, no AUTH); see SmtpTestServer."""
    server = SmtpTestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
