"""Build the MIME message for a rendered digest.

    def make_message_id(from_email: str) -> str
    def build_message(rendered, *, from_addr, to_addr, to_name, message_id, date,
                      unsubscribe_mailto, unsubscribe_url) -> email.message.EmailMessage

The message is multipart/alternative (text/plain first, text/html second), UTF-8, built with
email.policy.SMTP so that as_bytes() gives CRLF line ends and correctly folded headers (with one
addition: List-Unsubscribe folds between its URIs, see ListUnsubscribeHeader).
"""

from __future__ import annotations

import email.policy
import re
from datetime import UTC, datetime
from email.headerregistry import (
    Address,
    BaseHeader,
    HeaderRegistry,
    UniqueUnstructuredHeader,
)
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import quote

from digest.models import RenderedDigest
from digest.render import mailto_unsubscribe

_FORBIDDEN = ("\r", "\n", "\x00")
# Characters a URI may keep as they are; everything else (space, <, >, ", non-ASCII) is
# percent-encoded so the URI can sit between angle brackets in a header.
_URI_SAFE = ":/?#[]@!$&'()*+,;=%~-._"


class ListUnsubscribeHeader(UniqueUnstructuredHeader, BaseHeader):  # type: ignore[misc]
    """List-Unsubscribe folded between its <URI>s, never inside one.

    The stock folding turns a token longer than a line (any real unsubscribe URL) into
    RFC 2047 encoded-words, which mail providers do not decode in this header. Here each URI
    goes on its own line; a long one makes a long line, which RFC 5322 allows up to 998.
    """

    def fold(self, *, policy: Policy) -> str:
        uris = re.findall(r"<[^<>]*>", str(self))
        linesep = policy.linesep
        return f"{self.name}: " + f",{linesep} ".join(uris) + linesep


_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("list-unsubscribe", ListUnsubscribeHeader)
# email.policy.SMTP (CRLF line ends, folding at 78) plus the List-Unsubscribe class above.
POLICY = email.policy.SMTP.clone(header_factory=_HEADERS)


def make_message_id(from_email: str) -> str:
    """A new unique Message-ID, "<unique@domain-of-from>"."""
    domain = from_email.rpartition("@")[2].strip().strip(".").lower()
    _check("from_email", domain)
    if not domain:
        domain = "localhost"  # never reached with a validated config; keeps make_msgid fast
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = "localhost"
    return make_msgid(domain=domain)


def build_message(
    rendered: RenderedDigest,
    *,
    from_addr: str,
    to_addr: str,
    to_name: str = "",
    message_id: str,
    date: datetime,
    unsubscribe_mailto: str,
    unsubscribe_url: str = "",
) -> EmailMessage:
    """The digest as an EmailMessage, ready for SMTP or an .eml file.

    `message_id` is reused by the caller when a failed send is retried. `date` is formatted per
    RFC 5322 (a naive datetime is taken as UTC). A CR or LF in any header value raises
    ValueError: nothing from a config or a page can inject headers.
    """
    for name, value in (
        ("subject", rendered.subject),
        ("from_addr", from_addr),
        ("to_addr", to_addr),
        ("to_name", to_name),
        ("message_id", message_id),
        ("unsubscribe_mailto", unsubscribe_mailto),
        ("unsubscribe_url", unsubscribe_url),
    ):
        _check(name, value)
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)

    msg = EmailMessage(policy=POLICY)
    msg["From"] = from_addr
    msg["To"] = Address(display_name=to_name, addr_spec=to_addr)
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["MIME-Version"] = "1.0"

    # The https one-click URL first, as the issue and providers' guidance write it.
    unsubscribe = []
    if unsubscribe_url:
        unsubscribe.append(f"<{quote(unsubscribe_url, safe=_URI_SAFE)}>")
    if unsubscribe_mailto:
        unsubscribe.append(f"<{mailto_unsubscribe(unsubscribe_mailto)}>")
    if unsubscribe:
        msg["List-Unsubscribe"] = ", ".join(unsubscribe)
    if unsubscribe_url:
        # RFC 8058 one-click: only meaningful with an https URL that accepts the POST.
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    list_domain = parseaddr(from_addr)[1].rpartition("@")[2].strip().lower()
    if list_domain.isascii() and list_domain:
        msg["List-Id"] = f"<paper-digest.{list_domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"

    msg.set_content(rendered.text, subtype="plain", charset="utf-8")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8")
    return msg


def _check(name: str, value: str) -> None:
    if any(c in value for c in _FORBIDDEN):
        raise ValueError(f"{name} must not contain CR, LF or NUL characters: {value!r}")
