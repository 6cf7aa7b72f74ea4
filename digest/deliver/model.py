"""The data that goes in and out of a mailer, and the Mailer protocol itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from digest.errors import DuplicateMailError

SendStatus = Literal["sent", "pending", "failed"]

MAX_DETAIL = 300  # characters of server text kept in a detail


@dataclass
class OutgoingMail:
    """One built digest, ready to go.

    key is the caller's id for it: (subscriber email, digest date ISO); a mailer never sends two
    mails with one key in a run. `data` is the whole message as it goes on the wire (built
    once, CRLF line endings) and is sent exactly as it is: a repeated send is byte for byte.
    """

    key: tuple[str, str]
    recipient: str  # envelope RCPT TO
    data: bytes
    sender: str = ""  # envelope MAIL FROM; "" = none (the mail fails without being sent)
    message_id: str = ""
    context: object = None  # the caller's own data about this mail; mailers never read it


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
    # "pending" only: the last attempt may have been delivered (the connection dropped or timed
    # out after the message data went out), so only these exact bytes may ever be sent again.
    unknown: bool = False


AttemptCallback = Callable[[OutgoingMail], None]
OutcomeCallback = Callable[[SendOutcome], None]


# What feeds a mailer while the mails are being built: a mail, or None when there are no more.
MailQueue = asyncio.Queue[OutgoingMail | None]


@dataclass
class Stop:
    """Why a delivery stops early. `requested` is set by a signal (SIGTERM, SIGINT) or by the
    delivery deadline; `reason` says which. A mailer starts no new SMTP transaction once it is
    set: those in flight finish and get their outcome, the rest get none."""

    requested: asyncio.Event
    reason: str = ""

    @classmethod
    def new(cls) -> Stop:
        return cls(asyncio.Event())

    def set(self, reason: str) -> None:
        if not self.requested.is_set():
            self.reason = reason
            self.requested.set()

    def is_set(self) -> bool:
        return self.requested.is_set()


class Mailer(Protocol):
    async def deliver_stream(
        self,
        queue: MailQueue,
        *,
        on_attempt: AttemptCallback,
        on_outcome: OutcomeCallback,
        stop: Stop | None = None,
    ) -> None:
        """Deliver every mail taken from `queue` until it yields None; call on_attempt before
        each try and on_outcome after the last. Mails left in the queue when `stop` is set get
        no outcome. Raises DeliverySetupError when the server cannot be used at all (login or
        TLS refused, password missing): then the mails that got no outcome were not sent."""
        ...


def take_once(taken: set[tuple[str, str]], mail: OutgoingMail, *, done: str) -> None:
    """Note that `mail` was taken; a second mail with its key in one run is a bug upstream,
    and stops the run (`done`: what did not happen to the second, e.g. "sent")."""
    if mail.key in taken:
        raise DuplicateMailError(
            f"the digest {mail.key[1]} of {mail.key[0]} was queued twice in one run; "
            f"the second was not {done}",
            fix="report it",
        )
    taken.add(mail.key)


def one_line(text: object, limit: int = MAX_DETAIL) -> str:
    """Collapse whitespace (multi-line SMTP replies, tracebacks) into one short line."""
    line = " ".join(str(text).split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line
