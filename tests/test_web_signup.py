"""Sign-up with double opt-in ([web] signup): the form, the rules it applies, the confirmation
mail (received by a real aiosmtpd server) and its link, through httpx.ASGITransport.

The same flow against real uvicorn and in Chromium is in test_web_signup_flow.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.clock import utc_now
from digest.config import load_config
from digest.errors import ConfigError
from digest.store import Store
from digest.web.app import create_app
from digest.web.confirmations import ConfirmationSender
from digest.web.guard import RateLimiter
from digest.web.signup import DAILY_MAILS, SIGNUP_CSP, TZ_SCRIPT
from digest.web.state import StateAccess
from digest.web.tokens import make_token, token_subject
from tests.support.helpers import write_config
from tests.support.webtools import SECRET, links_with_prefix, text_of

NOW = datetime(2026, 6, 12, 9, 30, tzinfo=UTC)
BASE = "http://127.0.0.1:8080"


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class CountingState(StateAccess):
    """The state, noting each read and write a request makes (the work it does)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.calls.append(f"read {fn.__name__}")
        return await super().read(fn, *args)

    async def write(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.calls.append(f"write {fn.__name__}")
        return await super().write(fn, *args)


def make_config(tmp_path: Path, signup: str = "open", domains: tuple[str, ...] = ()) -> Any:
    path = write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=[{"email": "ada@example.org"}],
    )
    with path.open("a", encoding="utf-8") as f:
        f.write(f'[web]\nbase_url = "{BASE}"\nsignup = "{signup}"\n')
        if domains:
            f.write("allowed_domains = [" + ", ".join(f'"{d}"' for d in domains) + "]\n")
    return load_config(path)


class Site:
    """The app over a config, a movable clock, a counting state and a sender whose mails go to
    the test's aiosmtpd server."""

    def __init__(self, config: Any, smtp_server: Any, **app: Any) -> None:
        self.config = config
        self.clock = Clock()
        self.state = CountingState(config.digest.state)
        self.smtp = smtp_server
        self.sender = ConfirmationSender(
            config, SECRET.encode(), smtp_server.mailer(retries=1), clock=self.clock
        )
        self.app = create_app(config, clock=self.clock, state=self.state, sender=self.sender, **app)

    def call(
        self, method: str, url: str, client: str = "203.0.113.7", **kwargs: Any
    ) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=(client, 40000))
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
                return await http.request(method, url, **kwargs)

        return asyncio.run(go())

    def sign_up(self, email: str, client: str = "203.0.113.7", **fields: str) -> httpx.Response:
        form = {
            "email": email,
            "interests": "graph neural networks, link prediction",
            "timezone": "Europe/Berlin",
            "send_at": "07:30",
            "website": "",
            **fields,
        }
        return self.call("POST", "/signup", client=client, data=form)

    def send_mails(self) -> int:
        return asyncio.run(self.sender.send_due())

    def mails_to(self, email: str) -> list[Any]:
        return [m for m in self.smtp.messages if email in m.rcpt_tos]

    def link_in(self, received: Any) -> str:
        [link] = links_with_prefix(text_of(received.message), BASE + "/c/")
        return link.removeprefix(BASE)

    def store(self) -> Store:
        return Store.open(self.config.digest.state)


@pytest.fixture
def site(tmp_path, smtp_server, monkeypatch) -> Site:
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    return Site(make_config(tmp_path), smtp_server)


# --- config -----------------------------------------------------------------------------------


