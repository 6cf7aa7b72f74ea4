"""What an SMTP failure means for the mail it happened to: pure functions, no I/O.

Every failed step of a conversation ends in one of four kinds:

- transient: 4xx (421 too), timeouts and dropped connections before the message data went out.
  Retry (a new connection if the old one is gone), then "pending" for the next run.
- permanent: 5xx for this recipient or message, or a message that cannot be sent at all (an
  address the server cannot take). "failed" at once, no retry.
- unknown: the connection dropped or timed out after the message data went out. The server
  may have accepted it, so only these exact bytes may ever be sent again (SendOutcome.unknown).
- setup: the server cannot be used at all (login refused, no STARTTLS, TLS failed, a 5xx
  greeting). The run stops with a DeliverySetupError.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from typing import Literal

import aiosmtplib

from digest.deliver.model import one_line
from digest.errors import DeliverySetupError

SETUP_FIX = "check username / password_env / security in [delivery]"

# Where a conversation was when it failed: opening it (greeting, EHLO, STARTTLS, login),
# the envelope (MAIL, RCPT), or the DATA command and the message itself.
Stage = Literal["connect", "envelope", "data"]
Kind = Literal["transient", "permanent", "unknown"]


@dataclass(frozen=True)
class Failure:
    """One failed attempt, classified."""

    permanent: bool
    detail: str  # one line, for the send log and the report
    code: int | None = None  # the SMTP reply code, when there was a reply
    unknown: bool = False  # lost after the data went out: it may have been delivered

    @property
    def kind(self) -> Kind:
        if self.unknown:
            return "unknown"
        return "permanent" if self.permanent else "transient"


def reply_failure(code: int, message: str) -> Failure:
    """A refusal with a reply code: 5xx is permanent, anything else transient."""
    return Failure(500 <= code < 600, one_line(f"{code} {message}"), code)


def send_failure(exc: BaseException, *, stage: Stage, timeout: float) -> Failure:
    """The failure an exception from one attempt stands for (setup errors are caught before:
    see connect_setup_error and login_setup_error). `timeout` is the configured one, named in
    the detail."""
    failure = _failure(exc, stage, timeout)
    if stage == "connect" and failure.permanent:
        # Opening a connection is never one recipient's fault: retry, then "pending".
        return replace(failure, permanent=False)
    return failure


def _failure(exc: BaseException, stage: Stage, timeout: float) -> Failure:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients[0] if exc.recipients else None
        if refused is None:
            return Failure(False, "recipient refused")
        return reply_failure(refused.code, refused.message)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if stage == "connect":  # greeting, EHLO or login: never this recipient's fault
            return Failure(False, one_line(f"{exc.code} {exc.message}"), exc.code)
        return reply_failure(exc.code, exc.message)
    # After the data went out, a lost reply means the server may have accepted the mail.
    unknown = stage == "data"
    after = " after the message data was sent (it may have been delivered)" if unknown else ""
    if isinstance(exc, TimeoutError):  # SMTPTimeoutError and asyncio's
        what = "connecting" if stage == "connect" else "sending"
        text = f"timed out {what} after {timeout:g}s{after}: {exc}"
        return Failure(False, one_line(text), unknown=unknown)
    if isinstance(exc, ConnectionError | OSError):  # SMTPServerDisconnected, SMTPConnectError
        what = "cannot connect" if stage == "connect" else "connection lost"
        return Failure(False, one_line(f"{what}{after}: {exc}"), unknown=unknown)
    if isinstance(exc, aiosmtplib.SMTPNotSupported | ValueError):
        # An address the server cannot take (non-ASCII without SMTPUTF8, bad characters).
        return Failure(True, one_line(f"{exc}"))
    if isinstance(exc, aiosmtplib.SMTPException):
        return Failure(False, one_line(f"{type(exc).__name__}: {exc}"))
    # Anything else is a message we cannot serialise: a build bug; do not loop on it.
    return Failure(True, one_line(f"{type(exc).__name__}: {exc}"))


def connect_setup_error(
    exc: BaseException, *, security: str, where: str
) -> DeliverySetupError | None:
    """Which connect() failures mean "this server cannot be used" (None: try again later)."""
    tls_error = find_ssl_error(exc)
    if tls_error is not None:
        return DeliverySetupError(
            f"SMTP {where}: TLS failed ({security}): {one_line(tls_error.reason or tls_error)}",
            fix=SETUP_FIX,
        )
    if type(exc) is aiosmtplib.SMTPException and security == "starttls":
        # aiosmtplib raises a bare SMTPException when STARTTLS is not offered.
        return DeliverySetupError(
            f'SMTP {where} does not offer STARTTLS (security = "starttls"); '
            "refusing to send in plaintext",
            fix=SETUP_FIX,
        )
    if type(exc) is aiosmtplib.SMTPResponseException and security == "starttls":
        # Inside connect() only the STARTTLS command raises a bare response error.
        return DeliverySetupError(
            f"SMTP {where}: STARTTLS refused: {one_line(f'{exc.code} {exc.message}')}",
            code=exc.code,
            fix=SETUP_FIX,
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 500:
        # A 5xx greeting or EHLO reply: this server does not take mail from us at all.
        return DeliverySetupError(
            f"SMTP {where} refused the session: {one_line(f'{exc.code} {exc.message}')}",
            code=exc.code,
            fix="check host / port / security in [delivery]",
        )
    return None


def login_setup_error(
    exc: BaseException, *, username: str, where: str
) -> DeliverySetupError | None:
    """Which login() failures mean "this server cannot be used" (None: try again later)."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliverySetupError(
            f"SMTP {where}: login refused for {username!r}: "
            f"{one_line(f'{exc.code} {exc.message}')}",
            code=exc.code,
            fix=SETUP_FIX,
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if 400 <= exc.code < 500 and exc.code != 454:
            return None  # transient (e.g. 421): retry later
        return DeliverySetupError(
            f"SMTP {where}: login failed for {username!r}: {one_line(f'{exc.code} {exc.message}')}",
            code=exc.code,
            fix=SETUP_FIX,
        )
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPTimeoutError):
        return None
    if isinstance(exc, aiosmtplib.SMTPException):  # no AUTH offered, no usable mechanism
        return DeliverySetupError(
            f"SMTP {where}: cannot log in as {username!r}: {one_line(exc)}", fix=SETUP_FIX
        )
    return None


def find_ssl_error(exc: BaseException | None) -> ssl.SSLError | None:
    """The ssl.SSLError behind an exception (its cause or context, a few levels deep)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
