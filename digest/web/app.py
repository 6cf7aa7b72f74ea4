"""The reader's side as an ASGI app (Starlette): create_app(config, clock=...).

    GET  /u/{token}              unsubscribe: a confirm page (or "you're unsubscribed")
    POST /u/{token}              RFC 8058 one-click: unsubscribes at once
    POST /u/{token}/resubscribe  undo it
    GET  /f/{token}              "more / less like this": a confirm page
    POST /f/{token}              records the like or dislike
    POST /f/{token}/undo         takes it back
    GET  /v/{token}              the digest as it was mailed (its HTML part)
    GET  /p/{token}, POST ...    the reader's profile page (digest.web.profile), and /p: "send me
                                 my link"
    GET  /healthz                "ok"
    GET  /signup, POST /signup   sign up ([web] signup; digest.web.signup)
    GET  /c/{token}, POST /c/{token}   confirm a sign-up (the POST subscribes)

Link scanners (Outlook Safe Links, mail security proxies) follow every GET in a mail, so no
GET changes anything; only the POSTs of our own buttons (or the mail provider's one-click)
do. There are no cookies and no sessions: the signed token in the path is the whole
authority, so a cross-site form cannot act without it (CSRF needs nothing more).

A token names its reader by a ref that is looked up among the readers of the config and every
reader a run has registered in the state (digest.web.readers): a reader added after the app
started has working links from their first mail on, and a reader removed from the config keeps
working links in the mails they got. For such a reader, unsubscribe works as for anyone (RFC
8058), "view" shows their mail while it is kept, and feedback is recorded: it counts again if
they come back (the app does not know the daemon's reloaded config; an unsubscribed reader is
told their feedback counts only if they come back).

The state is reached through digest.web.state: a busy or locked state makes a request answer
503 with Retry-After within seconds, never 500, and never 200 for something not recorded.
Nothing here redirects (no trailing-slash redirects either: such a path is a 404 page).
"""

from __future__ import annotations

import email.policy
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest.clock import utc_now
from digest.config import Config
from digest.deliver import Mailer, make_mailer
from digest.ids import is_arxiv_id
from digest.store import KEEP_SENT_MESSAGES_DAYS, Store
from digest.web import pages
from digest.web.confirmations import ConfirmationSender
from digest.web.forms import FormError, read_form
from digest.web.guard import Guard, RateLimiter
from digest.web.profile import ProfileRefused, ProfileSide
from digest.web.readers import ReaderIndex
from digest.web.signup import SignupSide
from digest.web.state import RETRY_AFTER_SECONDS, StateAccess, StateBusy
from digest.web.tokens import Claim, InvalidToken, read_token, require_secret, token_ref

