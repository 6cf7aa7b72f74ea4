"""Build the message for a rendered digest: the wire bytes, sent as they are.

    def make_message_id(from_email: str) -> str
    def build_wire(rendered, *, from_addr, to_addr, to_name, message_id, date,
                   unsubscribe_mailto, unsubscribe_url) -> bytes

The message is multipart/alternative (text/plain first, text/html second), UTF-8,
quoted-printable (or base64 when shorter), CRLF line ends, every line at most 78 characters but
for a long List-Unsubscribe URI (at most 998). build_wire writes the bytes directly: headers are
folded by email.policy.SMTP's header classes (with one addition: List-Unsubscribe folds between
its URIs, see ListUnsubscribeHeader) and the bodies are encoded by binascii, which is several
times faster than flattening an EmailMessage.
"""

from __future__ import annotations

import binascii
import email.policy
import functools
import hashlib
import re
from datetime import UTC, datetime
from email.headerregistry import (
    Address,
    BaseHeader,
    HeaderRegistry,
    UniqueUnstructuredHeader,
)
from email.policy import Policy
from email.utils import format_datetime, make_msgid, parseaddr
from typing import NamedTuple
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


def build_wire(
    rendered: RenderedDigest,
    *,
    from_addr: str,
    to_addr: str,
    to_name: str = "",
    message_id: str,
    date: datetime,
    unsubscribe_mailto: str,
    unsubscribe_url: str = "",
) -> bytes:
    """The digest as the exact bytes to send (SMTP DATA, or an .eml file).

    The same arguments give the same bytes (the MIME boundary derives from the Message-ID), so
    a repeated send is byte for byte the first. A CR, LF or NUL in any header value raises
    ValueError: nothing from a config or a page can inject headers.
    """
    headers = _headers(
        rendered,
        from_addr=from_addr,
        to_addr=to_addr,
        to_name=to_name,
        message_id=message_id,
        date=date,
        unsubscribe_mailto=unsubscribe_mailto,
        unsubscribe_url=unsubscribe_url,
    )
    boundary = "==digest-" + hashlib.sha256(message_id.encode()).hexdigest()[:16] + "=="
    head = "".join(_fold(name, value) for name, value in headers)
    out = [head.encode("ascii")]
    out.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode())
    for subtype, body in (("plain", rendered.text), ("html", rendered.html)):
        encoding, encoded = _encode_body(body)
        out.append(
            f"--{boundary}\r\n"
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode()
        )
        out.append(encoded)
        out.append(b"\r\n")  # the CRLF before a boundary belongs to the boundary (RFC 2046)
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


# Headers whose value is written as it is when short and plain ASCII (no folding, no words that
# could read as RFC 2047); the address headers always go through the header registry.
_PLAIN = frozenset(
    {"Subject", "Date", "Message-ID", "MIME-Version", "List-Unsubscribe-Post", "List-Id",
     "Auto-Submitted", "X-Auto-Response-Suppress"}
)  # fmt: skip
_WORD_BYTES = 45  # UTF-8 bytes per encoded word: " =?utf-8?b?" + 60 base64 + "?=" fits a line


# A display name and address the header registry writes as they are: words of letters and
# digits, and a dot-atom address (anything else is quoted or encoded by the registry).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9]+(?: [A-Za-z0-9]+)*\Z")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z")


class _PlainAddress(NamedTuple):
    """A plain name and address, written as they are: the registry's parse and fold of an
    Address cost more than the rest of the headers, and the To differs in every mail."""

    name: str
    address: str


def _to(name: str, address: str) -> _PlainAddress | Address:
    if (
        (not name or _PLAIN_NAME.match(name) is not None)
        and _PLAIN_ADDRESS.match(address) is not None
        and len(name) + len(address) + 7 <= 78
    ):
        return _PlainAddress(name, address)
    return Address(display_name=name, addr_spec=address)


def _fold(name: str, value: object) -> str:
    """One header, folded at 78 with CRLF."""
    if isinstance(value, _PlainAddress):
        if value.name:
            return f"{name}: {value.name} <{value.address}>\r\n"
        return f"{name}: {value.address}\r\n"
    if isinstance(value, str):
        return _fold_text(name, value)
    return str(POLICY.header_factory(name, value).fold(policy=POLICY))


@functools.lru_cache(maxsize=1024)
def _fold_text(name: str, value: str) -> str:
    """A header given as text (the From, the list headers repeat in every mail: cached)."""
    if (
        name in _PLAIN
        and value.isascii()
        and len(name) + 2 + len(value) <= 78
        and "=?" not in value
    ):
        return f"{name}: {value}\r\n"
    if name == "Subject" and not value.isascii():
        # The first word shares its line with the name: fewer bytes, so it fits in 78 too.
        first = (78 - len(name) - 2 - len("=?utf-8?b??=")) * 3 // 4
        return f"{name}: " + _encoded_words(value, first) + "\r\n"
    return str(POLICY.header_factory(name, value).fold(policy=POLICY))


