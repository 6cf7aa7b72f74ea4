"""The send log: one row per (subscriber, digest date), its states and every transition.

                    prepare_digest            begin_send                 mark_sent
    (no row) ----------------------> pending ------------> sending -----------------> sent
        |                              |  ^                  |   |
        |  record_empty                |  | mark_unsent      |   | mark_unsent (4xx, timeout,
        v                              |  | (transient)      |   | dropped: 'pending'; 5xx:
      empty                            |  +------------------+   | 'failed')
                                       |                         v
                          a newer digest of the same reader    failed
                          (prepare / begin_send / record_empty)
                                       v
                                  superseded

- `sent` and `empty` settle their date (SETTLED): the date is not due again, and the digest's
  papers count as offered (the watermark is the largest upto_seq of settled or sealed rows).
- `pending`, `sending` and `failed` are OPEN: not delivered (yet); their papers roll into the
  reader's next digest, which supersedes them.
- `sealed` is a flag, not a state: set when an attempt's outcome is unknown (the run died during
  the send, or the connection dropped after the data went out). A sealed row keeps its bytes,
  Message-ID and papers for good: it is repeated byte for byte or not at all, never superseded,
  and its papers are never put in another digest.
- `--force` resends live beside the row they repeat (resends table) and never change it.

The Recorder applies a run's decisions and its delivery outcomes to this log; `settled_dates`
is the one lookup of "is this date done?" (plan, daemon and status use it through `due_now`).
"""

from digest.store.sendlog.due import Scheduled, due_now
from digest.store.sendlog.log import SendLogStore
from digest.store.sendlog.model import (
    KEEP_SENT_MESSAGES_DAYS,
    OPEN,
    SETTLED,
    DigestRecord,
    DigestStatus,
    LoggedMail,
    Resend,
    pack_message,
)
from digest.store.sendlog.recorder import Recorder

__all__ = [
    "KEEP_SENT_MESSAGES_DAYS",
    "OPEN",
    "SETTLED",
    "DigestRecord",
    "DigestStatus",
    "LoggedMail",
    "Recorder",
    "Resend",
    "Scheduled",
    "SendLogStore",
    "due_now",
    "pack_message",
]
