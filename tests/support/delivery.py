"""Feeding mailers in tests: a list of mails through deliver_stream, a callback recorder, and
small hand-made mails.

    outcomes = asyncio.run(deliver_list(mailer, mails, on_attempt=rec.on_attempt,
                                        on_outcome=rec.on_outcome))
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
from collections.abc import Sequence
from email.message import EmailMessage

from digest.deliver import (
    AttemptCallback,
    Mailer,
    MailQueue,
    OutcomeCallback,
    OutgoingMail,
    SendOutcome,
    Stop,
)

DAY = "2026-06-12"
FROM = "Paper Digest <digest@example.org>"


async def deliver_list(
    mailer: Mailer,
    mails: Sequence[OutgoingMail],
    *,
    on_attempt: AttemptCallback,
    on_outcome: OutcomeCallback,
    stop: Stop | None = None,
) -> list[SendOutcome]:
    """deliver_stream() over a list: the outcomes of the mails that got one, in the order given."""
    queue: MailQueue = asyncio.Queue()
    for mail in mails:
        queue.put_nowait(mail)
    queue.put_nowait(None)
    outcomes: dict[int, SendOutcome] = {}

    def record(outcome: SendOutcome) -> None:
        outcomes[id(outcome.mail)] = outcome
        on_outcome(outcome)

    await mailer.deliver_stream(queue, on_attempt=on_attempt, on_outcome=record, stop=stop)
    return [outcomes[id(m)] for m in mails if id(m) in outcomes]


def mail_from_message(key: tuple[str, str], recipient: str, message: EmailMessage) -> OutgoingMail:
    """An OutgoingMail from an EmailMessage: its From address is the envelope sender."""
    return OutgoingMail(
        key=key,
        recipient=recipient,
        data=message.as_bytes(policy=email.policy.SMTP),
        sender=email.utils.parseaddr(str(message.get("From", "")))[1],
        message_id=str(message.get("Message-ID", "")),
    )


def make_mail(name: str, day: str = DAY) -> OutgoingMail:
    """A small two-part mail to name@example.org."""
    address = f"{name}@example.org"
    msg = EmailMessage()
    msg["From"] = FROM
    msg["To"] = address
    msg["Subject"] = f"Your paper digest for {day}"
    msg["Message-ID"] = f"<{day}.{name}@digest.example.org>"
    msg.set_content(f"Hello {name}, here are today's papers.\n")
    msg.add_alternative(f"<p>Hello {name}, here are today's papers.</p>", subtype="html")
    return mail_from_message((address, day), address, msg)


class Recorder:
    """Records on_attempt / on_outcome calls, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []  # (kind, recipient, status)
        self.outcomes: dict[str, SendOutcome] = {}

    def on_attempt(self, mail: OutgoingMail) -> None:
        assert mail.recipient not in self.outcomes, "attempt after the final outcome"
        self.events.append(("attempt", mail.recipient, ""))

    def on_outcome(self, outcome: SendOutcome) -> None:
        assert outcome.mail.recipient not in self.outcomes, "two outcomes for one mail"
        self.outcomes[outcome.mail.recipient] = outcome
        self.events.append(("outcome", outcome.mail.recipient, outcome.status))

    def attempts(self, recipient: str) -> int:
        return sum(1 for kind, r, _ in self.events if kind == "attempt" and r == recipient)

    def check_order(self) -> None:
        """Each mail: one or more attempts, then exactly one outcome, nothing after it."""
        last: dict[str, str] = {}
        for kind, recipient, _ in self.events:
            assert last.get(recipient) != "outcome", f"{kind} after the outcome of {recipient}"
            last[recipient] = kind


def run(mailer: Mailer, mails: Sequence[OutgoingMail], rec: Recorder) -> list[SendOutcome]:
    """Deliver `mails` on a new event loop, recording the callbacks in `rec`."""
    return asyncio.run(
        deliver_list(mailer, mails, on_attempt=rec.on_attempt, on_outcome=rec.on_outcome)
    )
