"""The web side under hostile or unlucky conditions, against a real uvicorn server on 127.0.0.1
with real sockets: silent and slow connections, a write-locked state, malformed requests."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime

import httpx
import pytest

from digest.models import Paper
from digest.store import Store
from digest.web.guard import RateLimiter
from digest.web.links import digest_links
from tests.support.webtools import SECRET, bound_socket, running_server, web_config

PAPER = "2606.00467"
NOW = datetime(2026, 6, 12, 9, 30, tzinfo=UTC)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A config for Ada with [web], the state holding one paper, and Ada's links to it."""
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    sock = bound_socket()
    config = web_config(tmp_path, sock)
    with Store.open(config.digest.state) as store:
        store.record_papers([Paper(id=PAPER, title="Graph agents that reason")], now=NOW)
    assert config.web is not None
    links = digest_links(config.web, SECRET.encode(), "ada@example.org", "2026-06-12", [PAPER])
    yield config, sock, links.papers[PAPER].more
    sock.close()


def no_rate_limit() -> RateLimiter:
    return RateLimiter(burst=10**6, per_second=10**6)


@contextmanager
def connections(address: tuple[str, int], count: int) -> Iterator[list[socket.socket]]:
    """`count` open TCP connections to `address` that send nothing (yet)."""
    with ExitStack() as stack:
        socks = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection(address, timeout=10))
            socks.append(sock)
        yield socks


def read_until_closed(sock: socket.socket, *, bound: float = 20.0) -> bytes:
    """Everything the server sends until it closes the connection (within `bound` seconds)."""
    sock.settimeout(bound)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def trickle(sock: socket.socket, data: bytes, every: float, stop: threading.Event) -> None:
    """Send `data` a byte at a time, one every `every` seconds, until stopped or closed."""
    for byte in data:
        if stop.wait(every):
            return
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return


def test_silent_and_trickling_connections_do_not_turn_requests_away(site):
    """210 connections that send nothing and 20 that trickle their headers: every request
    is still answered (uvicorn's limit_concurrency counted them all and answered 503)."""
    config, sock, more = site
    address = sock.getsockname()
    stop = threading.Event()
    with (
        running_server(config, sock, limiter=no_rate_limit()) as base,
        connections(address, 210) as silent,
        connections(address, 20) as slow,
    ):
        threads = [
            threading.Thread(
                target=trickle, args=(s, b"GET /healthz HTTP/1.1\r\nX: " * 9, 0.2, stop)
            )
            for s in slow
        ]
        for thread in threads:
            thread.start()
        try:
            with httpx.Client(timeout=10) as client:
                for _ in range(5):
                    assert client.get(base + "/healthz").status_code == 200
                    page = client.get(more)
                    assert page.status_code == 200 and "Graph agents that reason" in page.text
                    assert client.post(more, data={"confirm": "yes"}).status_code == 200
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
        assert len(silent) == 210


def test_every_connection_has_a_deadline_for_its_whole_request(site, caplog):
    """Nothing sent: closed without a word. Headers trickled a byte at a time (each byte
    would restart uvicorn's keep-alive timer): 408, closed. A body that stops coming: closed,
    nothing recorded. Idle after a response: closed."""
    from digest.web.protocol import ServerLimits

    config, sock, more = site
    address = sock.getsockname()
    path = more.split(str(address[1]), 1)[1].encode()
    limits = ServerLimits(request_seconds=1.0, keep_alive_seconds=1.0)
    stop = threading.Event()
    with (
        caplog.at_level(logging.INFO),
        running_server(config, sock, limiter=no_rate_limit(), limits=limits),
        connections(address, 4) as (silent, slow, late_body, kept_alive),
    ):
        slow_headers = b"GET /healthz HTTP/1.1\r\n" + b"X-Slow: " + b"a" * 200
        trickler = threading.Thread(target=trickle, args=(slow, slow_headers, 0.1, stop))
        trickler.start()
        late_body.sendall(
            b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nconf"
        )
        kept_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            assert read_until_closed(silent) == b""
            assert read_until_closed(slow).startswith(b"HTTP/1.1 408 ")
            assert read_until_closed(late_body) == b""
            answered = read_until_closed(kept_alive)
            assert answered.startswith(b"HTTP/1.1 200 ") and answered.endswith(b"ok\n")
        finally:
            stop.set()
            trickler.join(10)
    with Store.open(config.digest.state) as store:
        assert store.feedback("ada@example.org") == {}
    assert "408 (no whole request in 1 s)" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_idle_connections_make_room_for_new_ones(site):
    """Past max_connections, a new connection closes the one that has waited longest for its
    request; the new one is answered."""
    from digest.web.protocol import ServerLimits

    config, sock, _ = site
    address = sock.getsockname()
    limits = ServerLimits(max_connections=30)
    with (
        running_server(config, sock, limiter=no_rate_limit(), limits=limits) as base,
        connections(address, 30) as first,
        connections(address, 10) as later,
    ):
        with httpx.Client(timeout=10) as client:
            assert client.get(base + "/healthz").status_code == 200
        oldest = first[:10]
        for conn in oldest:
            assert read_until_closed(conn) == b""
        # The newest are still open and served.
        later[-1].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_until_closed(later[-1]).endswith(b"ok\n")


