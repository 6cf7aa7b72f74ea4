"""The send log's states and records: what a row is, and which states settle a date."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

# How long the bytes of a sent digest are kept (for "view in browser"); open ones are kept.
KEEP_SENT_MESSAGES_DAYS = 30


class DigestStatus(StrEnum):
    PENDING = "pending"  # built and queued, not tried yet (or a transient failure: retried)
    SENDING = "sending"  # an SMTP transaction is under way (committed right before it)
    SENT = "sent"  # the server accepted it
    FAILED = "failed"  # refused for good (5xx)
    EMPTY = "empty"  # nothing to send: the candidates were considered, none is offered again
    SUPERSEDED = "superseded"  # a newer digest of the same reader holds its papers


# Done: the date is not due again and the papers count as offered.
SETTLED = frozenset({DigestStatus.SENT, DigestStatus.EMPTY})
# Not delivered (yet): the papers roll into the next digest.
OPEN = frozenset({DigestStatus.PENDING, DigestStatus.SENDING, DigestStatus.FAILED})


@dataclass(frozen=True)
class DigestRecord:
    subscriber: str
    digest_date: str
    status: DigestStatus
    message_id: str
    upto_seq: int
    paper_ids: tuple[str, ...]
    attempts: int
    last_code: int | None
    last_error: str
    created_at: str
    updated_at: str
    sent_at: str | None
    sealed: bool = False  # an attempt's outcome was unknown: these bytes are final

    @property
    def resend_due(self) -> bool:
        """Sent once with an unknown outcome and not confirmed since: repeat it exactly."""
        return self.sealed and self.status in (DigestStatus.PENDING, DigestStatus.SENDING)

    @property
    def settled(self) -> bool:
        return self.status in SETTLED


@dataclass(frozen=True)
class Resend:
    """A `--force` send of a digest already sent, recorded beside it."""

    id: int
    subscriber: str
    digest_date: str
    status: str
    message_id: str
    attempts: int


def pack_message(message: bytes) -> bytes:
    """A digest's wire bytes as the send log keeps them (zlib at its fastest level: about a
    seventh of the size, 0.25 ms for a 70 KB digest)."""
    return zlib.compress(message, 1)


@dataclass
class LoggedMail:
    """One mail as the send log knows it."""

    kind: Literal["digest", "force"]  # a digest (new, or repeated exactly), or a forced resend
    subscriber: str
    digest_date: str
    message_id: str
    upto_seq: int
    paper_ids: list[str]
    new: bool  # built in this run (recorded 'pending' when queued); False: repeated exactly
    packed: bytes | None = None  # the built bytes as the log keeps them (set once built)
    resend_id: int | None = None  # set when a forced resend is first recorded

    @property
    def key(self) -> tuple[str, str]:
        return (self.subscriber, self.digest_date)


@dataclass(frozen=True)
class Prepared:
    """A new digest queued: written 'pending' (SendLogStore.prepare_digest)."""

    subscriber: str
    digest_date: str
    message_id: str
    upto_seq: int
    paper_ids: tuple[str, ...]


@dataclass(frozen=True)
class Sent:
    """A digest the server accepted (SendLogStore.mark_sent)."""

    subscriber: str
    digest_date: str
    code: int | None = None
    release: str | None = None  # the worker whose claim on this reader ends with this


@dataclass(frozen=True)
class Begin:
    """The 'sending' of one SMTP transaction (SendLogStore.begin_send)."""

    subscriber: str
    digest_date: str
    message_id: str
    upto_seq: int
    paper_ids: tuple[str, ...]
    message: bytes | None
    packed: bytes | None = None
    worker: str | None = None
