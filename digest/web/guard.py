"""What every response goes through: security headers, a rate limit per client, a cap on the
requests answered at once, an access log that never holds a token.

`Guard` is plain ASGI around the whole Starlette app, so even Starlette's own 404/405/500
answers get the headers.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.responses import Response

log = logging.getLogger("digest.web.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    ("content-security-policy", CSP),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "interest-cohort=(), camera=(), microphone=(), geolocation=()"),
    ("cache-control", "no-store"),
    ("x-robots-tag", "noindex, nofollow"),
)
# The path segments the access log keeps as they are: short lowercase words (the routes:
# "u", "healthz", "resubscribe", "robots.txt"). Any other segment might be a token, whole or in
# part (a token is mixed-case base64), and is logged as "…"; so is whatever follows a
# one-letter route ("/u/…"), where a token belongs.
_PLAIN_SEGMENT = re.compile(r"^[a-z0-9._-]{0,11}$")
MAX_LOGGED_SEGMENTS = 6


def redact(path: str) -> str:
    """The path as the access log shows it: "/u/…", "/u/…/resubscribe", "/healthz"."""
    segments = path.split("/")
    shown: list[str] = []
    for i, segment in enumerate(segments[: MAX_LOGGED_SEGMENTS + 1]):
        after_route = i == 2 and len(segments[1]) == 1 and segment != ""
        token_like = after_route or not _PLAIN_SEGMENT.match(segment)
        shown.append("…" if token_like else segment)
    if len(segments) > MAX_LOGGED_SEGMENTS + 1:
        shown.append("…")
    return "/".join(shown)


class RateLimiter:
    """A token bucket per client address: `burst` requests at once, then `per_second`.

    Memory is bounded: at most `max_clients` buckets, the least recently seen dropped first
    (a dropped client just starts again with a full bucket).
    """

    def __init__(
        self,
        *,
        burst: int = 60,
        per_second: float = 1.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.per_second = per_second
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """0.0 if this request may go on (and take a token), else seconds until it may."""
        now = self.clock()
        tokens, last = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.per_second
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


class Guard:
    """ASGI middleware: rate limit (not /healthz), a cap on the requests answered at once,
    security headers, one access-log line per request (the token cut out)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        too_many: Callable[[int], Response],
        busy: Callable[[int], Response],
        max_in_flight: int = 100,
        exempt: tuple[str, ...] = ("/healthz",),
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.too_many = too_many
        self.busy = busy
        self.max_in_flight = max_in_flight
        self.exempt = exempt
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        started = time.perf_counter()

        async def send_guarded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
            await send(message)

        path = str(scope.get("path", ""))
        client = scope.get("client")
        address = str(client[0]) if client else "-"
        self.in_flight += 1
        try:
            wait = 0.0 if path in self.exempt else self.limiter.take(address)
            if wait > 0:
                response = self.too_many(max(1, math.ceil(wait)))
                await response(scope, receive, send_guarded)
            elif self.in_flight > self.max_in_flight:
                await self.busy(1)(scope, receive, send_guarded)
            else:
                await self.app(scope, receive, send_guarded)
        finally:
            self.in_flight -= 1
            took_ms = (time.perf_counter() - started) * 1000
            log.info(
                "%s %s %s %s %.0f ms",
                address,
                scope.get("method", "-"),
                redact(path),
                status or "-",
                took_ms,
            )
