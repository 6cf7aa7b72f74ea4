"""Sign-up end to end: real uvicorn (the app's lifespan runs the confirmation sender), the
confirmation mail received by aiosmtpd, its link opened and its button pressed, in httpx and in
headless Chromium (Debian's /usr/bin/chromium; screenshots in tests/artifacts/); then the first
digest at the chosen send time."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.clock import fixed
from digest.config import load_config
from digest.run import RunOptions, send_now
from digest.store import Store
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.run import deps
from tests.support.webtools import SECRET, WebWorld, links_with_prefix, running_server, text_of
from tests.test_end_to_end import paper_ids

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SIGNED_UP_AT = datetime(2026, 6, 12, 6, 0, tzinfo=UTC)


@pytest.fixture
def world(tmp_path, http_server, smtp_server, monkeypatch):
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    world = WebWorld(tmp_path, http_server, smtp_server)
    path = world.config.path
    path.write_text(path.read_text(encoding="utf-8") + 'signup = "open"\n', encoding="utf-8")
    world.config = load_config(path)
    yield world
    world.sock.close()


def wait_for_mail(smtp_server: Any, email: str, seconds: float = 15.0) -> Any:
    """The first mail to `email` the server received, waited for (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for received in smtp_server.messages:
            if email in received.rcpt_tos:
                return received
        threading.Event().wait(0.05)
    raise AssertionError(f"no mail to {email} within {seconds} s")


@contextmanager
def serving(world: WebWorld, smtp_server: Any) -> Iterator[str]:
    with running_server(
        world.config, world.sock, clock=fixed(SIGNED_UP_AT), mailer=smtp_server.mailer(retries=2)
    ) as base:
        yield base


def test_sign_up_mail_and_confirm_against_real_uvicorn(world, smtp_server):
    with serving(world, smtp_server) as base, httpx.Client(base_url=base) as http:
        form = {"email": "kim@example.org", "interests": "agent, reasoning", "website": ""}
        answer = http.post("/signup", data={**form, "timezone": "UTC", "send_at": "08:00"})
        assert answer.status_code == 200 and "Check your inbox" in answer.text
        received = wait_for_mail(smtp_server, "kim@example.org")
        [link] = links_with_prefix(text_of(received.message), world.base + "/c/")
        assert http.get(link).status_code == 200  # a scanner's GET
        with Store.open(world.config.digest.state) as store:
            assert store.active_readers(["kim@example.org"]) == []
        done = http.post(link)
        assert done.status_code == 200 and "You're subscribed" in done.text
        assert "Already confirmed" in http.post(link).text
    with Store.open(world.config.digest.state) as store:
        [kim] = store.active_readers(["kim@example.org"])
    assert list(kim.keywords) == ["agent", "reasoning"]
    assert len([m for m in smtp_server.messages if "kim@example.org" in m.rcpt_tos]) == 1


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_sign_up_in_chromium_then_the_first_digest_then_weekly_with_new_keywords(
    world, smtp_server, real_model
):
    """The whole way, in one browser, from the mails aiosmtpd received: sign up, confirm, the
    first digest at the chosen time, "Edit your interests" from it, new keywords and weekly on
    Monday; the next digest is the weekly one, on Monday (not on Sunday), led by the keyword."""
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    ARTIFACTS.mkdir(exist_ok=True)
    world.serve_page(world.items[:8])
    with serving(world, smtp_server) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 900}, timezone_id="Asia/Tokyo"
            )
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.goto(base + "/signup")
            expect(page.get_by_role("heading", level=1)).to_have_text("Get the paper digest")
            # The hashed inline script ran under the strict CSP: the browser's zone is chosen.
            assert page.input_value("#timezone") == "Asia/Tokyo"
            page.screenshot(path=str(ARTIFACTS / "signup-1-form-1280.png"), full_page=True)
            page.set_viewport_size({"width": 375, "height": 812})
            page.screenshot(path=str(ARTIFACTS / "signup-1-form-375.png"), full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways

            page.fill("#email", "kim@example.org")
            page.fill("#interests", "agent\nlanguage model, reasoning")
            page.fill("#send_at", "08:00")
            page.get_by_role("button", name="Send me the confirmation link").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
            page.screenshot(path=str(ARTIFACTS / "signup-2-check-inbox.png"), full_page=True)

            received = wait_for_mail(smtp_server, "kim@example.org")
            [link] = links_with_prefix(text_of(received.message), world.base + "/c/")
            page.goto(link)
            expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your digest")
            page.screenshot(path=str(ARTIFACTS / "signup-3-confirm.png"), full_page=True)
            with Store.open(world.config.digest.state) as store:
                assert store.active_readers(["kim@example.org"]) == []  # the GET did nothing
            page.get_by_role("button", name="Yes, start my digest").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("You're subscribed")
            assert page.url == link  # the POST went to the same signed URL: no redirect
            page.screenshot(path=str(ARTIFACTS / "signup-4-subscribed.png"), full_page=True)
            with Store.open(world.config.digest.state) as store:
                [kim] = store.active_readers(["kim@example.org"])
            assert (kim.timezone, f"{kim.send_at:%H:%M}") == ("Asia/Tokyo", "08:00")
            assert list(kim.keywords) == ["agent", "language model", "reasoning"]

            # 08:00 in Tokyo on Saturday June 13th: the first digest (with the shipped model,
            # as a real run ranks: a sign-up's keywords all weigh the same).
            [first] = digests_to_kim(world, smtp_server, real_model, "2026-06-12T23:00")
            [profile] = links_with_prefix(text_of(first.message), world.base + "/p/")

            # "Edit your interests" from that digest: a keyword of next week's papers, weekly.
            title = re.sub(r"[^\w\s-]", " ", world.items[8]["paper"]["title"])
            keyword = " ".join(title.split()[:4])
            page.goto(profile)
            expect(page.get_by_role("heading", level=1)).to_have_text("Your interests")
            page.get_by_label("Keywords and phrases").fill(f"{keyword} = 5\nagent")
            page.get_by_label("Weekly", exact=True).check()
            page.get_by_label("Weekly on").select_option("mon")
            page.get_by_role("button", name="Save").click()
            expect(page.get_by_role("status").first).to_contain_text("Saved")
            page.screenshot(path=str(ARTIFACTS / "signup-5-profile-saved.png"), full_page=True)
            assert errors == []  # no CSP violation, no failed request
            context.close()
        finally:
            browser.close()

    # Sunday 08:00 in Tokyo: a daily reader would get a digest; a weekly-on-Monday one not.
    world.serve_page(world.items[8:16])
    assert digests_to_kim(world, smtp_server, real_model, "2026-06-13T23:00") == []
    # Monday 08:00: the weekly digest, led by the new keyword's paper.
    [weekly] = digests_to_kim(world, smtp_server, real_model, "2026-06-14T23:00")
    assert (
        "weekly" in weekly.message["Subject"].lower() or "weekly" in text_of(weekly.message).lower()
    )
    assert paper_ids(weekly.message)[0] == world.items[8]["paper"]["id"]


def digests_to_kim(world: WebWorld, smtp_server: Any, model: Any, at: str) -> list[Any]:
    """Run send-now for kim at `at` (UTC); the digests that reached kim in that run. (In a
    thread of its own: Playwright's sync API keeps an event loop running in this one.)"""
    before = len(smtp_server.messages)
    with ThreadPoolExecutor(1) as pool:
        report = pool.submit(_send_now, world, model, at).result()
    assert report.exit_code == 0, report.summary()
    return [m for m in smtp_server.messages[before:] if "kim@example.org" in m.rcpt_tos]


def _send_now(world: WebWorld, model: Any, at: str) -> Any:
    return send_now(
        world.config,
        RunOptions(fetch_backoff=0, only=("kim@example.org",)),
        deps(
            datetime.fromisoformat(at).replace(tzinfo=UTC),
            mailer=world.mailer,
            model=lambda: model,
        ),
    )
