"""A real local HTTP server (127.0.0.1, a thread) serving registered bytes and scripted faults.

Use the ``http_server`` fixture (shared through tests/conftest.py)::

    def test_x(http_server):
        http_server.serve("/feed.xml", b"<rss>...</rss>", content_type="application/rss+xml",
                          etag='"v1"', last_modified="Wed, 29 Apr 2026 06:00:00 GMT")
        http_server.serve_file("/papers", FIXTURES / "hf-pages/x.html")      # type from suffix
        http_server.script("/flaky", [Reply(503, headers={"Retry-After": "0"}), Reply(200, body)])
        http_server.serve("/slow", body, delay=2.0)         # waits 2 s before answering
        http_server.serve("/cut", body, truncate=100)       # announces len(body), sends 100 bytes
        http_server.redirect("/old", "/feed.xml")
        url = http_server.url("/feed.xml")                  # http://127.0.0.1:PORT/feed.xml
        dead = http_server.refused_url("/x")                # a port where nothing listens
        ...
        assert http_server.requests[-1].headers["if-none-match"] == '"v1"'
        assert http_server.count("/flaky") == 2

Every path answers with its Reply: ``serve`` registers one Reply for every request,
``script`` a sequence consumed one per request (the last one repeats). Unknown paths get a 404
HTML page. A Reply with ``etag``/``last_modified`` sends those headers and answers a matching
If-None-Match / If-Modified-Since with 304 and no body. The query string is not part of the
path used for matching; it is recorded in ``requests`` (RecordedRequest.query).
"""

from __future__ import annotations

import email.utils
import mimetypes
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

__all__ = ["HTTPTestServer", "RecordedRequest", "Reply", "http_server"]


