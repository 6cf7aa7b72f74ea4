"""The reader's profile page, from the signed link in the footer of every digest.

    GET  /p/{token}           the page: interests, how often, likes (with undo), recent digests
    POST /p/{token}           save (validated by the config's rules; on an error nothing is saved)
    POST /p/{token}/preview   what today's digest would hold with the interests as edited
    POST /p/{token}/unlike    take back a like (or a "fewer like this")
    POST /p/{token}/import    pasted arXiv ids or URLs, a .bib or a Zotero .csv: likes
    GET  /p, POST /p          "send me my link": mails the link to a reader who may use it

Who may use the page: every active reader the state holds who signed up or was imported, and
the config's own readers only while [web] profile_edit = true (the operator's choice). What a
config reader changes here wins over their [[subscriber]] table for the fields they changed,
at each sync, for as long as profile_edit stays true (the rest stays the config's; with
profile_edit = false the config wins for everything again, and the edits are kept, unused).

A profile token's subject is the last day it works (digest.web.links.PROFILE_LINK_DAYS after
the digest or the request it came with). The POSTs carry the token in their path, as every
other form here: no cookies, so a cross-site form cannot act without the link (CSRF). Saving
writes the reader's row at once, so the next digest uses it; a preview writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import urlsplit

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from digest.config import Config, Subscriber
from digest.config.values import _EMAIL as EMAIL_PATTERN
from digest.deliver import Mailer, OutgoingMail, SendOutcome, Stop
from digest.errors import DigestError
from digest.message import make_message_id
from digest.rank import Ranker
from digest.render.clean import safe_url
from digest.store import ImportedPaper, Store
from digest.store.readers import apply_edits, edits_between
from digest.web import interests, pages
from digest.web.forms import FormError, read_form, read_form_files
from digest.web.links import PROFILE_PATH, profile_url, view_url
from digest.web.profile_form import WEEKDAY_NAMES, form_values, posted_values, read_profile
from digest.web.readers import ReaderIndex
from digest.web.state import StateAccess
from digest.web.tokens import InvalidToken, read_token, token_ref

log = logging.getLogger("digest.web")

FORM_BYTES = 256 * 1024  # the profile form: 200 keywords, excludes and authors, escaped
UPLOAD_BYTES = interests.MAX_UPLOAD_BYTES + 64 * 1024  # the file and the form around it
LINK_MAIL_EVERY = 600.0  # seconds: one "send me my link" mail per address at most this often
PREVIEW_PAPERS = 50  # at most this many shown
RECENT_DIGESTS = 10


class ProfileRefused(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass
class Reader:
    """Who the page is for: what they have now, and what the page's edits are over."""

    token: str
    email: str
    current: Subscriber  # their settings as the next digest uses them
    base: Subscriber  # the config's table (config readers) or the same as current
    unsubscribed: bool


