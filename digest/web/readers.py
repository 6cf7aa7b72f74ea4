"""Who a link's subscriber ref stands for: the readers of the config the app started with, and
every reader a run has registered in the state since.

A reader gets a mail only after a run registered them (Store.register_subscribers), so a
reader added to the config later (a SIGHUP to the daemon, an edit before the next timer run)
is in the state before any link of theirs is out. The index learns them when a token's ref is
unknown: it reads the readers added since its last look (Store.reader_emails from a position:
an index seek, however many readers there are) and hashes only those. Should that not find
the reader, and the last full read is a minute old, it reads the whole list once (a state file
replaced under the app starts its positions anew). A reader removed from the config stays in
the state, so every link in the mails they got keeps working (RFC 8058: the one-click
unsubscribe of every sent mail must), and nobody is ever forgotten.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from digest.store import Store
from digest.web.tokens import subscriber_ref

FULL_READ_SECONDS = 60.0


class ReaderIndex:
    """Readers by their ref under one secret. `lookup` is cheap and safe from the event loop;
    `learn_from(store, ref)` runs in a worker thread (several at once are fine)."""

    def __init__(
        self,
        secret: bytes,
        config_emails: Iterable[str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret = secret
        self._clock = clock
        self._by_ref: dict[bytes, str] = {}
        self._emails: set[str] = set()  # lowercased: hashed already
        self._lock = threading.Lock()
        self._position = 0  # how far the state's reader list was read
        self._full_read_at: float | None = None
        self._add(config_emails)  # first, so a reader keeps the config's spelling

    def lookup(self, ref: bytes) -> str | None:
        return self._by_ref.get(ref)

    def __len__(self) -> int:
        return len(self._by_ref)

    def learn_from(self, store: Store | None, ref: bytes) -> None:
        """Look for the reader of `ref` among those the state registered since the last look
        (and in the whole list, at most once a minute). None: no state yet."""
        if store is None:
            return
        with self._lock:
            if ref in self._by_ref:  # another request learnt it meanwhile
                return
            now, start = self._clock(), self._position
            if start > 0:
                self._read(store, start)
            stale = self._full_read_at is None or now - self._full_read_at >= FULL_READ_SECONDS
            if ref not in self._by_ref and (start == 0 or stale):
                self._read(store, 0)
                self._full_read_at = now

    def _read(self, store: Store, after: int) -> None:
        emails, self._position = store.reader_emails(after)
        self._add(emails)

    def _add(self, emails: Iterable[str]) -> None:
        new: dict[bytes, str] = {}
        for email in emails:
            key = email.lower()
            if key not in self._emails:
                self._emails.add(key)
                new[subscriber_ref(self._secret, email)] = email
        self._by_ref.update(new)  # under the GIL a lookup sees each entry whole or not at all