def test_signup_is_off_unless_configured_and_domains_need_a_list(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    path = write_config(tmp_path / "digest.toml", sources=[], subscribers=[])
    path.write_text(
        path.read_text().replace("[delivery]", '[web]\nbase_url = "https://x.org"\n[delivery]')
    )
    config = load_config(path)
    assert config.web is not None
    assert (config.web.signup, config.web.allowed_domains) == ("off", ())
    app = create_app(config)
    for method, url in (("GET", "/signup"), ("POST", "/signup"), ("GET", "/c/" + "A" * 40)):
        assert _call(app, method, url).status_code == 404

    def error(web: str) -> str:
        text = path.read_text().replace(
            'base_url = "https://x.org"\n', f'base_url = "https://x.org"\n{web}'
        )
        (tmp_path / "bad.toml").write_text(text)
        with pytest.raises(ConfigError) as info:
            load_config(tmp_path / "bad.toml")
        return str(info.value)

    assert 'signup = "domains" needs allowed_domains' in error('signup = "domains"\n')
    assert 'allowed_domains is set but signup = "open"' in error(
        'signup = "open"\nallowed_domains = ["uni-example.de"]\n'
    )
    assert "'https://uni-example.de' is not a domain" in error(
        'signup = "domains"\nallowed_domains = ["https://uni-example.de"]\n'
    )
    assert "signup = 'maybe' is not one of off, open, domains" in error('signup = "maybe"\n')
    good = path.read_text().replace(
        'base_url = "https://x.org"\n',
        'base_url = "https://x.org"\nsignup = "domains"\nallowed_domains = ["Uni-Example.DE", "@lab.org"]\n',
    )
    (tmp_path / "good.toml").write_text(good)
    web = load_config(tmp_path / "good.toml").web
    assert web is not None and web.allowed_domains == ("uni-example.de", "lab.org")


def _call(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            return await http.request(method, url, **kwargs)

    return asyncio.run(go())


# --- the form ---------------------------------------------------------------------------------


def test_the_form_presets_the_time_zone_with_a_hashed_script_under_a_strict_csp(site):
    response = site.call("GET", "/signup")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert csp == SIGNUP_CSP
    [script_src] = [d.strip() for d in csp.split(";") if d.strip().startswith("script-src")]
    assert "unsafe" not in csp.replace("style-src 'unsafe-inline'", "")
    assert script_src.startswith("script-src 'sha256-") and "'self'" not in script_src
    # The one script on the page is exactly the hashed one.
    assert re.findall(r"<script>(.*?)</script>", response.text, re.S) == [TZ_SCRIPT]
    for name in ("email", "interests", "timezone", "send_at", "website"):
        assert f'name="{name}"' in response.text
    assert "<option selected>UTC</option>" in response.text  # the config's default
    assert 'value="07:00"' in response.text
    assert "set-cookie" not in response.headers


def test_every_address_gets_the_same_answer_with_the_same_work(site):
    """New, known (in the config), blocked and over-the-cap addresses: the same status and body,
    one state write each (the same one), and no mail sent during the request."""
    with site.store() as store:
        store.block_address("mallory@example.org", now=NOW)
        store.save_readers(
            [load_config(site.config.path).subscribers[0]],
            origin="config",
            now=NOW,
            lookback_days=3,
        )
    for _ in range(DAILY_MAILS):
        assert site.sign_up("capped@example.org", client="198.51.100.1").status_code == 200
    answers = {}
    for email in (
        "new@example.org",
        "ada@example.org",
        "mallory@example.org",
        "capped@example.org",
    ):
        site.state.calls.clear()
        response = site.sign_up(email, client=f"192.0.2.{len(answers) + 1}")
        answers[email] = (response.status_code, response.text, list(site.state.calls))
    assert len(set(map(str, answers.values()))) == 1, answers
    status, body, calls = answers["new@example.org"]
    assert status == 200 and "Check your inbox" in body and "new@example.org" not in body
    assert calls == ["write _record"]
    assert site.smtp.messages == []  # nothing is sent on the request path
    assert site.send_mails() == DAILY_MAILS + 2  # capped x3, new, ada; not mallory, not the 4th
    assert site.mails_to("mallory@example.org") == []
    assert len(site.mails_to("capped@example.org")) == DAILY_MAILS


def test_a_form_on_another_site_cannot_post_here(site):
    refused = site.call(
        "POST",
        "/signup",
        data={"email": "kim@example.org"},
        headers={"origin": "https://evil.example"},
    )
    assert refused.status_code == 403 and site.state.calls == []
    for header in ({"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"}):
        refused = site.call("POST", "/signup", data={"email": "kim@example.org"}, headers=header)
        assert refused.status_code == 403 and site.state.calls == []
    allowed = site.call(
        "POST",
        "/signup",
        data={"email": "kim@example.org", "send_at": "07:00"},
        headers={"origin": "null", "sec-fetch-site": "same-origin"},  # what Chromium sends
    )
    assert allowed.status_code == 200 and site.state.calls == ["write _record"]


def test_the_honeypot_answers_alike_and_records_nothing(site):
    response = site.sign_up("bot@example.org", website="http://spam.example")
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert site.state.calls == []
    assert site.send_mails() == 0 and site.smtp.messages == []


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"email": "not-an-address"}, "is not an email address"),
        ({"timezone": "Mars/Olympus"}, "is not a known time zone"),
        ({"send_at": "25:00"}, "is not a time"),
        ({"interests": "x" * 150}, "at most 100 are allowed"),
        ({"interests": "x, " * 1000}, "at most 2000 characters"),
    ],
)
def test_bad_input_is_refused_with_the_configs_rules_and_the_form_kept(site, fields, problem):
    form = {"email": "new@example.org", **fields}
    response = site.sign_up(form.pop("email"), **form)
    assert response.status_code == 400
    assert problem in response.text and 'role="alert"' in response.text
    assert "data-chosen" in response.text  # the browser's zone does not overwrite the choice
    assert site.state.calls == []


