"""Text cleaning shared by the parsers: plain text, one line, no tags, no entities."""

from __future__ import annotations

import html
import re

from selectolax.lexbor import LexborHTMLParser

_WS = re.compile(r"\s+")
# Block-level tags end a line of text: put a space before them so "<p>a</p><p>b</p>" -> "a b".
_BLOCK_TAG = re.compile(
    r"<(?=/?(?:p|br|div|li|ul|ol|tr|td|th|h[1-6]|blockquote|pre|hr|table|section)\b)",
    re.IGNORECASE,
)


def collapse(text: str | None) -> str:
    """Collapse every run of whitespace (hard-wrapped lines, tabs, nbsp) to one space."""
    if not text:
        return ""
    return _WS.sub(" ", text.replace("\xa0", " ")).strip()


def html_to_text(fragment: str | None) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed.

    A real HTML parser does this, so text such as "<1 minute" or "a < b" survives.
    """
    if not fragment:
        return ""
    if "<" not in fragment and "&" not in fragment:
        return collapse(fragment)
    tree = LexborHTMLParser(_BLOCK_TAG.sub(" <", fragment), is_fragment=True)
    root = tree.root
    text = root.text(separator="") if root is not None else html.unescape(fragment)
    return collapse(text)


def detail_text(value: str | None, content_type: str | None) -> str:
    """Text of a feedparser value given its `*_detail.type`: HTML is converted, plain text
    (which feedparser has already unescaped) is only collapsed."""
    if content_type and "html" in content_type:
        return html_to_text(value)
    return collapse(value)
