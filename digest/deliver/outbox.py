"""method = "outbox": write each digest as an .eml file into a folder instead of sending it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

from digest.config import DeliveryConfig
from digest.deliver.model import (
    AttemptCallback,
    MailQueue,
    OutcomeCallback,
    OutgoingMail,
    SendOutcome,
    Stop,
    one_line,
    take_once,
)
from digest.errors import DeliverySetupError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_STEM = 150


def outbox_filename(mail: OutgoingMail) -> str:
    """`2026-06-12_ada_at_example.org.eml`: digest date and subscriber, safe characters only.

    Named after mail.key, so writing the same digest again replaces its file. When the
    address had to be mangled beyond "@" -> "_at_", a short hash keeps two addresses that
    mangle alike (a+b@x, a_b@x) apart.
    """
    email, day = mail.key
    name = email.replace("@", "_at_")
    safe = _UNSAFE.sub("_", name)
    if safe != name:
        safe += "_" + hashlib.sha256(email.encode("utf-8")).hexdigest()[:8]
    stem = f"{_UNSAFE.sub('_', day)}_{safe}"[:_MAX_STEM].lstrip(".")
    return f"{stem}.eml"


def write_atomically(path: Path, data: bytes) -> None:
    """Write data to path so a reader sees the old file or the whole new one, never a part.

    A temp file in the same folder, fsync, os.replace, then fsync the folder (best effort).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # not every platform/filesystem can fsync a directory
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class OutboxMailer:
    """Writes one .eml per mail into config.outbox (created if missing). Status "sent"."""

    def __init__(self, config: DeliveryConfig) -> None:
        self.config = config
        self.folder = Path(config.outbox)

    async def deliver_stream(
        self,
        queue: MailQueue,
        *,
        on_attempt: AttemptCallback,
        on_outcome: OutcomeCallback,
        stop: Stop | None = None,
    ) -> None:
        made_folder = False
        keys: set[tuple[str, str]] = set()
        while (stop is None or not stop.is_set()) and (mail := await queue.get()) is not None:
            if stop is not None and stop.is_set():
                break
            take_once(keys, mail, done="written")
            if not made_folder:
                await self._make_folder()
                made_folder = True
            path = self.folder / outbox_filename(mail)
            on_attempt(mail)
            try:
                await asyncio.to_thread(write_atomically, path, mail.data)
            except OSError as exc:
                # Disk full, permissions: nothing was written; the next run tries again.
                detail = one_line(f"cannot write {path}: {exc.strerror or exc}")
                outcome = SendOutcome(mail, "pending", attempts=1, detail=detail)
            else:
                outcome = SendOutcome(mail, "sent", attempts=1, detail=f"written to {path}")
            on_outcome(outcome)

    async def _make_folder(self) -> None:
        try:
            await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliverySetupError(
                f"cannot create the outbox folder {str(self.folder)!r}: {exc.strerror or exc}",
                fix="check outbox in [delivery]",
            ) from None