def test_the_domain_allow_list(tmp_path, smtp_server, monkeypatch):
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    site = Site(make_config(tmp_path, "domains", ("uni-example.de",)), smtp_server)
    form = site.call("GET", "/signup")
    assert "addresses at uni-example.de" in form.text
    for email in ("ada@example.org", "eve@uni-example.de.evil.org", "eve@xuni-example.de"):
        response = site.sign_up(email)
        assert response.status_code == 400
        assert "sign-ups from addresses at uni-example.de only" in response.text
    for email in ("kim@uni-example.de", "lee@cs.UNI-example.de"):
        assert "Check your inbox" in site.sign_up(email).text
    assert site.send_mails() == 2
    assert sorted(r for m in site.smtp.messages for r in m.rcpt_tos) == [
        "kim@uni-example.de",
        "lee@cs.uni-example.de",
    ]


def test_a_client_that_posts_too_often_is_rate_limited(tmp_path, smtp_server, monkeypatch):
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    limiter = RateLimiter(burst=3, per_second=1 / 120, clock=lambda: 0.0)
    site = Site(make_config(tmp_path), smtp_server, signup_limiter=limiter)
    for i in range(3):
        assert site.sign_up(f"r{i}@example.org").status_code == 200
    refused = site.sign_up("r3@example.org")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "120"
    assert site.sign_up("r3@example.org", client="192.0.2.99").status_code == 200
    assert site.call("GET", "/signup").status_code == 200  # the form itself is not limited


def test_each_address_gets_a_few_confirmation_mails_a_day(site):
    for i in range(DAILY_MAILS + 2):
        assert "Check your inbox" in site.sign_up("kim@example.org", client=f"192.0.2.{i}").text
    assert site.send_mails() == DAILY_MAILS
    site.clock.advance(days=1)
    assert "Check your inbox" in site.sign_up("kim@example.org", client="192.0.2.99").text
    assert site.send_mails() == 1
    assert len(site.mails_to("kim@example.org")) == DAILY_MAILS + 1


