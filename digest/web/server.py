"""Serve the web side with uvicorn: alone (`digest serve`) or inside the daemon (`digest run`).

    serve_forever(config)                      # `digest serve`: until SIGINT / SIGTERM
    await serve_web(config, stop=stop_event)   # the daemon: until it sets its stop event

Both bind the socket themselves first, so a port in use is one clear DigestError instead of
uvicorn's sys.exit. uvicorn's access log is off (paths carry tokens); digest.web.guard logs
each request with the token cut out. Behind a reverse proxy on the same machine, uvicorn
takes the client address from X-Forwarded-For (trusted from 127.0.0.1 only), which is what
the rate limit counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from datetime import datetime

import uvicorn

from digest.clock import utc_now
from digest.config import Config, WebConfig
from digest.errors import DigestError
from digest.web.app import create_app
from digest.web.guard import RateLimiter


class WebServerError(DigestError):
    """The web side cannot listen where [web] listen says."""


def bind_socket(web: WebConfig) -> socket.socket:
    """A listening-ready socket bound to [web] listen, or a WebServerError saying why not."""
    host, port = web.listen_host, web.listen_port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = None
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        # proto must be IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY on accepted sockets only
        # then, and without it every keep-alive response waits ~40 ms (Nagle + delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(infos[0][4])
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise WebServerError(
            f"cannot listen on {web.listen}: {exc.strerror or exc}",
            fix="stop what uses that port, or change [web] listen",
        ) from None
    sock.set_inheritable(True)
    return sock


def make_server(
    config: Config,
    *,
    clock: Callable[[], datetime] = utc_now,
    limiter: RateLimiter | None = None,
    handle_signals: bool = True,
) -> uvicorn.Server:
    """A uvicorn.Server for the app; `handle_signals=False` leaves SIGINT/SIGTERM to the
    caller (the daemon), which stops it by setting `server.should_exit`."""
    app = create_app(config, clock=clock, limiter=limiter)
    uv_config = uvicorn.Config(
        app,
        access_log=False,  # paths carry tokens: the Guard logs them redacted instead
        log_config=None,  # keep the program's own logging setup
        lifespan="off",
        ws="none",
        http="h11",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1,::1",
        server_header=False,
        timeout_keep_alive=5,
        limit_concurrency=200,
        h11_max_incomplete_event_size=16 * 1024,  # request line + headers
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(uv_config) if handle_signals else _QuietServer(uv_config)


class _QuietServer(uvicorn.Server):
    """uvicorn.Server that leaves signal handling to its host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_web(
    config: Config,
    *,
    stop: asyncio.Event,
    clock: Callable[[], datetime] = utc_now,
    limiter: RateLimiter | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve until `stop` is set, then finish the requests in flight and return.

    For the daemon: `await serve_web(config, stop=stop)` beside its scheduler, on the same
    loop. Raises a DigestError before serving if [web] is missing, the secret is missing or
    too short, or the port is taken. `sock`: an already bound socket (tests bind port 0).
    """
    if config.web is None:
        create_app(config)  # raises the ConfigError that says [web] is missing
        return
    server = make_server(config, clock=clock, limiter=limiter, handle_signals=False)
    sock = sock or bind_socket(config.web)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopper.cancel()
        await task


def serve_forever(config: Config, *, clock: Callable[[], datetime] = utc_now) -> None:
    """`digest serve`: serve until SIGINT or SIGTERM (uvicorn handles both gracefully)."""
    if config.web is None:
        create_app(config)  # raises the ConfigError that says [web] is missing
        return
    server = make_server(config, clock=clock)
    sock = bind_socket(config.web)
    server.run(sockets=[sock])
