"""The web side's HTML pages: jinja2 templates in digest/web/templates, autoescaped.

Small, self-contained pages (inline CSS, no scripts, no fonts, no images from elsewhere) that
read well on a phone and follow the system's dark mode.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse

from digest.render.clean import TITLE_CHARS, clean


@functools.cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("digest.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def page(
    template: str,
    *,
    title: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    html = environment().get_template(template).render(title=title, **values)
    return HTMLResponse(html, status_code=status, headers=dict(headers or {}))


def message(
    status: int,
    heading: str,
    *lines: str,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page that only says something: errors, the index, "not available"."""
    return page(
        "message.html.j2",
        title=heading,
        status=status,
        headers=headers,
        heading=heading,
        lines=list(lines),
    )


def invalid_link() -> HTMLResponse:
    return message(
        404,
        "This link does not work",
        "It may be incomplete (some mail programs cut long links), or it is from a digest "
        "sent before the service's links were renewed.",
        "Open the link from your most recent digest.",
    )


def too_many(retry_after: int) -> HTMLResponse:
    return message(
        429,
        "One moment, please",
        "There were a lot of requests from your address just now.",
        f"Please try again in {_seconds(retry_after)}.",
        headers={"Retry-After": str(retry_after)},
    )


def busy(retry_after: int) -> HTMLResponse:
    """The state (or the server) is busy: nothing was changed, try again."""
    return message(
        503,
        "One moment, please",
        "The digest is busy just now, so nothing was changed.",
        f"Please try again in {_seconds(retry_after)}.",
        headers={"Retry-After": str(retry_after)},
    )


def _seconds(n: int) -> str:
    return f"{n} second{'' if n == 1 else 's'}"


def display_text(text: str) -> str:
    """Text from a source as a page shows it: cleaned as the mail cleans it (no control or
    bidi characters, one line, cut to a title's length), and valid UTF-8 (jinja2 escapes it)."""
    # The mail's own cleaning for now; the one cleaning function for all input replaces it.
    cleaned = clean(text, TITLE_CHARS)
    return cleaned.encode("utf-8", "replace").decode("utf-8")


# Friendly pages for the statuses the app itself or Starlette's routing can answer with.
_STATUS_PAGES = {
    400: ("That request did not look right", "Please use the button on the page."),
    404: ("Nothing here", "Check the link in your email."),
    405: ("That does not work here", "Please use the link or button from your email."),
    411: ("That request did not look right", "Please use the button on the page."),
    413: ("That request was too large", "Please use the button on the page."),
    415: ("That request did not look right", "Please use the button on the page."),
    500: ("Something went wrong on our side", "Please try again in a little while."),
}


def for_status(status: int, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    heading, line = _STATUS_PAGES.get(status, ("That did not work", "Please try again."))
    return message(status, heading, line, headers=headers)


def mask_email(email: str) -> str:
    """ "a…@example.org": enough for the reader to recognise, not more for whoever holds the
    link (a forwarded mail)."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}…@{domain}" if domain else "…"