def test_a_large_body_is_refused_unread(site):
    response = site.call(
        "POST",
        "/signup",
        content=b"email=a%40b.org&interests=" + b"x" * 9000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert site.state.calls == []


# --- the confirmation link ------------------------------------------------------------------


def test_the_mail_link_confirms_only_with_the_button_and_a_replay_is_harmless(site):
    site.sign_up("kim@example.org")
    assert site.send_mails() == 1
    [received] = site.mails_to("kim@example.org")
    assert received.message["Subject"] == "Confirm your paper digest"
    assert received.message["From"] == "Paper Digest <digest@example.org>"
    assert "graph neural networks, link prediction" in text_of(received.message)
    link = site.link_in(received)

    for _ in range(3):  # a link scanner's GETs (and HEAD) subscribe nobody
        page = site.call("GET", link)
        assert page.status_code == 200 and "Confirm your digest" in page.text
        assert "k…@example.org" in page.text and "kim@example.org" not in page.text
    assert site.call("HEAD", link).status_code == 200
    with site.store() as store:
        assert store.active_readers(["kim@example.org"]) == []

    done = site.call("POST", link)
    assert done.status_code == 200 and "You're subscribed" in done.text
    assert "07:30 (Europe/Berlin)" in done.text
    with site.store() as store:
        [reader] = store.active_readers(["kim@example.org"])
        [listed] = [r for r in store.reader_listing() if r.email == "kim@example.org"]
    assert dict(reader.keywords) == {"graph neural networks": 1.0, "link prediction": 1.0}
    assert (reader.timezone, f"{reader.send_at:%H:%M}") == ("Europe/Berlin", "07:30")
    assert (listed.origin, listed.active) == ("signup", True)

    again = site.call("POST", link)  # a replay: nothing new
    assert again.status_code == 200 and "Already confirmed" in again.text
    assert "Already confirmed" in site.call("GET", link).text
    assert site.send_mails() == 0  # the mail is sent once


def test_expired_forged_and_cross_reader_links_do_nothing(site):
    site.sign_up("kim@example.org")
    site.sign_up("lee@example.org")
    site.send_mails()
    kim = site.link_in(site.mails_to("kim@example.org")[0])
    lee = site.link_in(site.mails_to("lee@example.org")[0])
    token = kim.removeprefix("/c/")
    subject = token_subject(token, ("confirm",))
    assert subject is not None
    secret = SECRET.encode()
    forged = {
        "a changed character": "/c/" + token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
        "another secret": "/c/" + make_token(b"x" * 40, "confirm", "kim@example.org", subject),
        "kim's sign-up for eve": "/c/" + make_token(secret, "confirm", "eve@example.org", subject),
        "kim's sign-up, lee's address": "/c/"
        + make_token(secret, "confirm", "lee@example.org", subject),
        "another purpose": "/c/" + make_token(secret, "unsubscribe", "kim@example.org"),
        "no sign-up": "/c/"
        + make_token(secret, "confirm", "kim@example.org", "0" * 24 + ".9999999999"),
        "a longer expiry": "/c/"
        + make_token(secret, "confirm", "kim@example.org", subject.split(".")[0] + ".9999999999"),
        "not a token": "/c/hello",
    }
    for name, link in forged.items():
        for method in ("GET", "POST"):
            response = site.call(method, link)
            assert response.status_code == 404, (name, method)
            assert "This link does not work" in response.text
    assert site.call("GET", "/u/" + token).status_code == 404  # a confirm token elsewhere
    with site.store() as store:
        assert store.active_readers(["kim@example.org", "lee@example.org", "eve@example.org"]) == []

    site.clock.advance(hours=48)
    for method in ("GET", "POST"):
        expired = site.call(method, kim)
        assert expired.status_code == 410 and "This link has expired" in expired.text
    with site.store() as store:
        assert store.active_readers(["kim@example.org"]) == []
    site.clock.advance(hours=-1)
    assert "You're subscribed" in site.call("POST", lee).text  # lee's own link, in time


def test_blocked_addresses_get_no_mail_and_cannot_confirm(site):
    site.sign_up("kim@example.org")
    site.sign_up("lee@example.org")
    site.send_mails()
    lee = site.link_in(site.mails_to("lee@example.org")[0])
    site.sign_up("kim@example.org")  # a second mail, not sent yet
    with site.store() as store:
        store.block_address("kim@example.org", now=NOW)
        store.block_address("lee@example.org", now=NOW)
    assert site.send_mails() == 0
    assert len(site.mails_to("kim@example.org")) == 1
    refused = site.call("POST", lee)
    assert refused.status_code == 403 and "cannot sign up here" in refused.text
    with site.store() as store:
        assert store.active_readers(["lee@example.org"]) == []


def test_a_reader_in_the_config_stays_as_the_config_says_and_one_who_left_comes_back(site):
    with site.store() as store:
        store.sync_config_readers(site.config.subscribers, now=NOW, lookback_days=3)
        store.set_unsubscribed("ada@example.org", True, now=NOW)
        store.save_readers(
            [load_config(site.config.path).subscribers[0].__class__(email="old@example.org")],
            origin="import",
            now=NOW,
            lookback_days=3,
        )
        store.set_unsubscribed("old@example.org", True, now=NOW)
    site.sign_up("ada@example.org")
    site.sign_up("old@example.org")
    site.send_mails()
    ada = site.call("POST", site.link_in(site.mails_to("ada@example.org")[0]))
    assert "settings are kept by the people who run this digest" in ada.text
    old = site.call("POST", site.link_in(site.mails_to("old@example.org")[0]))
    assert "You're subscribed" in old.text
    with site.store() as store:
        listing = {r.email: r for r in store.reader_listing()}
        assert store.unsubscribed() == {}
    assert (listing["ada@example.org"].origin, listing["ada@example.org"].active) == (
        "config",
        True,
    )
    assert (listing["old@example.org"].origin, listing["old@example.org"].active) == (
        "signup",
        True,
    )


# --- the confirmation mail under the send log's rules --------------------------------------


def test_a_mail_left_sending_by_a_dead_worker_is_repeated_byte_for_byte_once(site):
    site.sign_up("kim@example.org")
    with site.store() as store:  # a worker that built the mail, began the send, and died
        [mail] = store.claim_signup_mails("dead", now=NOW, lease_seconds=600)
        from digest.web.confirmations import confirmation_mail

        message_id, data = confirmation_mail(site.config, SECRET.encode(), mail, now=NOW)
        assert store.store_signup_message(mail.id, "dead", message_id, data)
        store.begin_signup_send(mail.id, "dead", now=NOW)
    assert site.send_mails() == 0  # its claim holds
    site.clock.advance(minutes=11)
    assert site.send_mails() == 1
    [received] = site.mails_to("kim@example.org")
    assert received.data.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")
    with site.store() as store:
        assert store.signup_mail_status(mail.id) == ("sent", 2, True)
    site.clock.advance(hours=1)
    assert site.send_mails() == 0


def test_a_transient_refusal_is_retried_later_with_the_same_bytes(site):
    site.smtp.handler.refuse("kim@example.org", "451 4.7.1 try later", times=1)
    site.sign_up("kim@example.org")
    assert site.send_mails() == 1
    assert site.mails_to("kim@example.org") == []
    assert site.send_mails() == 0  # not before its retry time
    site.clock.advance(minutes=6)
    assert site.send_mails() == 1
    [received] = site.mails_to("kim@example.org")
    with site.store() as store:
        [signup] = store.pending_signups(now=site.clock())
        status = store.signup_mail_status(signup.id)
    assert status == ("sent", 2, False)
    assert received.message["Subject"] == "Confirm your paper digest"


# --- the operator ---------------------------------------------------------------------------


def test_subscribers_list_shows_origin_and_confirmation_and_block_unblock(site):
    site.clock.now = utc_now()  # the command's own clock: the sign-ups have not expired
    site.sign_up("kim@example.org")
    site.sign_up("lee@example.org")
    site.send_mails()
    site.call("POST", site.link_in(site.mails_to("lee@example.org")[0]))
    runner = CliRunner()
    config = str(site.config.path)
    result = runner.invoke(cli, ["subscribers", "block", "spam@example.org", "-c", config])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["subscribers", "list", "-c", config])
    assert result.exit_code == 0, result.output
    lines = {line.split("\t")[0]: line.split("\t")[1:3] for line in result.stdout.splitlines()}
    assert lines == {
        "ada@example.org": ["config", "confirmed"],
        "lee@example.org": ["signup", "confirmed"],
        "kim@example.org": ["signup", "unconfirmed"],
        "spam@example.org": ["-", "blocked"],
    }
    assert "2 readers, 2 active, 1 waiting for confirmation, 1 blocked" in result.stderr
    result = runner.invoke(cli, ["subscribers", "block", "lee@example.org", "-c", config])
    assert "no more digests" in result.output
    with site.store() as store:
        assert store.active_readers(["lee@example.org"]) == []
    assert (
        runner.invoke(cli, ["subscribers", "block", "ada@example.org", "-c", config]).exit_code == 2
    )
    assert (
        runner.invoke(cli, ["subscribers", "unblock", "lee@example.org", "-c", config]).exit_code
        == 0
    )
    assert (
        runner.invoke(cli, ["subscribers", "unblock", "lee@example.org", "-c", config]).exit_code
        == 2
    )