log = logging.getLogger("digest.web")

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LINK_ID = re.compile(r"^https?://[^\s\x00-\x1f\x7f]+$")
_KIND = {"more": "like", "less": "dislike"}


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
    state: StateAccess | None = None,
    max_in_flight: int = 100,
    mailer: Mailer | None = None,
    sender: ConfirmationSender | None = None,
    signup_limiter: RateLimiter | None = None,
) -> Guard:
    """The ASGI app for `config` (which must have [web]; the secret is read from the
    environment now, so a missing one fails here, before anything listens). `state`: how the
    state is reached (its bounds); `max_in_flight`: requests answered at once, 503 beyond;
    `mailer`: how the profile page's "send me my link" mails go (None: they do not go). With
    [web] signup on: `mailer` sends the confirmation mails (default: the one [delivery]
    makes) through `sender` (default: one over that mailer; the app's lifespan starts and
    stops it); `signup_limiter`: sign-up POSTs per client."""
    if config.web is None:
        from digest.errors import ConfigError

        raise ConfigError(
            f"{config.path.name}: no [web] table",
            fix='add [web] with base_url = "https://..." (see config.example.toml)',
        )
    secret = require_secret(config.web)
    state = state or StateAccess(config.digest.state)
    reader = _ReaderSide(config, secret, clock, state)
    if config.web.signup != "off" and sender is None:
        sender = ConfirmationSender(
            config, secret, mailer or make_mailer(config.delivery), clock=clock
        )
    signup = SignupSide(config, secret, clock, state, sender, signup_limiter)
    profile = ProfileSide(config, secret, clock, state, reader.readers, mailer)
    routes = [
        Route("/healthz", reader.healthz, methods=["GET"]),
        Route("/", reader.index, methods=["GET"]),
        Route("/robots.txt", reader.robots, methods=["GET"]),
        Route("/u/{token}", reader.unsubscribe, methods=["GET", "POST"]),
        Route("/u/{token}/resubscribe", reader.resubscribe, methods=["POST"]),
        Route("/f/{token}", reader.feedback, methods=["GET", "POST"]),
        Route("/f/{token}/undo", reader.undo, methods=["POST"]),
        Route("/v/{token}", reader.view, methods=["GET"]),
        Route("/p", profile.ask_link, methods=["GET", "POST"]),
        Route("/p/{token}", profile.page, methods=["GET"]),
        Route("/p/{token}", profile.save, methods=["POST"]),
        Route("/p/{token}/preview", profile.preview, methods=["POST"]),
        Route("/p/{token}/unlike", profile.unlike, methods=["POST"]),
        Route("/p/{token}/import", profile.imports, methods=["POST"]),
        Route("/signup", signup.form, methods=["GET", "POST"]),
        Route("/c/{token}", signup.confirm, methods=["GET", "POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=_lifespan(sender),
        exception_handlers={
            HTTPException: _http_exception,
            _Refused: _refused,
            ProfileRefused: _refused_profile,
            StateBusy: _busy,
            Exception: _server_error,
        },
    )
    # Starlette answers "/healthz/" with a redirect whose Location comes from the Host header;
    # the app never redirects: such a path is the 404 page.
    app.router.redirect_slashes = False
    return Guard(
        app,
        limiter=limiter or RateLimiter(),
        too_many=pages.too_many,
        busy=pages.busy,
        max_in_flight=max_in_flight,
    )


def _lifespan(sender: ConfirmationSender | None) -> Callable[[Starlette], Any]:
    """The confirmation mails' worker runs while the server does."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if sender is not None:
            sender.start()
        try:
            yield
        finally:
            if sender is not None:
                await anyio.to_thread.run_sync(sender.stop)

    return lifespan


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return pages.for_status(exc.status_code, headers=exc.headers)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Refused)
    return exc.response


async def _refused_profile(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProfileRefused)
    return exc.response


async def _busy(request: Request, exc: Exception) -> Response:
    return pages.busy(RETRY_AFTER_SECONDS)


async def _server_error(request: Request, exc: Exception) -> Response:
    return pages.for_status(500)


class _ReaderSide:
    """The handlers, over one config and secret; the state through `state` (bounded waits)."""

    def __init__(
        self, config: Config, secret: bytes, clock: Callable[[], datetime], state: StateAccess
    ) -> None:
        self.config = config
        self.secret = secret
        self.clock = clock
        self.state = state
        self.readers = ReaderIndex(secret, (s.email for s in config.subscribers))

    # --- small pages ------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def index(self, request: Request) -> Response:
        return pages.message(
            200,
            "Paper digest",
            "This is the reader's side of a paper digest: the links in your digest emails "
            "lead here, to unsubscribe, to say which papers you want more or fewer of, and to "
            "read a digest in the browser.",
        )

    async def robots(self, request: Request) -> Response:
        return PlainTextResponse("User-agent: *\nDisallow: /\n")

    # --- unsubscribe ------------------------------------------------------------------------

    async def unsubscribe(self, request: Request) -> Response:
        token, claim = await self._claim(request, ("unsubscribe",))
        who = pages.mask_email(claim.email)
        resubscribe_action = f"{token}/resubscribe"
        if request.method == "POST":
            form = await _form(request)
            if form.get("List-Unsubscribe") != "One-Click":
                raise _Refused(pages.for_status(400))
            if await self.state.write(_set_unsubscribed, claim.email, True, self.clock()):
                log.info("web: %s unsubscribed", claim.email)
        elif not await self.state.read(_is_unsubscribed, claim.email):
            return pages.page(
                "unsubscribe_confirm.html.j2", title="Unsubscribe", who=who, token=token
            )
        return pages.page(
            "unsubscribed.html.j2",
            title="Unsubscribed",
            who=who,
            resubscribe_action=resubscribe_action,
        )

    async def resubscribe(self, request: Request) -> Response:
        _, claim = await self._claim(request, ("unsubscribe",))
        await _form(request)
        if await self.state.write(_set_unsubscribed, claim.email, False, self.clock()):
            log.info("web: %s resubscribed", claim.email)
        return pages.page(
            "resubscribed.html.j2", title="Welcome back", who=pages.mask_email(claim.email)
        )

    # --- feedback ---------------------------------------------------------------------------

    async def feedback(self, request: Request) -> Response:
        token, claim = await self._claim(request, ("more", "less"))
        paper_id = _paper_id(claim)
        more = claim.purpose == "more"
        if request.method == "POST":
            await _form(request)
            kind = _KIND[claim.purpose]
            title, unsubscribed = await self.state.write(
                _record_feedback, claim.email, paper_id, kind, self.clock()
            )
            log.info("web: %s: %s %s", claim.email, kind, paper_id)
            return pages.page(
                "feedback_done.html.j2",
                title="Thanks",
                more=more,
                paper_title=title,
                unsubscribed=unsubscribed,
                undo_action=f"{token}/undo",
            )
        title, previous, unsubscribed = await self.state.read(_feedback_view, claim.email, paper_id)
        return pages.page(
            "feedback_confirm.html.j2",
            title="More like this" if more else "Fewer like this",
            more=more,
            paper_title=title,
            previous=previous,
            unsubscribed=unsubscribed,
            token=token,
        )

    async def undo(self, request: Request) -> Response:
        """Take back what this link recorded (only if it is still that: a later "the other
        way" on the same paper stays)."""
        _, claim = await self._claim(request, ("more", "less"))
        paper_id = _paper_id(claim)
        await _form(request)
        kind = _KIND[claim.purpose]
        title, taken_back = await self.state.write(_take_back, claim.email, paper_id, kind)
        if taken_back:
            log.info("web: %s: took back a %s of %s", claim.email, kind, paper_id)
        return pages.page(
            "feedback_undone.html.j2",
            title="Taken back" if taken_back else "Nothing to take back",
            more=claim.purpose == "more",
            paper_title=title,
            taken_back=taken_back,
        )

    # --- view online ------------------------------------------------------------------------

    async def view(self, request: Request) -> Response:
        _, claim = await self._claim(request, ("view",))
        if not _ISO_DAY.match(claim.subject):
            raise _Refused(pages.invalid_link())
        try:
            day = date.fromisoformat(claim.subject)
        except ValueError:
            raise _Refused(pages.invalid_link()) from None
        raw = await self.state.read(_stored_message, claim.email, day.isoformat())
        html = _html_part(raw) if raw else None
        if html is None:
            return pages.message(
                404,
                "This digest is not available",
                f"The digest of {day.isoformat()} is not kept here: digests can be read here "
                f"for {KEEP_SENT_MESSAGES_DAYS} days after they are sent.",
                "The email itself still has everything it had.",
            )
        return HTMLResponse(html)

    # --- helpers ----------------------------------------------------------------------------

    async def _claim(self, request: Request, purposes: tuple[str, ...]) -> tuple[str, Claim]:
        token = str(request.path_params.get("token", ""))
        try:
            return token, read_token(self.secret, token, purposes, self.readers)
        except InvalidToken:
            ref = token_ref(token, purposes)
            if ref is None or self.readers.lookup(ref) is not None:
                raise _Refused(pages.invalid_link()) from None
        # A well-formed token of a reader not known yet: one registered since the last look?
        await self.state.read(self.readers.learn_from, ref)
        try:
            return token, read_token(self.secret, token, purposes, self.readers)
        except InvalidToken:
            raise _Refused(pages.invalid_link()) from None


def _paper_id(claim: Claim) -> str:
    paper_id = claim.subject
    if not (is_arxiv_id(paper_id) or (_LINK_ID.match(paper_id) and len(paper_id) <= 300)):
        raise _Refused(pages.invalid_link())
    return paper_id


async def _form(request: Request) -> dict[str, str]:
    try:
        return await read_form(request)
    except FormError as exc:
        raise _Refused(pages.for_status(exc.status)) from None


# --- what the handlers read and write (in a worker thread, through StateAccess) ------------


def _is_unsubscribed(store: Store | None, email: str) -> bool:
    return store is not None and email.lower() in store.unsubscribed()


def _set_unsubscribed(store: Store, email: str, unsubscribed: bool, now: datetime) -> bool:
    """Record it; False when it was so already (the first time stays the one recorded)."""
    if (email.lower() in store.unsubscribed()) == unsubscribed:
        return False
    store.set_unsubscribed(email, unsubscribed, now=now)
    return True


def _record_feedback(
    store: Store, email: str, paper_id: str, kind: str, now: datetime
) -> tuple[str, bool]:
    """Record it; (the paper's title, whether the reader is unsubscribed)."""
    store.record_feedback(email, paper_id, kind, now=now)
    return _title(store, paper_id), _is_unsubscribed(store, email)


def _take_back(store: Store, email: str, paper_id: str, kind: str) -> tuple[str, bool]:
    return _title(store, paper_id), store.delete_feedback(email, paper_id, kind)


def _feedback_view(store: Store | None, email: str, paper_id: str) -> tuple[str, str, bool]:
    """(the paper's title, the reader's earlier word on it or "", whether unsubscribed)."""
    if store is None:
        return pages.display_text(paper_id), "", False
    previous = store.feedback(email).get(paper_id, "")
    return _title(store, paper_id), previous, _is_unsubscribed(store, email)


def _title(store: Store, paper_id: str) -> str:
    paper = store.get_papers([paper_id]).get(paper_id)
    title = pages.display_text(paper.title) if paper else ""
    return title or pages.display_text(paper_id)


def _stored_message(store: Store | None, email: str, day: str) -> bytes | None:
    return store.message_bytes(email, day) if store else None  # the exact bytes mailed


def _html_part(raw: bytes) -> str | None:
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    if not isinstance(message, EmailMessage):
        return None
    part = message.get_body(preferencelist=("html",))
    if part is None:
        return None
    content = part.get_content()
    return content if isinstance(content, str) else None