class ProfileSide:
    def __init__(
        self,
        config: Config,
        secret: bytes,
        clock: Callable[[], datetime],
        state: StateAccess,
        readers: ReaderIndex,
        mailer: Mailer | None,
    ) -> None:
        assert config.web is not None
        self.config, self.web, self.secret = config, config.web, secret
        self.clock, self.state, self.readers, self.mailer = clock, state, readers, mailer
        self.config_readers = {s.email.lower(): s for s in config.subscribers}
        self.prefix = urlsplit(self.web.base_url).path.rstrip("/") + PROFILE_PATH.rstrip("/")
        self._mailed: OrderedDict[str, float] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the page ---------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        reader = await self._reader(request)
        return await self._render(reader, form_values(reader.current))

    async def save(self, request: Request) -> Response:
        reader = await self._reader(request)
        form = await self._form(request)
        edited, errors = read_profile(form, reader.base, self.config.digest)
        if edited is None:
            return await self._render(reader, posted_values(form), errors=errors, status=400)
        edits = edits_between(reader.base, edited)
        await self.state.write(_save, edited, edits, self.clock())
        log.info("web: %s saved their profile (%d fields changed)", reader.email, len(edits))
        reader.current = edited
        return await self._render(reader, form_values(edited), saved=True)

    async def preview(self, request: Request) -> Response:
        reader = await self._reader(request)
        form = await self._form(request)
        edited, errors = read_profile(form, reader.base, self.config.digest)
        if edited is None:
            return await self._render(reader, posted_values(form), errors=errors, status=400)
        preview = await self.state.read(_preview, edited)
        return await self._render(reader, posted_values(form), preview=preview)

    async def unlike(self, request: Request) -> Response:
        reader = await self._reader(request)
        form = await self._form(request)
        paper_id, kind = form.get("paper", ""), form.get("kind", "")
        if kind not in ("like", "dislike") or not 0 < len(paper_id) <= 300:
            raise ProfileRefused(pages.for_status(400))
        await self.state.write(_unlike, reader.email, paper_id, kind)
        return await self._render(reader, form_values(reader.current), note="Taken back.")

    async def imports(self, request: Request) -> Response:
        reader = await self._reader(request)
        try:
            form, files = await read_form_files(request, max_bytes=UPLOAD_BYTES, max_fields=8)
        except FormError as exc:
            if exc.status != 413:
                raise ProfileRefused(pages.for_status(exc.status)) from None
            return await self._render(
                reader,
                form_values(reader.current),
                status=413,
                import_error=(
                    f"The file is larger than {interests.MAX_UPLOAD_BYTES // 1024 // 1024} MiB."
                ),
            )
        try:
            found = interests.Found()
            if form.get("ids", "").strip():
                found = interests.read_pasted(form["ids"])
            filename, data = files.get("file", ("", b""))
            if data:
                uploaded = interests.read_upload(filename, data)
                for p in uploaded.papers:
                    found.add(p.id, p.id, p.title, p.abstract)
                found.unknown += uploaded.unknown
                found.more_unknown += uploaded.more_unknown
                found.cut = found.cut or uploaded.cut
        except interests.Refused as exc:
            return await self._render(
                reader, form_values(reader.current), status=400, import_error=str(exc)
            )
        await self.state.write(_import, reader.email, found.papers, self.clock())
        log.info("web: %s imported %d likes", reader.email, len(found.papers))
        return await self._render(reader, form_values(reader.current), imported=found)

    # --- "send me my link" ------------------------------------------------------------------

    async def ask_link(self, request: Request) -> Response:
        if request.method == "GET":
            return pages.page("profile_ask.html.j2", title="Your profile link", sent=False)
        form = await self._form(request)
        address = form.get("email", "").strip()
        response = pages.page("profile_ask.html.j2", title="Your profile link", sent=True)
        if EMAIL_PATTERN.match(address) and len(address) <= 254 and self._may_mail(address):
            # after the answer, so the answer takes as long whoever the address is
            response.background = BackgroundTask(self._mail_link, address)
        return response

    def _may_mail(self, address: str) -> bool:
        now, key = asyncio.get_running_loop().time(), address.lower()
        last = self._mailed.get(key)
        if last is not None and now - last < LINK_MAIL_EVERY:
            return False
        self._mailed[key] = now
        self._mailed.move_to_end(key)
        while len(self._mailed) > 10_000:
            self._mailed.popitem(last=False)
        return True

    async def _mail_link(self, address: str) -> None:
        if self.mailer is None:
            log.warning("web: a profile link was asked for, but the app has no mailer")
            return
        row = await self.state.read(_reader_row, address)
        if row is None or row.unsubscribed:
            return  # the same answer was given: nobody learns who reads the digest
        if not self._may_use(row.reader.email, row.active, row.origin):
            return
        today = self.clock().date()
        link = profile_url(self.web, self.secret, row.reader.email, today)
        mail = _link_mail(self.config, row.reader.email, link, self.clock())
        queue: asyncio.Queue[OutgoingMail | None] = asyncio.Queue()
        await queue.put(mail)
        await queue.put(None)
        outcomes: list[SendOutcome] = []
        try:
            await self.mailer.deliver_stream(
                queue, on_attempt=lambda m: None, on_outcome=outcomes.append, stop=Stop.new()
            )
        except (DigestError, OSError) as exc:  # after the answer: only the log can say it
            log.warning("web: the profile link to %s was not mailed: %s", address, exc)
            return
        log.info("web: profile link mailed to %s: %s", address, [o.status for o in outcomes])

    # --- helpers ----------------------------------------------------------------------------

    def _may_use(self, email: str, active: bool, origin: str) -> bool:
        if email.lower() in self.config_readers:
            return self.web.profile_edit
        return active and origin != "config"

    async def _reader(self, request: Request) -> Reader:
        token = str(request.path_params.get("token", ""))
        claim = None
        try:
            claim = read_token(self.secret, token, ("profile",), self.readers)
        except InvalidToken:
            ref = token_ref(token, ("profile",))
            if ref is not None and self.readers.lookup(ref) is None:
                await self.state.read(self.readers.learn_from, ref)
                with contextlib.suppress(InvalidToken):
                    claim = read_token(self.secret, token, ("profile",), self.readers)
        if claim is None:
            raise ProfileRefused(pages.invalid_link())
        if not _still_valid(claim.subject, self.clock().date()):
            raise ProfileRefused(_expired(self.prefix))
        row = await self.state.read(_reader_row, claim.email)
        configured = self.config_readers.get(claim.email.lower())
        if configured is not None:
            if not self.web.profile_edit:
                raise ProfileRefused(_operator_decides())
            edits = row.edits if row else {}
            current = apply_edits(configured, edits)
            return Reader(token, claim.email, current, configured, bool(row and row.unsubscribed))
        if row is None or not row.active or row.origin == "config":
            raise ProfileRefused(_no_longer())
        return Reader(token, claim.email, row.reader, row.reader, row.unsubscribed)

    async def _form(self, request: Request) -> dict[str, str]:
        try:
            return await read_form(request, max_bytes=FORM_BYTES, max_fields=40)
        except FormError as exc:
            raise ProfileRefused(pages.for_status(exc.status)) from None

    async def _render(
        self,
        reader: Reader,
        values: dict[str, str],
        *,
        status: int = 200,
        errors: dict[str, str] | None = None,
        **extra: object,
    ) -> HTMLResponse:
        likes, digests = await self.state.read(_lists, reader.email)
        action = f"{self.prefix}/{reader.token}"
        view_links = [(day, _view(self, reader.email, day)) for day in digests]
        return pages.page(
            "profile.html.j2",
            title="Your interests",
            status=status,
            who=pages.mask_email(reader.email),
            action=action,
            values=values,
            errors=errors or {},
            weekdays=list(WEEKDAY_NAMES.items()),
            config_likes=list(reader.current.like),
            likes=likes,
            digests=view_links,
            unsubscribed=reader.unsubscribed,
            saved=extra.get("saved", False),
            preview=extra.get("preview"),
            imported=extra.get("imported"),
            import_error=extra.get("import_error", ""),
            note=extra.get("note", ""),
        )


