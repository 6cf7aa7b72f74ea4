"""Deliver built messages: SMTP (aiosmtplib) or an outbox folder of .eml files.

    mailer = make_mailer(config.delivery)
    await mailer.deliver_stream(queue, on_attempt=..., on_outcome=..., stop=...)

The mails come from an asyncio queue while they are being built (None ends it), so the first
mail goes out while the rest are composed. on_attempt(mail) is called right before each try to
transmit a mail (commit "sending" there); on_outcome(outcome) right after its final result
(commit sent / pending / failed there). Both are plain callbacks, called on the event loop's
thread. Once `stop` is set (a signal, the delivery deadline), no new transaction starts. A mail
that never reached the server (no From address; the server looked down, so the rest were not
tried) gets an outcome with attempts = 0 and no on_attempt call. deliver_stream() raises
DeliverySetupError when the server cannot be used at all (login or TLS refused, password
missing); mails that got no outcome by then were not sent.
"""

from __future__ import annotations

import ssl

from digest.config import DeliveryConfig
from digest.deliver.model import (
    AttemptCallback,
    Mailer,
    MailQueue,
    OutcomeCallback,
    OutgoingMail,
    SendOutcome,
    SendStatus,
    Stop,
    one_line,
)
from digest.deliver.outbox import OutboxMailer, outbox_filename
from digest.deliver.ratelimit import RateLimiter
from digest.deliver.smtp import SmtpMailer

__all__ = [
    "AttemptCallback",
    "MailQueue",
    "Mailer",
    "OutboxMailer",
    "OutcomeCallback",
    "OutgoingMail",
    "RateLimiter",
    "SendOutcome",
    "SendStatus",
    "SmtpMailer",
    "Stop",
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
