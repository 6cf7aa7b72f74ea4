"""The reader's side as an ASGI app (Starlette): create_app(config, clock=...).

    GET  /u/{token}              unsubscribe: a confirm page (or "you're unsubscribed")
    POST /u/{token}              RFC 8058 one-click: unsubscribes at once
    POST /u/{token}/resubscribe  undo it
    GET  /f/{token}              "more / less like this": a confirm page
    POST /f/{token}              records the like or dislike
    GET  /v/{token}              the digest as it was mailed (its HTML part)
    GET  /healthz                "ok"

Link scanners (Outlook Safe Links, mail security proxies) follow every GET in a mail, so no
GET changes anything; only the POSTs of our own buttons (or the mail provider's one-click)
do. There are no cookies and no sessions: the signed token in the path is the whole
authority, so a cross-site form cannot act without it (CSRF needs nothing more).
"""

from __future__ import annotations

import email.policy
import logging
import re
from collections.abc import Callable
from datetime import date, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest.clock import utc_now
from digest.config import Config
from digest.ids import is_arxiv_id
from digest.store import Store
from digest.web import pages
from digest.web.forms import FormError, read_form
from digest.web.guard import Guard, RateLimiter
from digest.web.tokens import Claim, InvalidToken, SubscriberIndex, read_token, require_secret

log = logging.getLogger("digest.web")

T = TypeVar("T")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LINK_ID = re.compile(r"^https?://[^\s\x00-\x1f\x7f]+$")


