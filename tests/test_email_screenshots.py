"""The HTML part in a real browser: Debian's chromium (headless), driven by Playwright, at a
phone's 375 px and a desktop's 600 px, light and dark. No horizontal overflow, every title
visible, the phone's larger type, the dark palette; full-page PNGs go to tests/artifacts/.

Chromium is never downloaded: the tests use /usr/bin/chromium (CI installs it with apt-get)
and are skipped, saying so, when it is not there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from digest.render import Renderer
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.digests import hostile_papers, load_papers, make_content

ARTIFACTS = Path(__file__).parent / "artifacts"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def digests() -> dict[str, str]:
    renderer = Renderer()
    papers = load_papers()
    real = make_content(papers[:15], candidates=30, trending=papers[15:])
    hostile = make_content(
        hostile_papers(30), matched=["attention", "Hostile"], trending=papers[:4]
    )
    return {"real": renderer.render(real).html, "hostile": renderer.render(hostile).html}


def open_page(browser: Any, html: str, width: int, scheme: str) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    context.route("**/*", lambda route: route.abort())  # nothing may load from anywhere
    page = context.new_page()
    page.set_content(html, wait_until="load")
    return page


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 600])
@pytest.mark.parametrize("kind", ["real", "hostile"])
def test_layout_in_chromium(
    browser: Any, digests: dict[str, str], kind: str, width: int, scheme: str
) -> None:
    page = open_page(browser, digests[kind], width, scheme)
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"digest-{kind}-{width}-{scheme}.png"), full_page=True)

        # No horizontal overflow: nothing is wider than the screen.
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{kind} at {width}px scrolls sideways: {scroll_width}px"

        # Every paper title is there, visible, and inside the screen.
        titles = page.locator("h2.title a")
        count = titles.count()
        assert count == (15 if kind == "real" else 30)
        for i in range(count):
            title = titles.nth(i)
            assert title.is_visible(), f"title {i + 1} is not visible"
            box = title.bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0
            assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (i, box)

        font = page.evaluate(
            "s => getComputedStyle(document.querySelector(s)).fontSize", "td.paper"
        )
        title_font = page.evaluate(
            "s => getComputedStyle(document.querySelector(s)).fontSize", "h2.title"
        )
        if width == 375:  # the narrow-screen block: 16 px text, a larger title
            assert (font, title_font) == ("16px", "20px")
        else:
            assert (font, title_font) == ("15px", "18px")
        footer_font = page.evaluate(
            "s => getComputedStyle(document.querySelector(s)).fontSize", "td.footer"
        )
        assert float(footer_font.removesuffix("px")) >= 13

        background = page.evaluate(
            "s => getComputedStyle(document.querySelector(s)).backgroundColor", "table.container"
        )
        if scheme == "dark":
            assert background == "rgb(31, 41, 55)"
        else:
            assert background == "rgb(255, 255, 255)"

        # Buttons are large enough to tap.
        button = page.locator("a.btn").first.bounding_box()
        assert button is not None and button["height"] >= 34
    finally:
        page.context.close()
