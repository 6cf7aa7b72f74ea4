"""uvicorn's h11 protocol with a deadline for every request and a cap on open connections.

uvicorn times a connection out only after a response (keep-alive), and any byte restarts that
timer; a connection that sends nothing, or trickles its headers, stays open for ever, and with
`limit_concurrency` every open connection counts: 210 silent sockets had every request
answered 503 for as long as they stayed. Here:

- from the moment a connection opens, or its previous response ends, the whole next request
  (request line, headers and body) must arrive within `request_seconds`; otherwise the
  connection is closed (with a 408 when part of a request had come; silently when nothing had,
  as keep-alive does);
- at most `max_connections` are open: one more closes the connection that has waited longest
  for its request (an idle keep-alive, a slow sender), never one whose request is being
  answered. Open connections therefore never make anyone wait or get a 503; the requests
  answered at once are capped in digest.web.guard instead.

    uvicorn.Config(app, http=protocol_class(ServerLimits(...)), limit_concurrency=None, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("digest.web.access")

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 16\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"Request Timeout\n"
)


@dataclass(frozen=True)
class ServerLimits:
    request_seconds: float = 10.0  # for a whole request to arrive
    keep_alive_seconds: float = 5.0  # an idle connection after a response
    max_connections: int = 500  # open at once (a file descriptor each)
    max_in_flight: int = 100  # requests answered at once (503 beyond)


class DeadlineProtocol(H11Protocol):
    """H11Protocol with the request deadline and the connection cap of `limits`."""

    limits: ClassVar[ServerLimits] = ServerLimits()

    _deadline: asyncio.TimerHandle | None = None
    _waiting_since = 0.0  # loop time the connection began waiting for its next request
    _partial = False  # part of the next request has come

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_waiting()
        self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._answering():
            self._partial = True
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request
        if not self.transport.is_closing():
            self._disarm()
            self._start_waiting()

    # --- the deadline -----------------------------------------------------------------------

    def _answering(self) -> bool:
        """A request arrived whole and the app is answering it (no deadline then)."""
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete and not cycle.more_body

    def _start_waiting(self) -> None:
        self._waiting_since = self.loop.time()
        self._partial = False
        self._follow()

    def _follow(self) -> None:
        """Armed while waiting for (the rest of) a request, off while it is being answered."""
        if self._answering():
            self._disarm()
        elif self._deadline is None and not self.transport.is_closing():
            self._deadline = self.loop.call_at(
                self._waiting_since + self.limits.request_seconds, self._timed_out
            )

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # Its body is late: the app sees the client gone (and answers nobody).
            self._close()
            return
        if self._partial:
            client = self.client[0] if self.client else "-"
            log.info("%s - - 408 (no whole request in %g s)", client, self.limits.request_seconds)
            self.transport.write(_TIMEOUT_RESPONSE)
        self._close()

    def _close(self) -> None:
        with contextlib.suppress(h11.LocalProtocolError):  # in the middle of a message
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()

    # --- the connection cap -----------------------------------------------------------------

    def _make_room(self) -> None:
        if len(self.connections) <= self.limits.max_connections:
            return
        waiting = [
            c
            for c in self.connections
            if isinstance(c, DeadlineProtocol)
            and c is not self
            and not c._answering()
            and not c.transport.is_closing()
        ]
        if waiting:
            min(waiting, key=lambda c: c._waiting_since)._close()


def protocol_class(limits: ServerLimits) -> type[DeadlineProtocol]:
    """A DeadlineProtocol class with these limits (uvicorn makes one instance per connection)."""
    return type("DeadlineProtocol", (DeadlineProtocol,), {"limits": limits})
