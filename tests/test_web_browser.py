"""The reader's side in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven
by Playwright; never `playwright install`) opens links taken from mails that aiosmtpd
received, and clicks the buttons. Screenshots go to tests/artifacts/ (gitignored)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from digest.store import Store
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.webtools import SECRET, WebWorld, html_of, links_with_prefix, running_server

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt install chromium)",
)


@pytest.fixture
def world(tmp_path, http_server, smtp_server, monkeypatch):
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    world = WebWorld(tmp_path, http_server, smtp_server)
    yield world
    world.sock.close()


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A phone-sized page in headless Chromium; console errors (CSP violations) collected.
    Playwright's sync API runs an event loop in this thread: run the pipeline before."""
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
            )
            page = context.new_page()
            page.console_errors = []
            page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
            yield page
            context.close()
        finally:
            browser.close()


def test_a_feedback_link_from_a_mail_confirm_click_thanks(world):
    world.day(1, world.items[:8])
    [ada] = world.mails_to("ada@example.org")
    more = links_with_prefix(html_of(ada), world.base + "/f/")[0]  # paper 1's "more like this"
    from playwright.sync_api import expect

    with running_server(world.config, world.sock), chromium_page() as page:
        response = page.goto(more)
        assert response is not None and response.status == 200
        expect(page.get_by_role("heading", level=1)).to_have_text("More papers like this?")
        page.screenshot(path=str(ARTIFACTS / "feedback-1-confirm.png"), full_page=True)
        page.emulate_media(color_scheme="dark")
        page.screenshot(path=str(ARTIFACTS / "feedback-1-confirm-dark.png"), full_page=True)
        page.emulate_media(color_scheme="light")
        with Store.open(world.config.digest.state) as store:
            assert store.feedback("ada@example.org") == {}  # the GET recorded nothing

        page.get_by_role("button", name="Yes, more like this").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Thanks, noted")
        assert page.url == more  # the POST went to the same signed URL: no redirect
        page.screenshot(path=str(ARTIFACTS / "feedback-2-thanks.png"), full_page=True)
        with Store.open(world.config.digest.state) as store:
            [(paper_id, kind)] = store.feedback("ada@example.org").items()
        assert kind == "like"
        assert more in html_of(ada) and paper_id in html_of(ada)

        page.get_by_role("button", name="Undo").click()  # a POST to {more}/undo
        expect(page.get_by_role("heading", level=1)).to_have_text("Taken back")
        assert page.url == more + "/undo"
        page.screenshot(path=str(ARTIFACTS / "feedback-3-taken-back.png"), full_page=True)
        assert page.console_errors == []
    with Store.open(world.config.digest.state) as store:
        assert store.feedback("ada@example.org") == {}


def test_unsubscribe_view_and_a_bad_link_in_chromium(world, smtp_server):
    world.day(1, world.items[:8])
    [received] = [m for m in smtp_server.messages if "ada@example.org" in m.rcpt_tos]
    html = html_of(received.message)
    [unsub] = links_with_prefix(html, world.base + "/u/")
    [view] = set(links_with_prefix(html, world.base + "/v/"))
    from playwright.sync_api import expect

    with running_server(world.config, world.sock), chromium_page() as page:
        page.goto(unsub)
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Unsubscribe from the paper digest?"
        )
        page.screenshot(path=str(ARTIFACTS / "unsubscribe-1-confirm.png"), full_page=True)
        page.get_by_role("button", name="Unsubscribe").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("You're unsubscribed")
        page.screenshot(path=str(ARTIFACTS / "unsubscribe-2-done.png"), full_page=True)
        with Store.open(world.config.digest.state) as store:
            assert list(store.unsubscribed()) == ["ada@example.org"]
        page.get_by_role("button", name="Resubscribe").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Welcome back")
        page.screenshot(path=str(ARTIFACTS / "unsubscribe-3-resubscribed.png"), full_page=True)
        with Store.open(world.config.digest.state) as store:
            assert store.unsubscribed() == {}

        page.goto(view)
        expect(page.locator("a", has_text="More like this").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "view-online.png"), full_page=False)

        response = page.goto(unsub[:-4] + "AAAA")
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")
        page.screenshot(path=str(ARTIFACTS / "invalid-link.png"), full_page=True)
        # The 404 page logs a console error for its status, nothing else (no CSP violation).
        assert all("404" in e for e in page.console_errors), page.console_errors