class _Refused(Exception):
    """Answer with this response instead (a friendly 4xx page)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def create_app(
    config: Config,
    *,
    clock: Callable[[], datetime] = utc_now,
    limiter: RateLimiter | None = None,
) -> Guard:
    """The ASGI app for `config` (which must have [web]; the secret is read from the
    environment now, so a missing one fails here, before anything listens)."""
    if config.web is None:
        from digest.errors import ConfigError

        raise ConfigError(
            f"{config.path.name}: no [web] table",
            fix='add [web] with base_url = "https://..." (see config.example.toml)',
        )
    reader = _ReaderSide(config, require_secret(config.web), clock)
    routes = [
        Route("/healthz", reader.healthz, methods=["GET"]),
        Route("/", reader.index, methods=["GET"]),
        Route("/robots.txt", reader.robots, methods=["GET"]),
        Route("/u/{token}", reader.unsubscribe, methods=["GET", "POST"]),
        Route("/u/{token}/resubscribe", reader.resubscribe, methods=["POST"]),
        Route("/f/{token}", reader.feedback, methods=["GET", "POST"]),
        Route("/v/{token}", reader.view, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _http_exception,
            _Refused: _refused,
            Exception: _server_error,
        },
    )
    return Guard(app, limiter=limiter or RateLimiter(), too_many=pages.too_many)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return pages.for_status(exc.status_code, headers=exc.headers)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Refused)
    return exc.response


async def _server_error(request: Request, exc: Exception) -> Response:
    return pages.for_status(500)


class _ReaderSide:
    """The handlers, over one config and secret. Each request opens the state on its own
    (in a worker thread): requests are rare and short, and nothing is shared across threads."""

    def __init__(self, config: Config, secret: bytes, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.secret = secret
        self.clock = clock
        self.known = SubscriberIndex(secret, (s.email for s in config.subscribers))

    # --- small pages ------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def index(self, request: Request) -> Response:
        return pages.message(
            200,
            "Paper digest",
            "This is the reader's side of a paper digest: the links in your digest emails "
            "lead here, to unsubscribe, to say which papers you want more or less of, and to "
            "read a digest in the browser.",
        )

    async def robots(self, request: Request) -> Response:
        return PlainTextResponse("User-agent: *\nDisallow: /\n")

    # --- unsubscribe ------------------------------------------------------------------------

    async def unsubscribe(self, request: Request) -> Response:
        token, claim = self._claim(request, ("unsubscribe",))
        who = pages.mask_email(claim.email)
        resubscribe_action = f"{token}/resubscribe"
        if request.method == "POST":
            form = await _form(request)
            if form.get("List-Unsubscribe") != "One-Click":
                raise _Refused(pages.for_status(400))
            changed = await self._state(self._set_unsubscribed, claim.email, True)
            if changed:
                log.info("web: %s unsubscribed", claim.email)
            return pages.page(
                "unsubscribed.html.j2",
                title="Unsubscribed",
                who=who,
                resubscribe_action=resubscribe_action,
            )
        if await self._state(self._is_unsubscribed, claim.email):
            return pages.page(
                "unsubscribed.html.j2",
                title="Unsubscribed",
                who=who,
                resubscribe_action=resubscribe_action,
            )
        return pages.page("unsubscribe_confirm.html.j2", title="Unsubscribe", who=who, token=token)

    async def resubscribe(self, request: Request) -> Response:
        _, claim = self._claim(request, ("unsubscribe",))
        await _form(request)
        if await self._state(self._set_unsubscribed, claim.email, False):
            log.info("web: %s resubscribed", claim.email)
        return pages.page(
            "resubscribed.html.j2", title="Welcome back", who=pages.mask_email(claim.email)
        )

    # --- feedback ---------------------------------------------------------------------------

    async def feedback(self, request: Request) -> Response:
        token, claim = self._claim(request, ("more", "less"))
        paper_id = claim.subject
        if not (is_arxiv_id(paper_id) or (_LINK_ID.match(paper_id) and len(paper_id) <= 300)):
            raise _Refused(pages.invalid_link())
        more = claim.purpose == "more"
        if request.method == "POST":
            await _form(request)
            kind = "like" if more else "dislike"
            await self._state(self._record_feedback, claim.email, paper_id, kind)
            log.info("web: %s: %s %s", claim.email, kind, paper_id)
            title = await self._state(self._paper_title, paper_id)
            return pages.page("feedback_done.html.j2", title="Thanks", more=more, paper_title=title)
        title, previous = await self._state(self._paper_and_feedback, claim.email, paper_id)
        return pages.page(
            "feedback_confirm.html.j2",
            title="More like this" if more else "Less like this",
            more=more,
            paper_title=title,
            previous=previous,
            token=token,
        )

    # --- view online ------------------------------------------------------------------------

    async def view(self, request: Request) -> Response:
        _, claim = self._claim(request, ("view",))
        if not _ISO_DAY.match(claim.subject):
            raise _Refused(pages.invalid_link())
        try:
            day = date.fromisoformat(claim.subject)
        except ValueError:
            raise _Refused(pages.invalid_link()) from None
        raw = await self._state(self._stored_message, claim.email, day.isoformat())
        html = _html_part(raw) if raw else None
        if html is None:
            return pages.message(
                404,
                "This digest is not available",
                f"The digest of {day.isoformat()} is not stored here (any more).",
                "The email itself still has everything it had.",
            )
        return HTMLResponse(html)

    # --- helpers ----------------------------------------------------------------------------

    def _claim(self, request: Request, purposes: tuple[str, ...]) -> tuple[str, Claim]:
        token = str(request.path_params.get("token", ""))
        try:
            return token, read_token(self.secret, token, purposes, self.known)
        except InvalidToken:
            raise _Refused(pages.invalid_link()) from None

    async def _state(self, fn: Callable[..., T], *args: Any) -> T:
        return await run_in_threadpool(fn, *args)

    def _open(self) -> Store | None:
        """The state file, or None when nothing has run yet (a GET never creates it)."""
        path = self.config.digest.state
        return Store.open(path) if path.exists() else None

    def _is_unsubscribed(self, email: str) -> bool:
        store = self._open()
        if store is None:
            return False
        with store:
            return email.lower() in store.unsubscribed()

    def _set_unsubscribed(self, email: str, unsubscribed: bool) -> bool:
        """Record it; False when it was so already (the first time stays the one recorded)."""
        with Store.open(self.config.digest.state) as store:
            if (email.lower() in store.unsubscribed()) == unsubscribed:
                return False
            store.set_unsubscribed(email, unsubscribed, now=self.clock())
            return True

    def _record_feedback(self, email: str, paper_id: str, kind: str) -> None:
        with Store.open(self.config.digest.state) as store:
            store.record_feedback(email, paper_id, kind, now=self.clock())

    def _paper_title(self, paper_id: str) -> str:
        return self._paper_and_feedback("", paper_id)[0]

    def _paper_and_feedback(self, email: str, paper_id: str) -> tuple[str, str]:
        store = self._open()
        if store is None:
            return paper_id, ""
        with store:
            paper = store.get_papers([paper_id]).get(paper_id)
            previous = store.feedback(email).get(paper_id, "") if email else ""
        title = " ".join(paper.title.split()) if paper and paper.title.strip() else paper_id
        return title, previous

    def _stored_message(self, email: str, day: str) -> bytes | None:
        store = self._open()
        if store is None:
            return None
        with store:
            return store.message_bytes(email, day)  # the exact bytes that were mailed


async def _form(request: Request) -> dict[str, str]:
    try:
        return await read_form(request)
    except FormError as exc:
        raise _Refused(pages.for_status(exc.status)) from None


def _html_part(raw: bytes) -> str | None:
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    if not isinstance(message, EmailMessage):
        return None
    part = message.get_body(preferencelist=("html",))
    if part is None:
        return None
    content = part.get_content()
    return content if isinstance(content, str) else None
