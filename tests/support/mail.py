"""Messages as objects, for tests that read what build_wire wrote."""

from __future__ import annotations

import email.policy
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser

from digest.message import POLICY, build_wire
from digest.models import RenderedDigest


def parse_wire(data: bytes) -> EmailMessage:
    """Wire bytes back into an EmailMessage (email.policy.default)."""
    parsed = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(parsed, EmailMessage)
    return parsed


def build_message(
    rendered: RenderedDigest,
    *,
    from_addr: str,
    to_addr: str,
    to_name: str = "",
    message_id: str,
    date: datetime,
    unsubscribe_mailto: str,
    unsubscribe_url: str = "",
) -> EmailMessage:
    """build_wire's bytes parsed with the message's own POLICY, so that as_bytes() gives these
    very bytes back (no line needs re-folding)."""
    wire = build_wire(
        rendered,
        from_addr=from_addr,
        to_addr=to_addr,
        to_name=to_name,
        message_id=message_id,
        date=date,
        unsubscribe_mailto=unsubscribe_mailto,
        unsubscribe_url=unsubscribe_url,
    )
    msg = BytesParser(policy=POLICY).parsebytes(wire)
    assert isinstance(msg, EmailMessage)
    unsubscribe = msg["List-Unsubscribe"]
    if unsubscribe is not None:
        # As a header object it folds itself, also under another policy (aiosmtplib's).
        msg.replace_header("List-Unsubscribe", unsubscribe)
    return msg
