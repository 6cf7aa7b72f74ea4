"""Readers sign up on the web side, with double opt-in ([web] signup = "open" | "domains").

    GET  /signup      the form: email, interests, time zone (preset from the browser), send time
    POST /signup      records the sign-up; its confirmation mail goes out off the request path
    GET  /c/{token}   the confirmation page: a button, and nothing changed
    POST /c/{token}   the button: the reader is saved (origin "signup") and gets digests

No enumeration: POST /signup answers with the same page, status and work for a new, a known, a
blocked or a capped address (one state transaction that counts the request and records the
sign-up only when allowed; the mail is sent by digest.web.confirmations). What it says about
an address only ever depends on the address as typed and the public rules (its form, the
allowed domains). A honeypot field, a rate limit per client on the POST and a cap of
confirmation mails per address and day keep it from being used to mail people.

The confirmation link is a signed token (digest.web.tokens, purpose "confirm") whose subject
names the sign-up and its expiry; its MAC is checked against the sign-up's address, so a link
works for its own sign-up only. A link scanner's GET changes nothing; a replayed POST says
"already confirmed"; an expired or forged link gets a page that says so.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from digest.config import Config, Subscriber
from digest.config.load import parse_reader
from digest.config.values import Place, iana_zones
from digest.errors import ConfigError
from digest.store import Signup, Store
from digest.web import pages
from digest.web.confirmations import ConfirmationSender, confirm_subject
from digest.web.forms import FormError, read_form
from digest.web.guard import CSP, RateLimiter
from digest.web.state import StateAccess
from digest.web.tokens import InvalidToken, read_token, subscriber_ref, token_subject

log = logging.getLogger("digest.web.signup")

CONFIRM_HOURS = 48
DAILY_MAILS = 3  # confirmation mails per address and UTC day
MAX_FORM_BYTES = 8192
MAX_INTEREST_CHARS = 2000
HONEYPOT = "website"  # a field people never see or fill; bots do
_SPLIT = re.compile(r"[,;\n]+")
_SUBJECT = re.compile(r"^([0-9a-f]{24})\.(\d{1,12})$")

# Presets the time zone select from the browser (Intl); allowed by its hash in the CSP.
TZ_SCRIPT = (
    "(function(){try{var s=document.getElementById('timezone');"
    "var z=Intl.DateTimeFormat().resolvedOptions().timeZone;"
    "if(s&&z&&!s.hasAttribute('data-chosen')){for(var i=0;i<s.options.length;i++)"
    "{if(s.options[i].value===z){s.value=z;break;}}}}catch(e){}})();"
)
_TZ_HASH = base64.b64encode(hashlib.sha256(TZ_SCRIPT.encode()).digest()).decode()
SIGNUP_CSP = f"{CSP}; script-src 'sha256-{_TZ_HASH}'"


def signup_limiter() -> RateLimiter:
    """Sign-up POSTs per client address: 5 at once, then one every two minutes."""
    return RateLimiter(burst=5, per_second=1 / 120)


class _OneReader:
    """The reader a confirmation link must be for: its sign-up's address."""

    def __init__(self, secret: bytes, address: str) -> None:
        self._ref, self._address = subscriber_ref(secret, address), address

    def lookup(self, ref: bytes) -> str | None:
        return self._address if ref == self._ref else None


