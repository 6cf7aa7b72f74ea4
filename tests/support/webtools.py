"""Helpers for the web side's tests: a real uvicorn server in a thread, the world around it
(HF page on the local HTTP server, SMTP on aiosmtpd, a state file), and link finding."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from digest.config import Config, load_config
from digest.run import RunOptions, RunReport, send_now
from digest.web.guard import RateLimiter
from digest.web.server import serve_web
from tests.support.helpers import hf_items, hf_page, write_config
from tests.support.run import deps

SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
DAY1 = datetime(2026, 6, 12, 7, 0, tzinfo=UTC)


def bound_socket() -> socket.socket:
    """A socket bound to a free port on 127.0.0.1 (uvicorn listens on it)."""
    # IPPROTO_TCP, as digest.web.server.bind_socket: asyncio then sets TCP_NODELAY.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def running_server(
    config: Config,
    sock: socket.socket,
    *,
    limiter: RateLimiter | None = None,
    clock: Any = None,
    limits: Any = None,
    mailer: Any = None,
) -> Iterator[str]:
    """Serve `config` with real uvicorn (digest.web.server.serve_web) in a thread; yields the
    base URL. Stops it (through the stop event, as the daemon would) on exit. `limits`: a
    digest.web.protocol.ServerLimits."""
    started = threading.Event()
    box: dict[str, Any] = {}

    def main() -> None:
        async def go() -> None:
            stop = asyncio.Event()
            box["loop"], box["stop"] = asyncio.get_running_loop(), stop
            started.set()
            kwargs: dict[str, Any] = {"limiter": limiter, "sock": sock}
            if clock is not None:
                kwargs["clock"] = clock
            if limits is not None:
                kwargs["limits"] = limits
            if mailer is not None:  # sign-up confirmation mails
                kwargs["mailer"] = mailer
            await serve_web(config, stop=stop, **kwargs)

        try:
            asyncio.run(go())
        except BaseException as exc:  # shown by the test that started it
            box["error"] = exc
            started.set()

    thread = threading.Thread(target=main, name="uvicorn-test", daemon=True)
    thread.start()
    assert started.wait(10)
    host, port = sock.getsockname()[:2]
    base = f"http://{host}:{port}"
    with httpx.Client() as client:  # wait until it answers
        for _ in range(500):
            if "error" in box:
                raise box["error"]
            try:
                client.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                threading.Event().wait(0.01)
    try:
        yield base
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(15)
        assert not thread.is_alive(), "the web server did not stop"
        if "error" in box:
            raise box["error"]


def web_config(
    tmp_path: Path, sock: socket.socket, emails: tuple[str, ...] = ("ada@example.org",)
) -> Config:
    """A config with these readers and [web] on `sock` (delivery: the outbox; no source is
    fetched). DIGEST_WEB_SECRET must be set (SECRET)."""
    port = sock.getsockname()[1]
    path = write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=[{"email": email} for email in emails],
    )
    with path.open("a", encoding="utf-8") as f:
        f.write(f'[web]\nbase_url = "http://127.0.0.1:{port}"\nlisten = "127.0.0.1:{port}"\n')
    return load_config(path)


def links_with_prefix(text: str, prefix: str) -> list[str]:
    """Every URL in `text` (an HTML or text part) that starts with `prefix`, in order."""
    return [url for url in re.findall(r"https?://[^\s\"'<>]+", text) if url.startswith(prefix)]


def html_of(message: Any) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def text_of(message: Any) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


class WebWorld:
    """Two readers with the same interests, the HF page on the local HTTP server, SMTP on the
    local SMTP server, [web] pointing at a bound socket. `day(n, items)` runs send-now."""

    def __init__(self, tmp_path: Path, http_server: Any, smtp_server: Any) -> None:
        self.sock = bound_socket()
        self.port = self.sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.items = hf_items()
        self.http_server = http_server
        self.smtp_server = smtp_server
        self.tmp_path = tmp_path
        self.config = self.config_for(["ada@example.org", "bob@example.org"])
        self.mailer = smtp_server.mailer(retries=2)

    def config_for(self, emails: list[str], name: str = "digest.toml") -> Config:
        """The world's config with these readers (written to tmp_path/name): the same state,
        sources, mail server and [web]."""
        path = write_config(
            self.tmp_path / name,
            sources=[{"type": "hf-papers", "url": self.http_server.url("/papers")}],
            subscribers=[
                {"email": e, "name": e.split("@")[0].title(), "keywords": KEYWORDS, "max_papers": 8}
                for e in emails
            ],
            delivery={"method": "smtp", "host": "127.0.0.1", "port": 25, "security": "none"},
        )
        with path.open("a", encoding="utf-8") as f:
            f.write(f'[web]\nbase_url = "{self.base}"\nlisten = "127.0.0.1:{self.port}"\n')
        return load_config(path)

    def serve_page(self, items: list[dict[str, Any]]) -> None:
        body = hf_page(items, "2026-06-12")
        self.http_server.serve("/papers", body, content_type="text/html; charset=utf-8")

    def day(
        self, n: int, items: list[dict[str, Any]], config: Config | None = None, **options: Any
    ) -> RunReport:
        """send-now on day n (of self.config, or `config`)."""
        self.serve_page(items)
        now = DAY1 + timedelta(days=n - 1)
        return send_now(
            config or self.config,
            RunOptions(**options, fetch_backoff=0),
            deps(now, mailer=self.mailer),
        )

    def mails_to(self, email: str) -> list[Any]:
        return [m.message for m in self.smtp_server.messages if email in m.rcpt_tos]


KEYWORDS = {"agent": 2, "reasoning": 1, "language model": 2, "video": 1, "diffusion": 1}
