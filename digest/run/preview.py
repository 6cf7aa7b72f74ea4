"""A dry run's "mailer": each digest written as .eml and .html into a folder, nothing sent."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

from digest.deliver import (
    AttemptCallback,
    MailQueue,
    OutcomeCallback,
    SendOutcome,
    Stop,
    outbox_filename,
)


class PreviewWriter:
    """Writes each mail of the queue as FILE.eml (the wire bytes) and FILE.html (its HTML)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def deliver_stream(
        self,
        queue: MailQueue,
        *,
        on_attempt: AttemptCallback,
        on_outcome: OutcomeCallback,
        stop: Stop | None = None,
    ) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        while (mail := await queue.get()) is not None:
            eml_path = self.folder / outbox_filename(mail)  # the name the outbox would give it
            eml_path.write_bytes(mail.data)
            eml_path.with_suffix(".html").write_text(html_part(mail.data), encoding="utf-8")
            on_attempt(mail)
            on_outcome(SendOutcome(mail, "sent", 1, detail=str(eml_path)))


def html_part(data: bytes) -> str:
    """The HTML part of a message's wire bytes ("" when it has none)."""
    message = message_from_bytes(data, policy=default_policy)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("html",))
    return part.get_content() if part is not None else ""