def _encoded_words(value: str, first: int) -> str:
    """The value as RFC 2047 base64 words, one per line. (The stdlib's folding of mixed text
    and encoded words adds a space where it breaks before a word; it is also slow.)"""
    words: list[str] = []
    chunk: list[bytes] = []
    size = 0
    for char in value:
        data = char.encode("utf-8")
        if size + len(data) > (_WORD_BYTES if words else first):
            words.append(_b_word(b"".join(chunk)))
            chunk, size = [], 0
        chunk.append(data)
        size += len(data)
    if chunk:
        words.append(_b_word(b"".join(chunk)))
    return "\r\n ".join(words)


def _b_word(data: bytes) -> str:
    return "=?utf-8?b?" + binascii.b2a_base64(data, newline=False).decode("ascii") + "?="


def _patch_qp(encoded: bytes, data: bytes) -> bytes:
    """Mend the two places where binascii.b2a_qp (CRLF mode) breaks its own rules.

    It writes up to 75 characters of a line, then escapes the line's trailing space or tab in
    place ("=20", "=09"): up to 77. Such a line gets a soft break before that escape (only a
    trailing space or tab is ever escaped as =20 or =09, so a find does). And a "." that a soft
    break puts alone on a line is left as it is: it is escaped here ("=" at a line end is
    always a soft break). `data` is what was encoded: a tab in it is rare and found at memchr
    speed, a 5-byte find costs about 0.5 ns a byte."""
    for escape in (b"=20\r\n", b"=09\r\n") if b"\t" in data else (b"=20\r\n",):
        at = encoded.find(escape)
        while at != -1:
            if at + 3 - (encoded.rfind(b"\n", 0, at) + 1) > 76:
                encoded = encoded[:at] + b"=\r\n" + encoded[at:]
                at += 3
            at = encoded.find(escape, at + 5)
    if b"=\r\n.\r\n" in encoded:
        encoded = encoded.replace(b"=\r\n.\r\n", b"=\r\n=2E\r\n")
    return encoded


def _encode_body(text: str) -> tuple[str, bytes]:
    """A body as ASCII bytes with CRLF line ends, ending in CRLF: quoted-printable (readable,
    the usual case), or base64 when that is shorter (text mostly in non-Latin scripts, where
    quoted-printable would triple every byte).

    Quoted-printable lines are at most 76 characters; "=", controls, non-ASCII, a trailing
    space or tab and a line that is only "." are escaped; the line ends are the text's, soft
    breaks apart. A line starting with "." is fine (SMTP dot-stuffs it), "From " too (no mbox
    here)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    # CRLF on the bytes, not the text: a text with any character past Latin-1 is stored two or
    # four bytes a character, and its replace costs more than binascii's whole encoding.
    data = text.encode("utf-8").replace(b"\n", b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    # binascii keeps the line ends it is given: CRLF in, CRLF out (soft breaks included).
    encoded = _patch_qp(binascii.b2a_qp(data, quotetabs=False, istext=True, header=False), data)
    base64_size = (len(data) + 2) // 3 * 4 * 78 // 76
    if len(encoded) > base64_size:
        lines = [
            binascii.b2a_base64(data[i : i + 57], newline=False) for i in range(0, len(data), 57)
        ]
        return "base64", b"\r\n".join(lines) + b"\r\n"
    return "quoted-printable", encoded


def _headers(
    rendered: RenderedDigest,
    *,
    from_addr: str,
    to_addr: str,
    to_name: str,
    message_id: str,
    date: datetime,
    unsubscribe_mailto: str,
    unsubscribe_url: str,
) -> list[tuple[str, object]]:
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
    headers: list[tuple[str, object]] = [
        ("From", from_addr),
        ("To", _to(to_name, to_addr)),
        ("Subject", rendered.subject),
        ("Date", format_datetime(date)),
        ("Message-ID", message_id),
        ("MIME-Version", "1.0"),
    ]
    unsubscribe = []
    if unsubscribe_url:
        unsubscribe.append(f"<{quote(unsubscribe_url, safe=_URI_SAFE)}>")
    if unsubscribe_mailto:
        unsubscribe.append(f"<{mailto_unsubscribe(unsubscribe_mailto)}>")
    if unsubscribe:
        headers.append(("List-Unsubscribe", ", ".join(unsubscribe)))
    if unsubscribe_url:
        # RFC 8058 one-click: only meaningful with an https URL that accepts the POST.
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    list_domain = parseaddr(from_addr)[1].rpartition("@")[2].strip().lower()
    if list_domain.isascii() and list_domain:
        headers.append(("List-Id", f"<paper-digest.{list_domain}>"))
    headers.append(("Auto-Submitted", "auto-generated"))
    headers.append(("X-Auto-Response-Suppress", "OOF, AutoReply"))
    return headers


def _check(name: str, value: str) -> None:
    if any(c in value for c in _FORBIDDEN):
        raise ValueError(f"{name} must not contain CR, LF or NUL characters: {value!r}")
