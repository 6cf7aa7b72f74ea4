"""Mark the terms a paper matched (`<mark>`) in its cleaned plain text, escaping everything.

The text is plain (never HTML): each piece between matches is escaped on its own and the
matches are wrapped, so a mark can never land inside an entity or a tag.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from markupsafe import Markup, escape

# Styled here: marks are made at render time, after the CSS was inlined into the templates.
# The class lets the dark-mode block in digest.html.j2 restyle them.
_OPEN = Markup('<mark class="hl" style="background:#fef08a;color:inherit">')
_CLOSE = Markup("</mark>")
_START, _END = "\x0e", "\x0f"  # control characters: digest.render.clean removes them


def mark_terms(text: str, terms: Iterable[str], *, exact: bool = False) -> Markup:
    """`text` escaped, with each case-insensitive occurrence of a term in <mark>.

    A term matches at the start of a word and marks the rest of that word too ("Language
    Model" marks "Language Models", "agent" marks "agents"), so a stemmed or profile spelling
    still marks what the reader sees; it never matches inside a word ("RL" in "URL").
    `exact`: the terms are the spellings the ranking found, marked as whole words only ("use"
    never marks "useful").
    """
    return _marked(text, frozenset(t.strip() for t in terms if t.strip()), exact)


@functools.lru_cache(maxsize=4096)
def _marked(text: str, terms: frozenset[str], exact: bool = False) -> Markup:
    """Cached: readers who match a paper mostly match it on the same few terms."""
    if _START in text or _END in text:  # never from cleaned text; kept out all the same
        text = text.replace(_START, "").replace(_END, "")
    spans = _spans(text, terms, exact)
    if not spans:
        return escape(text)
    # Marked with two characters cleaned text never holds, escaped in one call, then the
    # marks become tags: a mark can never land inside an entity.
    pieces: list[str] = []
    pos = 0
    for begin, end in spans:
        pieces += (text[pos:begin], _START, text[begin:end], _END)
        pos = end
    pieces.append(text[pos:])
    escaped = str(escape("".join(pieces)))
    return Markup(escaped.replace(_START, _OPEN).replace(_END, _CLOSE))


def _spans(text: str, terms: frozenset[str], exact: bool) -> list[tuple[int, int]]:
    """Where the terms match, leftmost first, the longest at a place, none overlapping.

    One compiled pattern per term, shared by every reader: a pattern per set of terms would be
    compiled again for nearly every (paper, reader), which cost more than the rest of the
    rendering."""
    found = sorted(
        (match.start(), -match.end())
        for term in terms
        for match in _pattern(term, exact).finditer(text)
        if match.end() > match.start()
    )
    spans: list[tuple[int, int]] = []
    for begin, negative_end in found:
        if not spans or begin >= spans[-1][1]:
            spans.append((begin, -negative_end))
    return spans


@functools.lru_cache(maxsize=4096)
def _pattern(term: str, exact: bool = False) -> re.Pattern[str]:
    body = re.escape(term).replace(r"\ ", r"\s+")
    head = r"(?<!\w)" if re.match(r"\w", term) else ""
    tail = (r"(?!\w)" if exact else r"\w*") if re.search(r"\w$", term) else ""
    return re.compile(head + body + tail, re.IGNORECASE)
