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


def mark_terms(text: str, terms: Iterable[str]) -> Markup:
    """`text` escaped, with each case-insensitive occurrence of a term in <mark>.

    A term matches at the start of a word and marks the rest of that word too ("Language
    Model" marks "Language Models", "agent" marks "agents"), so a stemmed or profile spelling
    still marks what the reader sees; it never matches inside a word ("RL" in "URL").
    """
    key = tuple(sorted({t.strip() for t in terms if t.strip()}, key=lambda t: (-len(t), t)))
    pattern = _pattern(key) if key else None
    if pattern is None:
        return escape(text)
    out: list[str] = []
    pos = 0
    for match in pattern.finditer(text):
        out.append(escape(text[pos : match.start()]))
        out.append(_OPEN + escape(match.group()) + _CLOSE)
        pos = match.end()
    if not out:
        return escape(text)
    out.append(escape(text[pos:]))
    return Markup("").join(out)


@functools.lru_cache(maxsize=4096)
def _pattern(terms: tuple[str, ...]) -> re.Pattern[str] | None:
    parts = []
    for term in terms:
        body = re.escape(term).replace(r"\ ", r"\s+")
        head = r"(?<!\w)" if re.match(r"\w", term) else ""
        tail = r"\w*" if re.search(r"\w$", term) else ""
        parts.append(head + body + tail)
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None
