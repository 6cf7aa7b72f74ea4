"""digest.deliver.replies: what each SMTP failure means, as tables (no server, no I/O)."""

from __future__ import annotations

import ssl

import aiosmtplib
import pytest

from digest.deliver.replies import (
    SETUP_FIX,
    Failure,
    connect_setup_error,
    find_ssl_error,
    login_setup_error,
    reply_failure,
    send_failure,
)

E = aiosmtplib
REFUSED_550 = E.SMTPRecipientRefused(550, "5.1.1 no such user", "a@x")
LOST = "after the message data was sent (it may have been delivered)"


def caused_by(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


# (exception, stage) -> (kind, code, words the detail holds)
SEND_CASES = [
    # Replies: 5xx permanent, anything else transient; a reply is never an unknown outcome.
    (E.SMTPRecipientsRefused([REFUSED_550]), "envelope", "permanent", 550, "550 5.1.1 no such user"),
    (E.SMTPRecipientsRefused([]), "envelope", "transient", None, "recipient refused"),
    (E.SMTPRecipientRefused(451, "4.7.1 greylisted", "a@x"), "envelope", "transient", 451, "451 4.7.1 greylisted"),
    (E.SMTPRecipientRefused(550, "5.1.1 no such user", "a@x"), "envelope", "permanent", 550, "550 5.1.1"),
    (E.SMTPSenderRefused(553, "5.7.1 not yours", "d@x"), "envelope", "permanent", 553, "553 5.7.1 not yours"),
    (E.SMTPResponseException(421, "4.3.2 shutting down"), "envelope", "transient", 421, "421 4.3.2"),
    (E.SMTPDataError(554, "5.7.1 rejected"), "data", "permanent", 554, "554 5.7.1 rejected"),
    (E.SMTPDataError(452, "4.3.1 full"), "data", "transient", 452, "452 4.3.1 full"),
    (E.SMTPResponseException(250, "odd"), "data", "transient", 250, "250 odd"),
    # Opening a connection is never one recipient's fault: even a 5xx there is transient
    # (a 5xx greeting is a setup error, decided by connect_setup_error first).
    (E.SMTPResponseException(550, "5.7.1 go away"), "connect", "transient", 550, "550 5.7.1 go away"),
    (E.SMTPConnectResponseError(421, "busy"), "connect", "transient", 421, "421 busy"),
    (ValueError("bad"), "connect", "transient", None, "bad"),
    (RuntimeError("boom"), "connect", "transient", None, "RuntimeError: boom"),
    # Lost connections and timeouts: transient before the data went out, unknown after it.
    (ConnectionRefusedError(111, "refused"), "connect", "transient", None, "cannot connect"),
    (E.SMTPConnectError("no route"), "connect", "transient", None, "cannot connect: no route"),
    (E.SMTPConnectTimeoutError("slow"), "connect", "transient", None, "timed out connecting after 5s"),
    (TimeoutError("slow"), "connect", "transient", None, "timed out connecting after 5s"),
    (E.SMTPServerDisconnected("gone"), "envelope", "transient", None, "connection lost: gone"),
    (E.SMTPReadTimeoutError("slow"), "envelope", "transient", None, "timed out sending after 5s: slow"),
    (OSError(104, "reset"), "envelope", "transient", None, "connection lost"),
    (E.SMTPServerDisconnected("gone"), "data", "unknown", None, f"connection lost {LOST}"),
    (E.SMTPReadTimeoutError("slow"), "data", "unknown", None, f"timed out sending after 5s {LOST}"),
    (TimeoutError(), "data", "unknown", None, LOST),
    (ConnectionResetError(104, "reset"), "data", "unknown", None, LOST),
    # What the server cannot take, or we cannot send: permanent, no loop on it.
    (E.SMTPNotSupported("SMTPUTF8 not offered"), "envelope", "permanent", None, "SMTPUTF8"),
    (ValueError("Address contains NUL"), "envelope", "permanent", None, "NUL"),
    (UnicodeEncodeError("ascii", "é", 0, 1, "no"), "data", "permanent", None, "can't encode"),
    (RuntimeError("a build bug"), "data", "permanent", None, "RuntimeError: a build bug"),
    # Any other library error: transient.
    (E.SMTPException("odd"), "envelope", "transient", None, "SMTPException: odd"),
]  # fmt: skip


@pytest.mark.parametrize(("exc", "stage", "kind", "code", "words"), SEND_CASES)
def test_send_failure(exc, stage, kind, code, words):
    failure = send_failure(exc, stage=stage, timeout=5.0)
    assert failure.kind == kind
    assert failure.permanent == (kind == "permanent")
    assert failure.unknown == (kind == "unknown")
    assert failure.code == code
    assert words in failure.detail
    assert "\n" not in failure.detail and "\r" not in failure.detail


@pytest.mark.parametrize(
    ("code", "kind"), [(421, "transient"), (450, "transient"), (452, "transient"),
                       (500, "permanent"), (550, "permanent"), (554, "permanent"),
                       (599, "permanent"), (600, "transient")],
)  # fmt: skip
def test_reply_failure_by_code(code, kind):
    failure = reply_failure(code, "multi\r\nline  reply")
    assert (failure.kind, failure.code) == (kind, code)
    assert failure.detail == f"{code} multi line reply"


def test_a_long_reply_is_cut_to_one_short_line():
    failure = reply_failure(550, "x" * 1000)
    assert len(failure.detail) <= 300 and failure.detail.endswith("…")


def test_failure_kinds():
    assert Failure(False, "").kind == "transient"
    assert Failure(True, "").kind == "permanent"
    assert Failure(False, "", unknown=True).kind == "unknown"


TLS = ssl.SSLCertVerificationError(1, "certificate verify failed")
TLS.reason = "CERTIFICATE_VERIFY_FAILED"

# (exception, security) -> (words the setup error holds, its code) or None: try again later
CONNECT_CASES = [
    (caused_by(E.SMTPConnectError("handshake"), TLS), "tls", ("TLS failed (tls): CERTIFICATE_VERIFY_FAILED", None)),
    (caused_by(E.SMTPException("x"), TLS), "starttls", ("TLS failed (starttls)", None)),
    (E.SMTPException("STARTTLS extension not supported"), "starttls", ("does not offer STARTTLS", None)),
    (E.SMTPException("odd"), "none", None),
    (E.SMTPResponseException(454, "4.7.0 TLS not available"), "starttls", ("STARTTLS refused: 454", 454)),
    (E.SMTPConnectResponseError(554, "5.7.1 no mail from you"), "none", ("refused the session: 554", 554)),
    (E.SMTPHeloError(550, "5.7.1 bad EHLO"), "tls", ("refused the session: 550", 550)),
    (E.SMTPConnectResponseError(421, "4.3.2 busy"), "none", None),
    (E.SMTPResponseException(421, "4.3.2 busy"), "none", None),
    (ConnectionRefusedError(111, "refused"), "starttls", None),
    (E.SMTPConnectTimeoutError("slow"), "tls", None),
    (E.SMTPServerDisconnected("gone"), "starttls", None),
]  # fmt: skip


@pytest.mark.parametrize(("exc", "security", "expected"), CONNECT_CASES)
def test_connect_setup_error(exc, security, expected):
    error = connect_setup_error(exc, security=security, where="smtp.example.org:587")
    if expected is None:
        assert error is None
        return
    words, code = expected
    assert error is not None
    assert words in error.message and "smtp.example.org:587" in error.message
    assert error.code == code
    assert error.fix and "\n" not in str(error)


LOGIN_CASES = [
    (E.SMTPAuthenticationError(535, "5.7.8 bad credentials"), ("login refused for 'digest': 535 5.7.8", 535)),
    (E.SMTPResponseException(454, "4.7.0 try later"), ("login failed for 'digest': 454", 454)),
    (E.SMTPResponseException(530, "5.7.0 TLS first"), ("login failed for 'digest': 530", 530)),
    (E.SMTPResponseException(421, "4.3.2 busy"), None),
    (E.SMTPResponseException(432, "4.7.12 password transition"), None),
    (E.SMTPException("No suitable authentication method found."), ("cannot log in as 'digest'", None)),
    (E.SMTPServerDisconnected("gone"), None),
    (E.SMTPReadTimeoutError("slow"), None),
    (OSError(104, "reset"), None),
]  # fmt: skip


@pytest.mark.parametrize(("exc", "expected"), LOGIN_CASES)
def test_login_setup_error(exc, expected):
    error = login_setup_error(exc, username="digest", where="smtp.example.org:587")
    if expected is None:
        assert error is None
        return
    words, code = expected
    assert error is not None
    assert words in error.message
    assert error.code == code
    assert error.fix == SETUP_FIX


def test_find_ssl_error_follows_causes_and_contexts_a_few_levels():
    inner = ssl.SSLError(1, "bad")
    middle = caused_by(OSError("wrapped"), inner)
    outer = E.SMTPConnectError("connect")
    outer.__context__ = middle
    assert find_ssl_error(outer) is inner
    assert find_ssl_error(E.SMTPConnectError("plain")) is None
    # A cycle of causes ends the search instead of looping.
    a, b = OSError("a"), OSError("b")
    a.__cause__, b.__cause__ = b, a
    assert find_ssl_error(a) is None
