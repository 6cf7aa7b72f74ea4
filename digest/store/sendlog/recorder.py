"""The Recorder: a run's decisions and delivery outcomes, written to the send log."""

from __future__ import annotations

from digest.clock import Clock
from digest.store.sendlog.log import SendLogStore
from digest.store.sendlog.model import DigestStatus, LoggedMail


class Recorder:
    """Applies a run's decisions and its delivery outcomes to the send log. A dry run records
    nothing (it works on a copy of the state, and keeps it unchanged)."""

    def __init__(self, log: SendLogStore, clock: Clock, *, dry_run: bool) -> None:
        self.log = log
        self.clock = clock
        self.dry_run = dry_run

    def empty(self, subscriber: str, digest_date: str, *, upto_seq: int) -> None:
        """Nothing to mail this time: the candidates are not offered again."""
        self.log.record_empty(subscriber, digest_date, upto_seq=upto_seq, now=self.clock())

    def queued(self, mail: LoggedMail) -> None:
        """A new digest was built and goes into the queue: it is 'pending' in the send log."""
        if mail.kind == "digest" and mail.new and not self.dry_run:
            self.log.prepare_digest(
                mail.subscriber,
                mail.digest_date,
                message_id=mail.message_id,
                upto_seq=mail.upto_seq,
                paper_ids=mail.paper_ids,
                now=self.clock(),
            )

    def attempt(self, mail: LoggedMail, data: bytes) -> None:
        """Right before an SMTP transaction: commit 'sending' (with the bytes)."""
        if self.dry_run:
            return
        now = self.clock()
        if mail.kind == "force":
            if mail.resend_id is None:
                mail.resend_id = self.log.begin_resend(
                    mail.subscriber,
                    mail.digest_date,
                    message_id=mail.message_id,
                    message=data,
                    packed=mail.packed,
                    now=now,
                )
            self.log.mark_resend(mail.resend_id, status=DigestStatus.SENDING, now=now)
            return
        self.log.begin_send(
            mail.subscriber,
            mail.digest_date,
            message_id=mail.message_id,
            upto_seq=mail.upto_seq,
            paper_ids=mail.paper_ids,
            message=data,
            packed=mail.packed,
            now=now,
        )

    def outcome(
        self,
        mail: LoggedMail,
        status: str,
        *,
        code: int | None,
        detail: str,
        unknown: bool,
    ) -> None:
        """Right after a mail's final result in this run: sent, pending or failed."""
        if self.dry_run:
            return
        now = self.clock()
        if mail.kind == "force":
            if mail.resend_id is not None:
                error = "" if status == DigestStatus.SENT else detail
                self.log.mark_resend(mail.resend_id, status=status, now=now, code=code, error=error)
        elif status == DigestStatus.SENT:
            self.log.mark_sent(mail.subscriber, mail.digest_date, now=now, code=code)
        else:
            self.log.mark_unsent(
                mail.subscriber,
                mail.digest_date,
                status=status,
                code=code,
                error=detail,
                now=now,
                unknown=unknown,
            )
