"""The web app through httpx.ASGITransport (fast): pages, validation, headers, rate limit.

The same behaviour against a real uvicorn server and real mails is in test_web_server.py.
"""

from __future__ import annotations

import asyncio
import email.policy
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.config import load_config
from digest.errors import ConfigError
from digest.models import Paper
from digest.store import Store
from digest.web.app import create_app
from digest.web.guard import CSP, RateLimiter, redact
from digest.web.links import digest_links, unsubscribe_url
from tests.support.helpers import write_config
from tests.support.webtools import SECRET

NOW = datetime(2026, 6, 12, 9, 30, tzinfo=UTC)
BASE = "http://127.0.0.1:8080"


@pytest.fixture
def config(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    path = write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=[{"email": "ada@example.org"}, {"email": "bob@example.org"}],
    )
    with path.open("a", encoding="utf-8") as f:
        f.write(f'[web]\nbase_url = "{BASE}"\n')
    return load_config(path)


def call(app: Any, method: str, url: str, client: str = "203.0.113.7", **kwargs: Any):
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            return await http.request(method, url, **kwargs)

    return asyncio.run(go())


def path_of(url: str) -> str:
    return url.removeprefix(BASE)


def links(config, email="ada@example.org", ids=("2606.00467",)):
    secret = SECRET.encode()
    return digest_links(config.web, secret, email, "2026-06-12", list(ids)), path_of(
        unsubscribe_url(config.web, secret, email)
    )


def state(config) -> Store:
    return Store.open(config.digest.state)


ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def test_get_unsubscribe_shows_a_confirm_page_and_changes_nothing(config):
    app = create_app(config, clock=lambda: NOW)
    _, unsub = links(config)
    response = call(app, "GET", unsub)
    assert response.status_code == 200
    assert "Unsubscribe from the paper digest?" in response.text
    assert "a…@example.org" in response.text and "ada@example.org" not in response.text
    assert '<form method="post"' in response.text
    assert not config.digest.state.exists()  # a GET does not even create the state
    assert call(app, "HEAD", unsub).status_code == 200


def test_one_click_post_unsubscribes_and_resubscribe_undoes_it(config):
    app = create_app(config, clock=lambda: NOW)
    _, unsub = links(config)
    response = call(app, "POST", unsub, data=ONE_CLICK)
    assert response.status_code == 200 and "You're unsubscribed" in response.text
    assert "Resubscribe" in response.text
    with state(config) as store:
        assert store.unsubscribed() == {"ada@example.org": "2026-06-12T09:30:00+00:00"}
    # Now a GET says so, with the resubscribe button (and still changes nothing).
    again = call(app, "GET", unsub)
    assert "You're unsubscribed" in again.text and "/resubscribe" in again.text
    response = call(app, "POST", unsub + "/resubscribe", data={"resubscribe": "yes"})
    assert response.status_code == 200 and "Welcome back" in response.text
    with state(config) as store:
        assert store.unsubscribed() == {}


