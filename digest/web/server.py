"""Serve the web side with uvicorn: alone (`digest serve`) or inside the daemon (`digest run`).

    serve_forever(config, ready=print)         # `digest serve`: until SIGINT / SIGTERM, exit 0
    await serve_web(config, stop=stop_event)   # the daemon: until it sets its stop event

Both make the app (the secret checked) and bind the socket before anything else, so a port in
use is one clear DigestError instead of uvicorn's sys.exit, and `ready` is told where it
listens only once that is true. uvicorn's access log is off (paths carry tokens);
digest.web.guard logs each request with the token cut out. Every connection has a deadline for
its whole request and idle ones never crowd out new ones (digest.web.protocol). Behind a
reverse proxy on the same machine, uvicorn takes the client address from X-Forwarded-For
(trusted from 127.0.0.1 only), which is what the rate limit counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator
from datetime import datetime

import uvicorn

from digest.clock import utc_now
from digest.config import Config, WebConfig, check_secrets
from digest.deliver import Mailer, make_mailer
from digest.errors import DigestError
from digest.web.app import create_app
from digest.web.guard import RateLimiter
from digest.web.protocol import ServerLimits, protocol_class


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
    limits: ServerLimits | None = None,
    handle_signals: bool = True,
    mailer: Mailer | None = None,
) -> uvicorn.Server:
    """A uvicorn.Server for the app. `handle_signals`: SIGINT/SIGTERM stop it gracefully (and
    the process then exits normally); False leaves them to the caller (the daemon), which
    stops it by setting `server.should_exit`. `mailer`: for sign-up confirmation mails and
    the profile page's "send me my link" (default: the one [delivery] makes; with [web]
    signup on, its password is checked now)."""
    limits = limits or ServerLimits()
    if mailer is None and config.web is not None and config.web.signup != "off":
        check_secrets(config)  # a missing SMTP password fails here, before anything listens
    mailer = mailer or make_mailer(config.delivery)
    app = create_app(
        config, clock=clock, limiter=limiter, max_in_flight=limits.max_in_flight, mailer=mailer
    )
    uv_config = uvicorn.Config(
        app,
        access_log=False,  # paths carry tokens: the Guard logs them redacted instead
        log_config=None,  # keep the program's own logging setup
        lifespan="on",  # the app's lifespan runs the sign-up confirmation mails' worker
        ws="none",
        http=protocol_class(limits),
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1,::1",
        server_header=False,
        timeout_keep_alive=max(1, round(limits.keep_alive_seconds)),
        limit_concurrency=None,  # open connections never count: the protocol and Guard cap
        h11_max_incomplete_event_size=16 * 1024,  # request line + headers
        timeout_graceful_shutdown=5,
    )
    return _StopOnSignal(uv_config) if handle_signals else _QuietServer(uv_config)


class _QuietServer(uvicorn.Server):
    """uvicorn.Server that leaves signal handling to its host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _StopOnSignal(uvicorn.Server):
    """uvicorn.Server that stops gracefully on SIGINT/SIGTERM and returns (uvicorn's own
    raises the signal again afterwards, so the process would die of it instead of exiting 0
    as `digest run` does)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


async def serve_web(
    config: Config,
    *,
    stop: asyncio.Event,
    clock: Callable[[], datetime] = utc_now,
    limiter: RateLimiter | None = None,
    limits: ServerLimits | None = None,
    sock: socket.socket | None = None,
    mailer: Mailer | None = None,
) -> None:
    """Serve until `stop` is set, then finish the requests in flight and return.

    For the daemon: `await serve_web(config, stop=stop)` beside its scheduler, on the same
    loop. Raises a DigestError before serving if [web] is missing, the secret is missing or
    too short, or the port is taken. `sock`: an already bound socket (tests bind port 0).
    """
    if config.web is None:
        create_app(config)  # raises the ConfigError that says [web] is missing
        return
    server = make_server(
        config, clock=clock, limiter=limiter, limits=limits, handle_signals=False, mailer=mailer
    )
    sock = sock or bind_socket(config.web)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopper.cancel()
        await task


def serve_forever(
    config: Config,
    *,
    clock: Callable[[], datetime] = utc_now,
    ready: Callable[[str], object] = lambda line: None,
) -> None:
    """`digest serve`: serve until SIGINT or SIGTERM (a graceful stop, then return).

    Makes the app and binds the socket first; only then `ready` gets one line saying what is
    served where (so nothing claims to serve before it can)."""
    if config.web is None:
        create_app(config)  # raises the ConfigError that says [web] is missing
        return
    server = make_server(config, clock=clock)
    sock = bind_socket(config.web)
    ready(serving_line(config.web))
    server.run(sockets=[sock])


def serving_line(web: WebConfig) -> str:
    """ "listening on http://127.0.0.1:8080 for the links to https://digest.example.org"."""
    here = f"http://{web.listen}"
    if web.base_url.rstrip("/") == here:
        return f"listening on {here} for the links in the digests (Ctrl-C stops)"
    return f"listening on {here} for the links to {web.base_url} (Ctrl-C stops)"
