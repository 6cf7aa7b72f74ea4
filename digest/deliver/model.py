"""The data that goes in and out of a mailer, and the Mailer protocol itself."""

from __future__ import annotations

import email.message
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

SendStatus = Literal["sent", "pending", "failed"]

MAX_DETAIL = 300  # characters of server text kept in a detail


@dataclass
class OutgoingMail:
    """One built digest, ready to go.

    key is the caller's id for it: (subscriber email, digest date ISO). The message is fully built
    (From, To, Message-ID, ...) and is sent as it is: the mailer never changes its Message-ID.
    """

    key: tuple[str, str]
    recipient: str  # envelope RCPT TO
    message: email.message.EmailMessage


@dataclass
class SendOutcome:
    """What happened to one mail in this run.

    status: "sent"; "pending" (a transient failure and this run's attempts are used up, the next
    run retries); "failed" (the server refused this recipient permanently, 5xx).
    """

    mail: OutgoingMail
    status: SendStatus
    attempts: int  # attempts made in this run
    code: int | None = None  # last SMTP reply code
    detail: str = ""  # last SMTP reply / error, one line


AttemptCallback = Callable[[OutgoingMail], None]
OutcomeCallback = Callable[[SendOutcome], None]


class Mailer(Protocol):
    async def deliver(
        self,
        mails: Sequence[OutgoingMail],
        *,
        on_attempt: AttemptCallback,
        on_outcome: OutcomeCallback,
    ) -> list[SendOutcome]:
        """Deliver every mail; call on_attempt before each try, on_outcome after the last.

        Returns one outcome per mail, in the order given. Raises DeliverySetupError when the
        server cannot be used at all (login or TLS refused, password missing): then the mails
        that got no outcome were not sent.
        """
        ...


def one_line(text: object, limit: int = MAX_DETAIL) -> str:
    """Collapse whitespace (multi-line SMTP replies, tracebacks) into one short line."""
    line = " ".join(str(text).split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line