@dataclass
class Reply:
    """One scripted answer.

    status: the HTTP status code. body: bytes (str is UTF-8 encoded). headers: extra headers
    (e.g. {"Retry-After": "1"}, {"Location": ...}). content_type: the Content-Type header
    (default: text/html for status >= 400 bodies, else application/octet-stream).
    etag / last_modified: validators sent with a 2xx answer; a request whose If-None-Match
    (or, without it, If-Modified-Since) matches gets 304 Not Modified instead.
    delay: seconds to wait before answering (to trip a client timeout).
    truncate: send only this many body bytes, although Content-Length announces the full
    body, then close the connection (a download cut short).
    """

    status: int = 200
    body: bytes | str = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    truncate: int | None = None

    @property
    def body_bytes(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


@dataclass
class RecordedRequest:
    """A request the server received. `headers` has lower-cased names."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


NOT_FOUND = Reply(
    404,
    b"<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
    b"<body><h1>Not Found</h1></body></html>",
    content_type="text/html; charset=utf-8",
)


class HTTPTestServer:
    """The object the ``http_server`` fixture yields. Thread-safe."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._routes: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self.host: str = str(self._server.server_address[0])
        self.port: int = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- registering answers ---------------------------------------------------------------

    def serve(
        self,
        path: str,
        body: bytes | str = b"",
        *,
        status: int = 200,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        delay: float = 0.0,
        truncate: int | None = None,
    ) -> str:
        """Answer every request for `path` the same way. Returns the path's URL."""
        reply = Reply(
            status,
            body,
            dict(headers or {}),
            content_type,
            etag,
            last_modified,
            delay,
            truncate,
        )
        return self.script(path, [reply])

    def serve_file(
        self, path: str, file: str | Path, *, content_type: str | None = None, **options: object
    ) -> str:
        """Serve a file's bytes; the Content-Type is guessed from its suffix unless given.
        `options` are those of serve() (etag=, delay=, ...). Returns the path's URL."""
        file = Path(file)
        if content_type is None:
            content_type = _guess_type(file)
        return self.serve(path, file.read_bytes(), content_type=content_type, **options)  # type: ignore[arg-type]

    def script(self, path: str, replies: Sequence[Reply]) -> str:
        """Answer successive requests for `path` with `replies` in order; the last repeats.
        Returns the path's URL."""
        if not replies:
            raise ValueError("script() needs at least one Reply")
        with self._lock:
            self._routes[_route(path)] = list(replies)
        return self.url(path)

    def redirect(self, path: str, to: str, *, status: int = 302) -> str:
        """Redirect `path` to `to` (a path on this server or a full URL)."""
        return self.script(path, [Reply(status, headers={"Location": to})])

    # --- addresses and records ---------------------------------------------------------------

    def url(self, path: str = "/") -> str:
        if not path.startswith("/"):
            path = "/" + path
        return f"http://{self.host}:{self.port}{path}"

    @staticmethod
    def refused_url(path: str = "/") -> str:
        """A URL on 127.0.0.1 at a port nobody listens on: connecting is refused."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        return f"http://127.0.0.1:{port}{path if path.startswith('/') else '/' + path}"

    def requests_for(self, path: str) -> list[RecordedRequest]:
        route = _route(path)
        with self._lock:
            return [r for r in self.requests if r.path == route]

    def count(self, path: str) -> int:
        """How many requests `path` received."""
        return len(self.requests_for(path))

    # --- internals -----------------------------------------------------------------------------

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            replies = self._routes.get(path)
            if not replies:
                return NOT_FOUND
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a delay
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Connection errors are part of the tests (timeouts, cut bodies): stay quiet."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


def _route(path: str) -> str:
    return urlsplit(path if path.startswith("/") else "/" + path).path


def _guess_type(file: Path) -> str:
    suffix = file.suffix.lower()
    if suffix == ".xml":
        return "application/xml; charset=utf-8"
    if suffix == ".json":
        return "application/json; charset=utf-8"
    if suffix in (".html", ".htm"):
        return "text/html; charset=utf-8"
    return mimetypes.guess_type(file.name)[0] or "application/octet-stream"


def _not_modified(reply: Reply, headers: Mapping[str, str]) -> bool:
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if reply.etag is None:
            return False
        tags = [t.strip() for t in if_none_match.split(",")]
        bare = reply.etag.removeprefix("W/")
        return "*" in tags or any(t.removeprefix("W/") == bare for t in tags)
    if_modified_since = headers.get("if-modified-since")
    if if_modified_since is not None and reply.last_modified is not None:
        try:
            since = email.utils.parsedate_to_datetime(if_modified_since)
            modified = email.utils.parsedate_to_datetime(reply.last_modified)
        except (TypeError, ValueError, IndexError):
            return if_modified_since == reply.last_modified
        return modified <= since
    return False


def _make_handler(server: HTTPTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "digest-test-server/1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._answer(send_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            server._record(RecordedRequest(self.command, parts.path, parts.query, headers))
            reply = server._next_reply(parts.path)
            if reply.delay and server._stopping.wait(reply.delay):
                self.close_connection = True
                return
            try:
                self._send(reply, headers, send_body=send_body)
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                self.close_connection = True  # the client gave up (e.g. after its timeout)

        def _send(self, reply: Reply, headers: Mapping[str, str], *, send_body: bool) -> None:
            validators = {}
            if reply.etag is not None:
                validators["ETag"] = reply.etag
            if reply.last_modified is not None:
                validators["Last-Modified"] = reply.last_modified
            if 200 <= reply.status < 300 and _not_modified(reply, headers):
                self.send_response(304)
                for name, value in validators.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = reply.body_bytes
            self.send_response(reply.status)
            content_type = reply.content_type
            if content_type is None and body:
                content_type = (
                    "text/html; charset=utf-8"
                    if reply.status >= 400
                    else "application/octet-stream"
                )
            if content_type:
                self.send_header("Content-Type", content_type)
            if 200 <= reply.status < 300:
                for name, value in validators.items():
                    self.send_header(name, value)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if reply.truncate is not None:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if not send_body:
                return
            if reply.truncate is not None:
                self.wfile.write(body[: reply.truncate])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # quiet: tests read `requests` instead

    return Handler


@pytest.fixture
def http_server() -> Iterator[HTTPTestServer]:
    """A started HTTPTestServer on 127.0.0.1 at a free port; stopped after the test."""
    server = HTTPTestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
