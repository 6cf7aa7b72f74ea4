"""The Recorder: a run's decisions and delivery outcomes, written to the send log."""

from __future__ import annotations

from digest.clock import Clock
from digest.store.sendlog.log import SendLogStore
from digest.store.sendlog.model import Begin, DigestStatus, LoggedMail, Prepared, Sent
from digest.store.workers import ClaimLost


class Recorder:
    """Applies a run's decisions and its delivery outcomes to the send log. A dry run records
    nothing of its mails (it works on a copy of the state, and keeps it unchanged).

    `worker`: the worker this run is; 'sending' is written only while it holds the reader's
    claim, and the write that ends its work on a reader (`last=True`) lets the claim go.

    Fewer commits, the same promises: a queued digest ('pending') and an accepted one
    ('sent') are written with the next 'sending', in its transaction, or by `flush()` (the
    run calls it as soon as the mailer waits, and at its end). So every mail the server
    accepted is recorded before any new SMTP transaction starts, as with a write of its own:
    what a crash can duplicate is still at most the one mail in flight per connection."""

    def __init__(
        self, log: SendLogStore, clock: Clock, *, dry_run: bool, worker: str | None = None
    ) -> None:
        self.log = log
        self.clock = clock
        self.dry_run = dry_run
        self.worker = None if dry_run else worker
        self._prepared: list[Prepared] = []
        self._sent: list[Sent] = []

    def _release(self, last: bool) -> str | None:
        return self.worker if last else None

    @property
    def unwritten(self) -> int:
        """Outcomes and decisions held for the next write."""
        return len(self._prepared) + len(self._sent)

    def flush(self) -> None:
        """Write what is held (queued and accepted digests) now."""
        if self._prepared or self._sent:
            self._write(None)

    def _write(self, begin: Begin | None) -> None:
        prepared, sent = self._prepared, self._sent
        self._prepared, self._sent = [], []
        now = self.clock()
        try:
            self.log.record_together(prepared=prepared, sent=sent, begin=begin, now=now)
        except ClaimLost:
            # This transaction's reader was taken over: what the server accepted and what was
            # queued is still written, only the new 'sending' is not.
            if prepared or sent:
                self.log.record_together(prepared=prepared, sent=sent, now=now)
            raise

    def empty(self, subscriber: str, digest_date: str, *, upto_seq: int, last: bool) -> None:
        """Nothing to mail this time: the candidates are not offered again."""
        self.flush()
        self.log.record_empty(
            subscriber,
            digest_date,
            upto_seq=upto_seq,
            now=self.clock(),
            release=self._release(last),
        )

    def queued(self, mail: LoggedMail) -> None:
        """A new digest was built and goes into the queue: it is 'pending' in the send log
        (written with the next write, before its own 'sending')."""
        if mail.kind == "digest" and mail.new and not self.dry_run:
            self._prepared.append(
                Prepared(
                    mail.subscriber,
                    mail.digest_date,
                    mail.message_id,
                    mail.upto_seq,
                    tuple(mail.paper_ids),
                )
            )

    def attempt(self, mail: LoggedMail, data: bytes) -> None:
        """Right before an SMTP transaction: commit 'sending' (with the bytes), and what is
        held, in one transaction."""
        if self.dry_run:
            return
        if mail.kind == "force":
            self.flush()
            now = self.clock()
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
        self._write(
            Begin(
                mail.subscriber,
                mail.digest_date,
                mail.message_id,
                mail.upto_seq,
                tuple(mail.paper_ids),
                data,
                mail.packed,
                self.worker,
            )
        )

    def outcome(
        self,
        mail: LoggedMail,
        status: str,
        *,
        code: int | None,
        detail: str,
        unknown: bool,
        last: bool = False,
    ) -> None:
        """Right after a mail's final result in this run: sent (held for the next write),
        pending or failed (`last`: the reader's last mail in this run)."""
        if self.dry_run:
            return
        if mail.kind == "digest" and status == DigestStatus.SENT:
            self._sent.append(Sent(mail.subscriber, mail.digest_date, code, self._release(last)))
            return
        self.flush()
        now = self.clock()
        if mail.kind == "force":
            if mail.resend_id is not None:
                error = "" if status == DigestStatus.SENT else detail
                self.log.mark_resend(mail.resend_id, status=status, now=now, code=code, error=error)
        else:
            self.log.mark_unsent(
                mail.subscriber,
                mail.digest_date,
                status=status,
                code=code,
                error=detail,
                now=now,
                unknown=unknown,
                release=self._release(last),
            )
