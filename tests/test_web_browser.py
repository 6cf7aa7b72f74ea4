"""The reader's side in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven
by Playwright; never `playwright install`) opens links taken from mails that aiosmtpd
received, and clicks the buttons. Screenshots go to tests/artifacts/ (gitignored)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from digest.config import load_config
from digest.store import Store
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.webtools import (
    DAY1,
    SECRET,
    WebWorld,
    html_of,
    links_with_prefix,
    running_server,
)

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
def chromium_page(width: int = 390, height: int = 844, mobile: bool = True) -> Iterator[Any]:
    """A phone-sized page (or another size) in headless Chromium; console errors (CSP
    violations) collected. Playwright's sync API runs an event loop in this thread: run the
    pipeline before."""
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(
                viewport={"width": width, "height": height},
                device_scale_factor=2 if mobile else 1,
                is_mobile=mobile,
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


@pytest.mark.parametrize(("width", "height", "mobile"), [(375, 812, True), (1280, 900, False)])
def test_the_profile_link_from_a_mail_edit_keywords_go_weekly_save(
    tmp_path, http_server, smtp_server, monkeypatch, width, height, mobile
):
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    world = WebWorld(tmp_path, http_server, smtp_server)
    path = tmp_path / "profile.toml"
    world.config_for(["ada@example.org"], name=path.name)
    with path.open("a", encoding="utf-8") as f:
        f.write("profile_edit = true\n")  # [web] is the file's last table
    world.config = load_config(path)
    world.day(1, world.items[:8])
    [ada] = world.mails_to("ada@example.org")
    [profile] = set(links_with_prefix(html_of(ada), world.base + "/p/"))
    from playwright.sync_api import expect

    shot = f"profile-{width}"
    try:
        with (
            running_server(world.config, world.sock, clock=lambda: DAY1),
            chromium_page(width, height, mobile) as page,
        ):
            response = page.goto(profile)
            assert response is not None and response.status == 200
            expect(page.get_by_role("heading", level=1)).to_have_text("Your interests")
            # Nothing is wider than the screen (no sideways scrolling on a phone).
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(ARTIFACTS / f"{shot}-1-page.png"), full_page=True)
            page.get_by_label("Keywords and phrases").fill("video generation = 3\ndiffusion")
            page.get_by_label("Weekly", exact=True).check()
            page.get_by_label("Weekly on").select_option("fri")
            page.get_by_role("button", name="Save").click()
            expect(page.get_by_role("status").first).to_contain_text("Saved")
            assert page.url == profile  # the POST went to the same signed URL: no redirect
            expect(page.get_by_label("Keywords and phrases")).to_have_value(
                "video generation = 3\ndiffusion = 1"
            )
            page.screenshot(path=str(ARTIFACTS / f"{shot}-2-saved.png"), full_page=True)
            assert page.console_errors == []
    finally:
        world.sock.close()
    with Store.open(world.config.digest.state) as store:
        [reader] = store.active_readers(["ada@example.org"])
    assert reader.keywords == {"video generation": 3, "diffusion": 1}
    assert (reader.frequency, reader.weekday) == ("weekly", "fri")