def _view(side: ProfileSide, email: str, day: str) -> str:
    return view_url(side.web, side.secret, email, day)


def _still_valid(last_day: str, today: date) -> bool:
    try:
        return today <= date.fromisoformat(last_day)
    except ValueError:
        return False


def _expired(prefix: str) -> HTMLResponse:
    return pages.page(
        "profile_expired.html.j2", title="This link has expired", status=410, ask=prefix
    )


def _operator_decides() -> HTMLResponse:
    return pages.message(
        403,
        "Your interests are set by the digest's operator",
        "This digest's operator keeps the readers' interests in its configuration, so they "
        "cannot be changed here.",
        "To change them, ask whoever runs this digest.",
    )


def _no_longer() -> HTMLResponse:
    return pages.message(
        404,
        "You no longer get this digest",
        "There is no profile to change for this address.",
    )


def _link_mail(config: Config, to: str, link: str, now: datetime) -> OutgoingMail:
    message = EmailMessage()
    message["From"] = config.digest.from_addr
    message["To"] = to
    message["Subject"] = "Your Paper digest profile link"
    message["Date"] = format_datetime(now)
    message_id = make_message_id(config.digest.from_email)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        "Someone (we hope you) asked for the link to your Paper digest profile, where you\n"
        "choose your interests and how often the digest comes:\n\n"
        f"{link}\n\n"
        "If it was not you, ignore this mail: nothing changes unless the link is used.\n"
    )
    data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    return OutgoingMail(
        key=(to.lower(), f"profile-link-{now:%Y%m%dT%H%M%S}"),
        recipient=to,
        data=data,
        sender=config.digest.from_email,
        message_id=message_id,
    )


# --- what the handlers read and write (in a worker thread, through StateAccess) ------------


@dataclass(frozen=True)
class _Row:
    reader: Subscriber
    origin: str
    active: bool
    unsubscribed: bool
    edits: dict[str, object]


def _reader_row(store: Store | None, email: str) -> _Row | None:
    row = store.reader_row(email) if store else None
    if store is None or row is None:
        return None
    edits = store.page_edits(email)
    return _Row(row.reader, row.origin, row.active, row.unsubscribed, edits)


def _save(store: Store, edited: Subscriber, edits: dict[str, object], now: datetime) -> None:
    store.save_page_edits(edited, edits, now=now)


def _unlike(store: Store, email: str, paper_id: str, kind: str) -> None:
    store.delete_feedback(email, paper_id, kind)


def _import(store: Store, email: str, papers: list[interests.FoundPaper], now: datetime) -> None:
    store.save_imported_papers(
        [ImportedPaper(p.id, p.title, p.abstract) for p in papers if p.title], now=now
    )
    store.record_likes(email, [p.id for p in papers], now=now)


def _lists(store: Store | None, email: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    if store is None:
        return [], []
    likes = [
        (pid, kind, pages.display_text(title or pid))
        for pid, kind, title in store.feedback_with_titles(email)
    ]
    return likes, store.recent_digests(email, RECENT_DIGESTS)


def _preview(store: Store | None, reader: Subscriber) -> list[tuple[str, str, str]]:
    """(title, why, link) of what today's digest would hold for `reader`: the papers they
    were not offered yet, ranked by keywords (no model in the web process), nothing written."""
    if store is None:
        return []
    candidates = store.candidates(
        reader.email, upto_seq=store.max_seq(), sealed=store.sealed_digests(reader.email)
    )
    if not candidates:
        return []
    ranker = Ranker.for_run(store, candidates, model=None)
    ranked = ranker.rank(candidates, reader, store.feedback(reader.email))
    return [
        (
            pages.display_text(r.paper.title),
            pages.display_text(", ".join(r.matched)),
            safe_url(r.paper.arxiv_url or r.paper.url),
        )
        for r in ranked[:PREVIEW_PAPERS]
    ]