def test_a_write_locked_state_answers_503_within_seconds_and_loses_nothing(site):
    """Another process holds the state's write lock: feedback POSTs get 503 with Retry-After
    (never 500, never 200) and record nothing; pages are still answered meanwhile, and more
    waiting POSTs than there are threads do not starve them. Once the lock is gone, the same
    POST is recorded."""
    config, sock, more = site

    async def burst(client: httpx.AsyncClient) -> tuple[list[httpx.Response], list[int]]:
        posts = [
            asyncio.ensure_future(client.post(more, data={"confirm": "yes"})) for _ in range(60)
        ]
        pages = []
        while not all(post.done() for post in posts) and len(pages) < 20:
            page = await client.get(more)  # while the POSTs wait for the lock
            assert "More papers like this?" in page.text
            pages.append(page.status_code)
        return await asyncio.gather(*posts), pages

    async def go() -> tuple[list[httpx.Response], list[int]]:
        # Bounded below SQLite's 30 s wait: a POST that waited for it fails the test here.
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(timeout=20, limits=limits) as client:
            return await burst(client)

    with running_server(config, sock, limiter=no_rate_limit()):
        holder = Store.open(config.digest.state)
        try:
            with holder.db.transaction():  # the write lock, until the block ends
                posts, pages = asyncio.run(go())
        finally:
            holder.close()
        assert {r.status_code for r in posts} == {503}
        for response in posts:
            assert int(response.headers["retry-after"]) >= 1
            assert "nothing was changed" in response.text
        assert pages and set(pages) == {200}
        with Store.open(config.digest.state) as store:
            assert store.feedback("ada@example.org") == {}
        done = httpx.post(more, data={"confirm": "yes"}, timeout=20)
        assert done.status_code == 200 and "Thanks, noted" in done.text
    with Store.open(config.digest.state) as store:
        assert store.feedback("ada@example.org") == {PAPER: "like"}


def test_a_malformed_chunked_body_is_one_warning_line_not_a_traceback(site, caplog):
    config, sock, more = site
    address = sock.getsockname()
    path = more.split(str(address[1]), 1)[1].encode()
    with (
        caplog.at_level(logging.INFO),
        running_server(config, sock, limiter=no_rate_limit()),
        connections(address, 3) as conns,
    ):
        for conn in conns:
            conn.sendall(
                b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n\r\nZZ\r\nabc\r\n"
            )
            assert read_until_closed(conn).startswith(b"HTTP/1.1 400 ")
    with Store.open(config.digest.state) as store:
        assert store.feedback("ada@example.org") == {}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "Traceback" not in caplog.text and "ClientDisconnect" not in caplog.text
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all("\n" not in r.getMessage() for r in warnings)


def test_a_trailing_slash_is_a_404_page_never_a_redirect(site):
    config, sock, more = site
    address = sock.getsockname()
    with running_server(config, sock) as base, httpx.Client(timeout=10) as client:
        for url in (base + "/healthz/", more + "/", base + "/robots.txt/"):
            response = client.get(url, headers={"Host": "evil.example"})
            assert response.status_code == 404, url
            assert "location" not in response.headers
            assert "Nothing here" in response.text or "This link does not work" in response.text
        with connections(address, 1) as (raw,):
            raw.sendall(
                b"GET /healthz/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
            )
            answer = read_until_closed(raw)
        assert answer.startswith(b"HTTP/1.1 404 ") and b"evil.example" not in answer