class SignupSide:
    """The sign-up handlers, over one config and secret."""

    def __init__(
        self,
        config: Config,
        secret: bytes,
        clock: Callable[[], datetime],
        state: StateAccess,
        sender: ConfirmationSender | None,
        limiter: RateLimiter | None = None,
    ) -> None:
        assert config.web is not None
        self.config = config
        self.web = config.web
        self.secret = secret
        self.clock = clock
        self.state = state
        self.sender = sender
        self.limiter = limiter or signup_limiter()

    @property
    def enabled(self) -> bool:
        return self.web.signup != "off"

    # --- the form ---------------------------------------------------------------------------

    async def form(self, request: Request) -> Response:
        if not self.enabled:
            return pages.for_status(404)
        if request.method == "POST":
            return await self._submit(request)
        digest = self.config.digest
        return self._form_page(
            200, {"timezone": digest.timezone, "send_at": f"{digest.send_at:%H:%M}"}, ""
        )

    async def _submit(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        fetch_site = request.headers.get("sec-fetch-site")
        if (origin not in (None, "null", _origin(self.web.base_url))) or (
            fetch_site not in (None, "same-origin", "none")
        ):
            # A form on another site posting here (CSRF): browsers say where it came from
            # (Origin is "null" under our no-referrer policy; Sec-Fetch-Site still tells).
            return pages.message(403, "Please use the form on this site", "Nothing was sent.")
        client = request.client.host if request.client else "-"
        wait = self.limiter.take(client)
        if wait > 0:
            return pages.too_many(max(1, round(wait)))
        try:
            form = await read_form(request, max_bytes=MAX_FORM_BYTES)
        except FormError as exc:
            return pages.for_status(exc.status)
        if form.get(HONEYPOT, ""):
            log.info("sign-up: the honeypot was filled in; nothing recorded")
            return self._check_inbox()
        try:
            reader = self.reader_from_form(form)
        except ConfigError as exc:
            return self._form_page(400, form, _problem(exc))
        if not self.domain_allowed(reader.email):
            return self._form_page(400, form, self._domain_rule())
        now = self.clock()
        signup_id = secrets.token_hex(12)
        decision = await self.state.write(
            _record,
            signup_id,
            reader,
            now,
            now + timedelta(hours=CONFIRM_HOURS),
        )
        if decision == "queued" and self.sender is not None:
            self.sender.wake()
        log.info("sign-up: %s", decision)  # no address: the log is not a list of them
        return self._check_inbox()

    def reader_from_form(self, form: dict[str, str]) -> Subscriber:
        """The form as a [[subscriber]] table, validated as the config's are (ConfigError)."""
        interests = form.get("interests", "")
        if len(interests) > MAX_INTEREST_CHARS:
            raise ConfigError(
                f"interests: at most {MAX_INTEREST_CHARS} characters, please",
                fix="keep the topics that matter most",
            )
        keywords = list(dict.fromkeys(t.strip() for t in _SPLIT.split(interests) if t.strip()))
        table: dict[str, Any] = {
            "email": form.get("email", "").strip(),
            "keywords": keywords,
            "timezone": form.get("timezone", "").strip() or self.config.digest.timezone,
            "send_at": form.get("send_at", "").strip()[:5],
        }
        if not table["send_at"]:
            del table["send_at"]
        return parse_reader(_FORM, table, self.config.digest)

    def domain_allowed(self, email: str) -> bool:
        if self.web.signup != "domains":
            return True
        domain = email.rpartition("@")[2].lower()
        return any(domain == d or domain.endswith("." + d) for d in self.web.allowed_domains)

    def _domain_rule(self) -> str:
        return (
            "This digest takes sign-ups from addresses at "
            + ", ".join(self.web.allowed_domains)
            + " only."
        )

    def _form_page(self, status: int, values: dict[str, str], problem: str) -> Response:
        response = pages.page(
            "signup.html.j2",
            title="Sign up",
            status=status,
            values=values,
            problem=problem,
            zones=sorted(iana_zones()),
            domains=list(self.web.allowed_domains) if self.web.signup == "domains" else [],
            honeypot=HONEYPOT,
            script=TZ_SCRIPT,
            chosen=status != 200,
        )
        response.headers["content-security-policy"] = SIGNUP_CSP
        return response

    def _check_inbox(self) -> Response:
        return pages.page("signup_sent.html.j2", title="Check your inbox", hours=CONFIRM_HOURS)

    # --- the confirmation link --------------------------------------------------------------

    async def confirm(self, request: Request) -> Response:
        if not self.enabled:
            return pages.for_status(404)
        token = str(request.path_params.get("token", ""))
        subject = token_subject(token, ("confirm",)) or ""
        match = _SUBJECT.match(subject)
        if not match:
            return pages.invalid_link()
        signup_id, expires = match.group(1), int(match.group(2))
        signup = await self.state.read(_signup, signup_id)
        if signup is None or not self._valid(token, signup):
            return _expired() if self._past(expires) else pages.invalid_link()
        if signup.confirmed_at is not None:
            return _already()
        if confirm_subject(signup_id, datetime.fromisoformat(signup.expires_at)) != subject:
            return pages.invalid_link()
        if self._past(expires):
            return _expired()
        try:
            reader = self.reader_from_json(signup.reader)
        except ConfigError:
            return pages.invalid_link()  # the config's rules changed since: sign up again
        if request.method != "POST":  # GET and HEAD (link scanners) change nothing
            return pages.page(
                "signup_confirm.html.j2",
                title="Confirm your digest",
                who=pages.mask_email(reader.email),
                interests=list(reader.keywords),
                send_at=f"{reader.send_at:%H:%M}",
                timezone=reader.timezone,
                token=token,
            )
        try:
            await read_form(request)
        except FormError as exc:
            return pages.for_status(exc.status)
        if not self.domain_allowed(reader.email):
            return pages.message(403, "Sign-up is closed for this address", self._domain_rule())
        outcome = await self.state.write(
            _confirm, signup_id, reader, self.clock(), self.config.digest.lookback_days
        )
        log.info("sign-up confirmed: %s", outcome)
        if outcome == "already":
            return _already()
        if outcome == "blocked":
            return pages.message(
                403, "This address cannot sign up here", "Please reply to a digest to ask why."
            )
        return pages.page(
            "signup_done.html.j2",
            title="You're subscribed",
            who=pages.mask_email(reader.email),
            send_at=f"{reader.send_at:%H:%M}",
            timezone=reader.timezone,
            from_config=outcome == "config",
        )

    def reader_from_json(self, text: str) -> Subscriber:
        return parse_reader(_FORM, json.loads(text), self.config.digest)

    def _valid(self, token: str, signup: Signup) -> bool:
        try:
            read_token(self.secret, token, ("confirm",), _OneReader(self.secret, signup.address))
        except InvalidToken:
            return False
        return True

    def _past(self, expires: int) -> bool:
        return self.clock() >= datetime.fromtimestamp(expires, UTC)


_FORM = Place("sign-up", "form", Path("."))


def _origin(url: str) -> str:
    """The origin ("https://host[:port]") of a URL, as a browser's Origin header gives it."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}".lower()


def _problem(exc: ConfigError) -> str:
    """The validation message without its place ("sign-up: form (x@y): ")."""
    text = exc.message
    for prefix in ("sign-up: form: ", "sign-up: "):
        text = text.removeprefix(prefix)
    text = re.sub(r"^form \([^)]*\): ", "", text)
    return f"{text} ({exc.fix})" if exc.fix else text


def _expired() -> Response:
    return pages.message(
        410,
        "This link has expired",
        f"Confirmation links work for {CONFIRM_HOURS} hours.",
        "Sign up again to get a new one.",
    )


def _already() -> Response:
    return pages.message(
        200,
        "Already confirmed",
        "This sign-up was confirmed before: your digest is on its way.",
        "Every digest has a link to unsubscribe.",
    )


# --- what the handlers read and write (in a worker thread, through StateAccess) ------------


def reader_json(reader: Subscriber) -> str:
    """What a sign-up keeps of the form (read back through the same validation)."""
    return json.dumps(
        {
            "email": reader.email,
            "keywords": list(reader.keywords),
            "timezone": reader.timezone,
            "send_at": f"{reader.send_at:%H:%M}",
        },
        ensure_ascii=False,
    )


def _record(
    store: Store, signup_id: str, reader: Subscriber, now: datetime, expires: datetime
) -> str:
    return store.record_signup(
        signup_id,
        reader.email,
        reader_json(reader),
        now=now,
        expires_at=expires,
        daily_cap=DAILY_MAILS,
    )


def _signup(store: Store | None, signup_id: str) -> Signup | None:
    return store.get_signup(signup_id) if store is not None else None


def _confirm(
    store: Store, signup_id: str, reader: Subscriber, now: datetime, lookback_days: int
) -> str:
    """Save the reader, then mark the sign-up confirmed (a crash in between leaves the link
    working). "subscribed", "already" (a replay), "config" (the config lists this reader and
    wins: nothing changed), or "blocked"."""
    signup = store.get_signup(signup_id)
    if signup is None or signup.confirmed_at is not None:
        return "already"
    if store.is_blocked(reader.email):
        return "blocked"
    known = store.reader_origin(reader.email)
    if known is not None and known[0] == "config" and known[1]:
        if known[2]:  # they had unsubscribed: signing up again brings them back
            store.set_unsubscribed(reader.email, False, now=now)
        store.mark_signup_confirmed(signup_id, now=now)
        return "config"
    store.save_readers([reader], origin="signup", now=now, lookback_days=lookback_days)
    if known is not None and known[2]:
        store.set_unsubscribed(reader.email, False, now=now)
    return "subscribed" if store.mark_signup_confirmed(signup_id, now=now) else "already"