def test_one_click_post_as_multipart_like_mail_providers_send_it(config):
    app = create_app(config, clock=lambda: NOW)
    _, unsub = links(config, "bob@example.org")
    response = call(app, "POST", unsub, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    with state(config) as store:
        assert list(store.unsubscribed()) == ["bob@example.org"]


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": {"List-Unsubscribe": "Yes-Please"}}, 400),
        ({"data": {}}, 400),
        ({"content": json.dumps(ONE_CLICK), "headers": {"content-type": "application/json"}}, 415),
        (
            {
                "content": b"List-Unsubscribe=One-Click&" + b"x" * 5000,
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            413,
        ),
        (
            {
                "content": b"List-Unsubscribe=One-Click",
                "headers": {"content-type": "multipart/form-data"},
            },
            400,
        ),
        (
            {
                "content": b"\xff\xfe=\xff",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            400,
        ),
    ],
)
def test_a_post_that_is_not_the_one_click_form_changes_nothing(config, kwargs, status):
    app = create_app(config, clock=lambda: NOW)
    _, unsub = links(config)
    response = call(app, "POST", unsub, **kwargs)
    assert response.status_code == status
    assert "<h1>" in response.text and response.headers["content-security-policy"] == CSP
    if config.digest.state.exists():
        with state(config) as store:
            assert store.unsubscribed() == {}


def test_a_chunked_body_without_length_is_still_capped(config):
    app = create_app(config, clock=lambda: NOW)
    _, unsub = links(config)

    async def body():
        for _ in range(10):
            yield b"x" * 1000

    response = call(
        app,
        "POST",
        unsub,
        content=body(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


def test_feedback_get_confirms_and_only_post_records(config):
    with state(config) as store:
        store.record_papers(
            [Paper(id="2606.00467", title="Graph <b>agents</b> that reason")], now=NOW
        )
    app = create_app(config, clock=lambda: NOW)
    digest, _ = links(config)
    more = path_of(digest.papers["2606.00467"].more)
    less = path_of(digest.papers["2606.00467"].less)

    page = call(app, "GET", more)
    assert page.status_code == 200 and "More papers like this?" in page.text
    assert "Graph &lt;b&gt;agents&lt;/b&gt; that reason" in page.text  # escaped
    assert "Yes, more like this" in page.text
    assert "Fewer papers like this?" in call(app, "GET", less).text
    with state(config) as store:
        assert store.feedback("ada@example.org") == {}

    done = call(app, "POST", more, data={"confirm": "yes"})
    assert done.status_code == 200 and "Thanks, noted" in done.text and "higher" in done.text
    with state(config) as store:
        assert store.feedback("ada@example.org") == {"2606.00467": "like"}
        assert store.feedback("bob@example.org") == {}
    earlier = call(app, "GET", less).text
    assert "You told us earlier that you wanted more papers like this one." in earlier
    call(app, "POST", less, data={"confirm": "yes"})
    with state(config) as store:
        assert store.feedback("ada@example.org") == {"2606.00467": "dislike"}


def test_bad_and_foreign_tokens_get_a_friendly_404(config):
    app = create_app(config, clock=lambda: NOW)
    digest, unsub = links(config)
    more = path_of(digest.papers["2606.00467"].more)
    view = path_of(digest.view)
    for path in (
        "/u/nonsense",
        "/u/" + "A" * 60,
        unsub[:-2],
        more.replace("/f/", "/u/"),  # a feedback token where an unsubscribe one belongs
        view.replace("/v/", "/f/"),
        unsub.replace("/u/", "/v/"),
        "/u/" + "A" * 5000,
    ):
        for method in ("GET", "POST"):
            if method == "POST" and path.startswith("/v/"):
                continue
            response = call(app, method, path, data=ONE_CLICK)
            assert response.status_code == 404, path
            assert "This link does not work" in response.text
    assert not config.digest.state.exists()


def test_the_view_page_serves_the_stored_mail_or_says_it_is_not_available(config):
    app = create_app(config, clock=lambda: NOW)
    digest, _ = links(config)
    view = path_of(digest.view)
    missing = call(app, "GET", view)
    assert missing.status_code == 404 and "This digest is not available" in missing.text

    message = EmailMessage(policy=email.policy.SMTP)
    message["Subject"] = "Paper digest"
    message.set_content("plain")
    message.add_alternative(
        "<html><head><style>p{color:red}</style></head><body><p>Hello Ada</p></body></html>",
        subtype="html",
    )
    with state(config) as store:
        store.begin_send(
            "ada@example.org",
            "2026-06-12",
            message_id="<m@x>",
            upto_seq=0,
            paper_ids=[],
            message=message.as_bytes(),
            now=NOW,
        )
    page = call(app, "GET", view)
    assert page.status_code == 200 and "<p>Hello Ada</p>" in page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CSP
    # Bob's view link for the same day does not show Ada's digest.
    bob, _ = links(config, "bob@example.org")
    assert call(app, "GET", path_of(bob.view)).status_code == 404
    assert call(app, "POST", view).status_code == 405


def test_every_response_has_the_security_headers(config):
    app = create_app(config, clock=lambda: NOW)
    _, unsub = links(config)
    for method, path in [
        ("GET", "/healthz"),
        ("GET", "/"),
        ("GET", "/nothing/here"),
        ("GET", unsub),
        ("GET", "/u/bad"),
        ("PUT", unsub),
        ("DELETE", "/healthz"),
        ("GET", "/robots.txt"),
    ]:
        response = call(app, method, path)
        headers = response.headers
        assert headers["content-security-policy"] == CSP, path
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
        assert "set-cookie" not in headers and "location" not in headers
    assert call(app, "GET", "/healthz").text == "ok\n"
    put = call(app, "PUT", unsub)
    assert put.status_code == 405 and "That does not work here" in put.text
    assert "GET" in put.headers["allow"] and "POST" in put.headers["allow"]
    assert call(app, "GET", "/nothing/here").status_code == 404


def test_the_rate_limit_is_per_client_with_a_friendly_429(config):
    ticks = [0.0]
    limiter = RateLimiter(burst=3, per_second=0.5, clock=lambda: ticks[0])
    app = create_app(config, clock=lambda: NOW, limiter=limiter)
    assert [call(app, "GET", "/").status_code for _ in range(3)] == [200, 200, 200]
    limited = call(app, "GET", "/")
    assert limited.status_code == 429 and "One moment, please" in limited.text
    assert limited.headers["retry-after"] == "2"
    assert limited.headers["content-security-policy"] == CSP
    assert call(app, "GET", "/", client="198.51.100.1").status_code == 200  # someone else
    assert call(app, "GET", "/healthz").status_code == 200  # never limited
    ticks[0] = 2.0  # one token back
    assert call(app, "GET", "/").status_code == 200
    assert call(app, "GET", "/").status_code == 429


def test_the_rate_limiter_forgets_the_least_recent_clients_first():
    limiter = RateLimiter(burst=1, per_second=0.001, max_clients=2, clock=lambda: 0.0)
    assert limiter.take("a") == 0 and limiter.take("b") == 0
    assert limiter.take("a") > 0
    assert limiter.take("c") == 0  # drops b, the least recent
    assert limiter.take("b") == 0  # b starts again with a full bucket


def test_the_access_log_never_holds_a_token(config, caplog):
    app = create_app(config, clock=lambda: NOW)
    _, unsub = links(config)
    token = unsub.rsplit("/", 1)[1]
    with caplog.at_level("INFO", logger="digest"):
        call(app, "POST", unsub, data=ONE_CLICK)
        call(app, "POST", unsub + "/resubscribe", data={})
        call(app, "GET", "/u/" + token[:-3] + "zzz")
    text = caplog.text
    assert token not in text and token[:12] not in text
    assert "POST /u/… 200" in text and "POST /u/…/resubscribe 200" in text
    assert "GET /u/… 404" in text
    assert redact("/v/abcdef") == "/v/…" and redact("/healthz") == "/healthz"


def test_without_web_or_secret_the_app_does_not_start(config, tmp_path, monkeypatch):
    monkeypatch.delenv("DIGEST_WEB_SECRET")
    with pytest.raises(ConfigError, match="DIGEST_WEB_SECRET is not set"):
        create_app(config)
    plain = load_config(
        write_config(tmp_path / "plain.toml", sources=[{"type": "hf-papers"}], subscribers=[])
    )
    with pytest.raises(ConfigError, match=r"no \[web\] table"):
        create_app(plain)


def test_the_access_log_redacts_any_token_shaped_segment(config, caplog):
    """A 36-character token plus a slash (40 characters in all) was logged in full."""
    app = create_app(config, clock=lambda: NOW)
    digest, unsub = links(config)
    token = unsub.rsplit("/", 1)[1]
    assert len(token) == 36
    more_token = path_of(digest.papers["2606.00467"].more).rsplit("/", 1)[1]
    with caplog.at_level("INFO", logger="digest"):
        for path in (
            unsub + "/",
            f"/u/{token}//",
            f"/f/{more_token}/undo/",
            f"/x/{token[:20]}",
            f"/{token}",
            f"/healthz/{token}",
        ):
            call(app, "GET", path)
    assert token[:10] not in caplog.text and more_token[:10] not in caplog.text
    assert "GET /u/…/ 404" in caplog.text and "GET /healthz/… 404" in caplog.text
    assert redact("/u/abcdef") == "/u/…" and redact("/f/Ab-9_x/undo") == "/f/…/undo"
    assert redact("/healthz") == "/healthz" and redact("/nothing/here") == "/nothing/here"


def test_a_trailing_slash_is_a_404_page_not_a_redirect(config):
    app = create_app(config, clock=lambda: NOW)
    _, unsub = links(config)
    for path in ("/healthz/", unsub + "/", "/robots.txt/"):
        response = call(app, "GET", path, headers={"Host": "evil.example"})
        assert response.status_code == 404 and "location" not in response.headers, path
    assert call(app, "POST", unsub + "/", data=ONE_CLICK).status_code == 404
    assert not config.digest.state.exists()


def test_pages_show_titles_cleaned_as_the_mail_does(config):
    hostile = "Agents\u202e\u2066 that\x07 reason\x00\n\twell \u200f" + "x" * 500
    with state(config) as store:
        store.record_papers([Paper(id="2606.00467", title=hostile)], now=NOW)
    app = create_app(config, clock=lambda: NOW)
    digest, _ = links(config)
    more = path_of(digest.papers["2606.00467"].more)
    for response in (call(app, "GET", more), call(app, "POST", more, data={"confirm": "yes"})):
        assert response.status_code == 200
        [shown] = [line for line in response.text.splitlines() if 'class="paper"' in line]
        assert "Agents that reason well" in shown
        for bad in ("\u202e", "\u2066", "\x07", "\x00", "\t"):
            assert bad not in response.text
        assert len(shown) < 400  # cut to a title's length


def test_feedback_can_be_taken_back_and_the_pages_say_what_happens(config):
    with state(config) as store:
        store.record_papers([Paper(id="2606.00467", title="Graph agents")], now=NOW)
    app = create_app(config, clock=lambda: NOW)
    digest, _ = links(config)
    more = path_of(digest.papers["2606.00467"].more)
    less = path_of(digest.papers["2606.00467"].less)

    assert "Yes, fewer like this" in call(app, "GET", less).text
    done = call(app, "POST", more, data={"confirm": "yes"})
    assert "undoes this" not in done.text and "Clicked by mistake?" in done.text
    assert f'action="{more.rsplit("/", 1)[1]}/undo"' in done.text  # relative: /f/{token}/undo
    undone = call(app, "POST", more + "/undo", data={"undo": "yes"})
    assert undone.status_code == 200 and "<h1>Taken back</h1>" in undone.text
    with state(config) as store:
        assert store.feedback("ada@example.org") == {}
    again = call(app, "POST", more + "/undo", data={"undo": "yes"})
    assert "<h1>Nothing to take back</h1>" in again.text and "“more like this”" in again.text

    # Undo takes back only what its link recorded: a later "fewer" stays.
    call(app, "POST", more, data={"confirm": "yes"})
    call(app, "POST", less, data={"confirm": "yes"})
    assert "Nothing to take back" in call(app, "POST", more + "/undo", data={}).text
    with state(config) as store:
        assert store.feedback("ada@example.org") == {"2606.00467": "dislike"}
    assert call(app, "GET", more + "/undo").status_code == 405  # a link scanner changes nothing


def test_an_unsubscribed_reader_is_told_feedback_counts_only_if_they_come_back(config):
    with state(config) as store:
        store.set_unsubscribed("ada@example.org", True, now=NOW)
    app = create_app(config, clock=lambda: NOW)
    digest, _ = links(config)
    more = path_of(digest.papers["2606.00467"].more)
    assert "this counts only if you come back" in call(app, "GET", more).text
    done = call(app, "POST", more, data={"confirm": "yes"})
    assert "You are unsubscribed: if you come back" in done.text
    assert "from the next one on" not in done.text


def test_a_state_that_cannot_be_used_is_a_503_with_retry_after_never_a_500(config, caplog):
    config.digest.state.path.write_bytes(b"this is not a SQLite file" * 100)
    app = create_app(config, clock=lambda: NOW)
    digest, unsub = links(config)
    more = path_of(digest.papers["2606.00467"].more)
    with caplog.at_level("INFO", logger="digest"):
        for method, path, data in (
            ("POST", more, {"confirm": "yes"}),
            ("GET", more, None),
            ("POST", unsub, ONE_CLICK),
            ("GET", path_of(digest.view), None),
        ):
            response = call(app, method, path, data=data)
            assert response.status_code == 503, path
            assert response.headers["retry-after"] == "5"
            assert "nothing was changed" in response.text
            assert response.headers["content-security-policy"] == CSP
    assert "Traceback" not in caplog.text
    assert "the state is not available" in caplog.text


def test_requests_past_the_in_flight_cap_get_a_503(config):
    """The Guard answers 503 past max_in_flight requests at once (open connections do not
    count: digest.web.protocol)."""
    from digest.web.guard import Guard
    from digest.web.pages import busy, too_many

    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(scope, receive, send):
        entered.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    guard = Guard(slow, limiter=RateLimiter(), too_many=too_many, busy=busy, max_in_flight=1)

    async def go():
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            first = asyncio.ensure_future(http.get("/"))
            await entered.wait()
            second = await http.get("/")
            release.set()
            return await first, second

    first, second = asyncio.run(go())
    assert first.status_code == 200 and second.status_code == 503
    assert second.headers["retry-after"] == "1"
