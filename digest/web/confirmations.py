"""The sign-up confirmation mails: built, recorded and sent off the request path.

    sender = ConfirmationSender(config, secret, mailer, clock=utc_now)
    sender.start()        # a thread of its own: sends what is due, then waits for wake()
    sender.wake()         # a sign-up was recorded (cheap, from the event loop)
    sender.stop()
    await sender.send_due()   # one pass, for tests

The request only records the sign-up (its mail 'queued'), so the sign-up page answers alike
and in the same time for any address. This worker claims the mails due, builds each one's bytes
once and stores them before the first attempt, and sends them through the service's mailer
(digest.deliver: SMTP or the outbox) with the send log's rules (digest.store.signups): 'sending'
committed before the SMTP transaction, 'sent' right after, an unknown outcome repeated byte for
byte only. A mail not sent now (a transient failure, the server down) is tried again later
until the link expires. It runs in its own thread with its own event loop, so state writes
around each attempt never hold up the web side's requests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from digest.config import Config
from digest.deliver import Mailer, OutgoingMail, SendOutcome
from digest.errors import DigestError
from digest.message import build_wire, make_message_id
from digest.models import RenderedDigest
from digest.store import SignupMail, Store
from digest.web.tokens import make_token

log = logging.getLogger("digest.web.signup")

CONFIRM_PATH = "/c/"
LEASE_SECONDS = 600.0  # a claim on a mail outlasts a whole delivery with its retries
POLL_SECONDS = 60.0  # how often mails waiting for a retry are looked at
RETRY_SECONDS = 300.0  # after a transient failure


def confirm_subject(signup_id: str, expires_at: datetime) -> str:
    """The token subject of a sign-up's link: its id and expiry (Unix seconds)."""
    return f"{signup_id}.{int(expires_at.timestamp())}"


def confirm_url(config: Config, secret: bytes, address: str, subject: str) -> str:
    assert config.web is not None
    return config.web.base_url + CONFIRM_PATH + make_token(secret, "confirm", address, subject)


def confirmation_mail(
    config: Config, secret: bytes, mail: SignupMail, *, now: datetime
) -> tuple[str, bytes]:
    """(Message-ID, wire bytes) of a sign-up's confirmation mail."""
    reader = json.loads(mail.reader)
    expires = datetime.fromisoformat(mail.expires_at)
    url = confirm_url(config, secret, mail.address, confirm_subject(mail.id, expires))
    hours = max(1, round((expires - now).total_seconds() / 3600))
    interests = ", ".join(reader.get("keywords", [])) or "(none: the day's most upvoted papers)"
    when = f"{reader.get('send_at', '')} ({reader.get('timezone', '')})"
    text = (
        "Someone, hopefully you, asked for the paper digest at this address:\n\n"
        f"  Interests: {interests}\n  Every day at: {when}\n\n"
        f"To start it, open this link and press the button there (within {hours} hours):\n\n"
        f"{url}\n\n"
        "If it was not you, ignore this mail: nothing happens without the button, and no "
        "further mail comes.\n"
    )
    html = _HTML.format(
        interests=_escape(interests), when=_escape(when), url=_escape(url), hours=hours
    )
    rendered = RenderedDigest(subject="Confirm your paper digest", text=text, html=html)
    message_id = make_message_id(config.digest.from_email)
    data = build_wire(
        rendered,
        from_addr=config.digest.from_addr,
        to_addr=mail.address,
        message_id=message_id,
        date=now,
        unsubscribe_mailto="",
    )
    return message_id, data


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>Confirm your paper digest</title></head>
<body style="margin:0;padding:24px 16px;font:16px/1.5 Segoe UI,Roboto,Arial,sans-serif">
<div style="max-width:560px;margin:0 auto">
<p>Someone, hopefully you, asked for the paper digest at this address.</p>
<p><strong>Interests:</strong> {interests}<br><strong>Every day at:</strong> {when}</p>
<p><a href="{url}" style="display:inline-block;padding:12px 20px;border-radius:8px;
background:#2f5d8a;color:#ffffff;text-decoration:none;font-weight:600">Confirm my digest</a></p>
<p style="color:#5f6368;font-size:14px">The link opens a page with a button; the digest starts
when you press it (within {hours} hours). If it was not you, ignore this mail: nothing happens
without the button, and no further mail comes.</p>
</div></body></html>
"""


class ConfirmationSender:
    """Sends the confirmation mails the state holds, in a thread of its own."""

    def __init__(
        self,
        config: Config,
        secret: bytes,
        mailer: Mailer,
        *,
        clock: Callable[[], datetime],
        poll_seconds: float = POLL_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self.config = config
        self.secret = secret
        self.mailer = mailer
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self.worker = f"web-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._wake.set()  # mails left by an earlier process go out now
            self._thread = threading.Thread(target=self._loop, name="confirmations", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._wake.set()
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                asyncio.run(self.send_due())
            except DigestError as exc:  # the state or the mail server: tried again later
                log.warning("confirmation mails: %s", exc)
            except Exception:  # never let the thread die: the next wake tries again
                log.exception("confirmation mails: unexpected error")

    async def send_due(self) -> int:
        """One pass: claim the mails due, build the new ones, send them all. Returns how many
        got an outcome."""
        with Store.open(self.config.digest.state) as store:
            now = self.clock()
            mails = store.claim_signup_mails(self.worker, now=now, lease_seconds=LEASE_SECONDS)
            outgoing = [m for m in (self._built(store, mail, now) for mail in mails) if m]
            if not outgoing:
                return 0
            return await self._deliver(store, outgoing)

    def _built(self, store: Store, mail: SignupMail, now: datetime) -> OutgoingMail | None:
        message_id, data = mail.message_id, mail.message
        if mail.status == "queued" or data is None:
            message_id, data = confirmation_mail(self.config, self.secret, mail, now=now)
            if not store.store_signup_message(mail.id, self.worker, message_id, data):
                return None
        return OutgoingMail(
            key=(mail.address, f"confirm-{mail.id}"),
            recipient=mail.address,
            data=data,
            sender=self.config.digest.from_email,
            message_id=message_id,
            context=mail.id,
        )

    async def _deliver(self, store: Store, outgoing: list[OutgoingMail]) -> int:
        queue: asyncio.Queue[OutgoingMail | None] = asyncio.Queue()
        for mail in outgoing:
            queue.put_nowait(mail)
        queue.put_nowait(None)
        done: set[str] = set()

        def on_attempt(mail: OutgoingMail) -> None:
            store.begin_signup_send(str(mail.context), self.worker, now=self.clock())

        def on_outcome(outcome: SendOutcome) -> None:
            signup_id = str(outcome.mail.context)
            now = self.clock()
            retry = now + timedelta(seconds=self.retry_seconds)
            store.finish_signup_send(
                signup_id,
                outcome.status,
                now=now,
                code=outcome.code,
                detail=outcome.detail,
                unknown=outcome.unknown,
                retry_at=retry if outcome.status == "pending" else None,
            )
            done.add(signup_id)
            log.info("confirmation mail to %s: %s", outcome.mail.recipient, outcome.status)

        try:
            await self.mailer.deliver_stream(queue, on_attempt=on_attempt, on_outcome=on_outcome)
        finally:
            left = [str(m.context) for m in outgoing if str(m.context) not in done]
            if left:
                store.release_signup_mails(left, self.worker)
        return len(done)
