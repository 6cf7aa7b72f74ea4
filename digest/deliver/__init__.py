"""Deliver built messages: SMTP (aiosmtplib) or an outbox folder of .eml files.

    mailer = make_mailer(config.delivery)
    outcomes = await mailer.deliver(mails, on_attempt=..., on_outcome=...)

on_attempt(mail) is called right before each try to transmit a mail (commit "sending" there);
on_outcome(outcome) right after its final result (commit sent / pending / failed there). Both
are plain callbacks, called on the event loop's thread. A mail that never reached the server
(no From address; the server looked down, so the rest were not tried) gets an outcome with
attempts = 0 and no on_attempt call. deliver() raises DeliverySetupError when
the server cannot be used at all (login or TLS refused, password missing); mails that got no
outcome by then were not sent.
"""

from __future__ import annotations

import ssl

from digest.config import DeliveryConfig
from digest.deliver.model import (
    AttemptCallback,
    Mailer,
    OutcomeCallback,
    OutgoingMail,
    SendOutcome,
    SendStatus,
    one_line,
)
from digest.deliver.outbox import OutboxMailer, outbox_filename
from digest.deliver.ratelimit import RateLimiter
from digest.deliver.smtp import SmtpMailer

__all__ = [
    "AttemptCallback",
    "Mailer",
    "OutboxMailer",
    "OutcomeCallback",
    "OutgoingMail",
    "RateLimiter",
    "SendOutcome",
    "SendStatus",
    "SmtpMailer",
    "make_mailer",
    "one_line",
    "outbox_filename",
]


def make_mailer(
    config: DeliveryConfig,
    *,
    backoff: float = 2.0,
    tls_context: ssl.SSLContext | None = None,
) -> Mailer:
    """The mailer for config.method: SmtpMailer for "smtp", OutboxMailer for "outbox"."""
    if config.method == "outbox":
        return OutboxMailer(config)
    return SmtpMailer(config, backoff=backoff, tls_context=tls_context)
