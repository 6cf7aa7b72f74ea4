"""The signed links a digest carries to the web side (what the pipeline puts into a mail).

    unsubscribe_url(web, secret, subscriber) -> "{base_url}/u/{token}"
    digest_links(web, secret, subscriber, digest_date, paper_ids) -> DigestLinks
        view:   "{base_url}/v/{token}"           the digest in a browser
    profile_url(web, secret, subscriber, issued) -> "{base_url}/p/{token}"  (expires)
        papers: {id: PaperLinks(more="{base_url}/f/{token}", less="{base_url}/f/{token}")}

Each URL starts with the configured base_url and a one-letter route, so the links in a mail
are easy to recognise (tests find them by prefix). A paper whose id cannot go into a link
(a normalised link longer than tokens.MAX_SUBJECT_BYTES) simply gets no feedback links.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from digest.config import WebConfig
from digest.models import DigestLinks, PaperLinks
from digest.web.tokens import make_token

UNSUBSCRIBE_PATH = "/u/"
FEEDBACK_PATH = "/f/"
VIEW_PATH = "/v/"
PROFILE_PATH = "/p/"
PROFILE_LINK_DAYS = 60  # a profile link works this long after the digest (or request) it is in


def unsubscribe_url(web: WebConfig, secret: bytes, subscriber: str) -> str:
    """The one-click unsubscribe URL of this reader (List-Unsubscribe and the footer link)."""
    return web.base_url + UNSUBSCRIBE_PATH + make_token(secret, "unsubscribe", subscriber)


def view_url(web: WebConfig, secret: bytes, subscriber: str, digest_date: date | str) -> str:
    day = digest_date.isoformat() if isinstance(digest_date, date) else digest_date
    return web.base_url + VIEW_PATH + make_token(secret, "view", subscriber, day)


def profile_url(web: WebConfig, secret: bytes, subscriber: str, issued: date) -> str:
    """The reader's profile page, working for PROFILE_LINK_DAYS after `issued` (a digest's
    date: a repeated mail is the same bytes)."""
    last_day = (issued + timedelta(days=PROFILE_LINK_DAYS)).isoformat()
    return web.base_url + PROFILE_PATH + make_token(secret, "profile", subscriber, last_day)


def feedback_url(web: WebConfig, secret: bytes, subscriber: str, paper_id: str, kind: str) -> str:
    """kind: "more" (a like) or "less" (a dislike)."""
    return web.base_url + FEEDBACK_PATH + make_token(secret, kind, subscriber, paper_id)


def digest_links(
    web: WebConfig,
    secret: bytes,
    subscriber: str,
    digest_date: date | str,
    paper_ids: Iterable[str],
    *,
    profile: bool = False,
) -> DigestLinks:
    """The links of one digest; `profile`: with the reader's profile link (see
    digest.web.profile for who may use the page)."""
    papers: dict[str, PaperLinks] = {}
    for pid in paper_ids:
        try:
            papers[pid] = PaperLinks(
                more=feedback_url(web, secret, subscriber, pid, "more"),
                less=feedback_url(web, secret, subscriber, pid, "less"),
            )
        except ValueError:  # an id too long for a link: no feedback links for that paper
            continue
    day = date.fromisoformat(digest_date) if isinstance(digest_date, str) else digest_date
    return DigestLinks(
        view=view_url(web, secret, subscriber, day),
        papers=papers,
        profile=profile_url(web, secret, subscriber, day) if profile else "",
    )
