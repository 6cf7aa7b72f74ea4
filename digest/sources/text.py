"""Text shared by the parsers: bodies that are text (or not), and plain valid text from HTML.

Every string these return is digest.text.valid_text's: one line, no tags, no entities, no
control, bidi or zero-width characters, NFC. The Paper's bounds are applied by
digest.sources.valid when the parser builds it.
"""

from __future__ import annotations

import codecs
import html
import re

from selectolax.lexbor import LexborHTMLParser

from digest.text import TEXT_CHARS, replace_surrogates, valid_text

# Block-level tags end a line of text: put a space before them so "<p>a</p><p>b</p>" -> "a b".
_BLOCK_TAG = re.compile(
    r"<(?=/?(?:p|br|div|li|ul|ol|tr|td|th|h[1-6]|blockquote|pre|hr|table|section)\b)",
    re.IGNORECASE,
)
# Bytes no text holds (C0 controls but tab, LF, VT, FF, CR and ESC): in an image, an archive or
# compressed data about one byte in nine is one of them.
_BINARY_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x1B), *range(0x1C, 0x20)])
_NOT_BINARY = bytes(b for b in range(256) if b not in _BINARY_BYTES)
BINARY_SHARE = 0.05  # more of them than this in the first 64 KB: not text
_SAMPLE_BYTES = 65_536
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def collapse(text: str | None, limit: int = TEXT_CHARS) -> str:
    """Valid one-line text (digest.text.valid_text): every run of whitespace (hard-wrapped
    lines, tabs, nbsp) one space, invisible and control characters gone, NFC."""
    return valid_text(text, limit)


def html_to_text(fragment: str | None) -> str:
    """Plain valid text of an HTML fragment: tags dropped, entities decoded, whitespace
    collapsed.

    A real HTML parser does this, so text such as "<1 minute" or "a < b" survives; it decodes
    a reference to a surrogate or NUL (``&#xD800;``) as U+FFFD, as browsers do.
    """
    if not fragment:
        return ""
    if "<" not in fragment and "&" not in fragment:
        return collapse(fragment)
    tree = LexborHTMLParser(_BLOCK_TAG.sub(" <", replace_surrogates(fragment)), is_fragment=True)
    root = tree.root
    text = root.text(separator="") if root is not None else html.unescape(fragment)
    return collapse(text)


def detail_text(value: str | None, content_type: str | None) -> str:
    """Text of a feedparser value given its `*_detail.type`: HTML is converted, plain text
    (which feedparser has already unescaped) is only made valid."""
    if content_type and "html" in content_type:
        return html_to_text(value)
    return collapse(value)


def is_binary(body: bytes) -> bool:
    """True when `body` is not text at all (an image, an archive, compressed bytes): more than
    BINARY_SHARE of its first 64 KB are control bytes no text holds. Text with some invalid
    UTF-8 is text (decoded with U+FFFD); UTF-16 and UTF-32 with a BOM are text."""
    sample = body[:_SAMPLE_BYTES]
    if not sample or sample.startswith(_WIDE_BOMS):
        return False
    controls = len(sample.translate(None, _NOT_BINARY))
    return controls > len(sample) * BINARY_SHARE


def not_text_reason(body: bytes) -> str:
    """How to say a body is not text: its kind when the first bytes tell, for the error."""
    for magic, kind in (
        (b"\x89PNG", "a PNG image"),
        (b"GIF8", "a GIF image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"%PDF", "a PDF"),
        (b"PK\x03\x04", "a zip archive"),
        (b"\x1f\x8b", "gzip data"),
    ):
        if body.startswith(magic):
            return f"binary data ({kind})"
    return "binary data"
