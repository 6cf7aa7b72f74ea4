"""Digests already sent, as they were mailed: `digest show` and `digest preview --date`.

    for d in sent_digests(store, email="ada@example.org", day=date(2026, 6, 12)): print(d.text)

The send log keeps each digest's exact bytes (for "view in browser", KEEP_SENT_MESSAGES_DAYS
after it was sent); a digest older than that is shown by its papers' titles only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy

from digest.store import DigestRecord, DigestStatus, Store


@dataclass(frozen=True)
class SentDigest:
    record: DigestRecord
    data: bytes | None  # the wire bytes as mailed; None when no longer kept
    titles: tuple[str, ...]  # its papers' titles, in the digest's order

    @property
    def subject(self) -> str:
        return str(self._message()["Subject"] or "") if self.data else ""

    @property
    def text(self) -> str:
        """The plain-text part as the reader got it ("" when the bytes are gone)."""
        return self._part("plain")

    @property
    def html(self) -> str:
        return self._part("html")

    def _message(self) -> EmailMessage:
        assert self.data is not None
        message = message_from_bytes(self.data, policy=default_policy)
        assert isinstance(message, EmailMessage)
        return message

    def _part(self, kind: str) -> str:
        if self.data is None:
            return ""
        part = self._message().get_body(preferencelist=(kind,))
        return str(part.get_content()) if part is not None else ""


def sent_digests(
    store: Store, *, email: str | None = None, day: date | None = None
) -> list[SentDigest]:
    """The digests sent to `email` (None: every reader) on `day` (None: each reader's latest
    sent one), by reader."""
    records = [r for r in store.digests(email) if r.status == DigestStatus.SENT]
    if day is not None:
        records = [r for r in records if r.digest_date == day.isoformat()]
    else:
        latest: dict[str, DigestRecord] = {}
        for record in records:  # ordered by reader, then date: the last one wins
            latest[record.subscriber] = record
        records = list(latest.values())
    papers = store.get_papers({pid for r in records for pid in r.paper_ids})
    return [
        SentDigest(
            record=r,
            data=store.message_bytes(r.subscriber, r.digest_date),
            titles=tuple(papers[pid].title for pid in r.paper_ids if pid in papers),
        )
        for r in records
    ]
