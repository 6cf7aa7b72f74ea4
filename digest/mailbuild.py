"""Build a digest's wire bytes, in this process or in a small pool of worker processes.

    builder = MailBuilder.for_run(subscriber_count)
    future = builder.submit(content, headers)   # BuiltMail (wire bytes, packed), later
    builder.close()

Rendering is the CPU-heavy part of a run. With many subscribers it runs in worker processes,
so composing overlaps the SMTP conversation on the event loop and uses the other core; with a
few it runs inline (starting a process would cost more than it saves).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digest.child import die_with_parent, spawn_context
from digest.heap import settle
from digest.message import build_wire
from digest.models import DigestContent
from digest.render import render_digest, renderer_for
from digest.store.sendlog import pack_message

POOL_MIN_SUBSCRIBERS = 64  # below this many digests a run renders inline


@dataclass(frozen=True)
class MailHeaders:
    """What a message needs besides its content."""

    from_addr: str
    to_addr: str
    to_name: str
    message_id: str
    date: datetime
    unsubscribe_mailto: str = ""
    unsubscribe_url: str = ""
    templates_dir: Path | None = None  # [digest] templates: overrides of the shipped ones


@dataclass(frozen=True)
class BuiltMail:
    wire: bytes  # the message as it goes on the wire
    packed: bytes  # the same bytes as the send log keeps them (store.pack_message)


def build_mail(content: DigestContent, headers: MailHeaders) -> bytes:
    """The whole message as it goes on the wire (CRLF line endings), built once. Each process
    keeps one Renderer per templates folder, so templates are loaded and inlined once."""
    return build_wire(
        render_digest(content, headers.templates_dir),
        from_addr=headers.from_addr,
        to_addr=headers.to_addr,
        to_name=headers.to_name,
        message_id=headers.message_id,
        date=headers.date,
        unsubscribe_mailto=headers.unsubscribe_mailto,
        unsubscribe_url=headers.unsubscribe_url,
    )


def build_and_pack(content: DigestContent, headers: MailHeaders) -> BuiltMail:
    """build_mail, and the bytes compressed for the send log: in the worker, which has a core
    of its own, not in the process that sends and records."""
    wire = build_mail(content, headers)
    return BuiltMail(wire, pack_message(wire))


def _start_worker() -> None:
    die_with_parent()
    settle()


def _load_templates(templates_dir: Path | None) -> None:
    """A worker's Renderer, made ahead of its first digest (templates loaded, CSS inlined)."""
    with contextlib.suppress(Exception):  # the first real build reports it, per subscriber
        renderer_for(templates_dir)
    settle()  # the templates and the imports live as long as the worker


class MailBuilder:
    """Turns (content, headers) into wire bytes (and their packed form): inline, or in
    worker processes."""

    def __init__(self, workers: int = 0) -> None:
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.workers = workers
        if workers > 0:
            self.pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=workers, mp_context=spawn_context(), initializer=_start_worker
            )

    @classmethod
    def for_run(cls, digests: int) -> MailBuilder:
        cores = os.cpu_count() or 1
        if digests < POOL_MIN_SUBSCRIBERS or cores < 2:
            return cls(0)
        # The event loop (ranking, SMTP, the state) keeps one core busy; the rest render.
        return cls(max(1, min(cores - 1, 3)))

    def start(self, templates_dir: Path | None) -> None:
        """Start the workers now and have them load the templates, so that happens while the
        run fetches and ranks, not before its first mail."""
        if self.pool is not None:
            for _ in range(self.workers):
                self.pool.submit(_load_templates, templates_dir)

    def submit(self, content: DigestContent, headers: MailHeaders) -> asyncio.Future[BuiltMail]:
        loop = asyncio.get_running_loop()
        if self.pool is not None:
            return loop.run_in_executor(self.pool, build_and_pack, content, headers)
        future: asyncio.Future[BuiltMail] = loop.create_future()
        try:
            future.set_result(build_and_pack(content, headers))
        except Exception as exc:  # reported per subscriber, like a pool worker's error
            future.set_exception(exc)
        return future

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
