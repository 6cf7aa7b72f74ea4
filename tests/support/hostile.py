"""Sources whose text is hostile in every way issue 25 names, and a checker for the outputs.

Each source mixes good papers with hostile ones, so a test sees both that the hostile text
comes out valid and that no good entry is lost:

    page_body() -> bytes      # an HF Daily Papers page (data-props JSON with \\ud800 escapes,
                              # &#xD800; and &#0; references, raw invalid UTF-8 bytes)
    api_body() -> bytes       # an HF API response (JSON \\ud800 and \\u0000, invalid UTF-8)
    feed_body() -> bytes      # an RSS feed (&#xD800;, &#0;, raw NUL, invalid UTF-8, a broken
                              # link, an entry with nothing but invisible characters as title)
    serve_all(http_server) -> list[dict]   # the three served; [[source]] tables for a config
    PAGE_IDS, API_IDS, FEED_IDS            # the ids each must give (every usable entry)
    text_problems(text, what) -> list[str] # what is wrong with an output string ([] = clean)

Helper E's web-page test and the mail test use the same sources and the same checker.
"""

from __future__ import annotations

import copy
import json
import unicodedata
from typing import Any

from digest.text import WORD_CHARS
from tests.support.helpers import hf_items, hf_page

SURROGATE = "\ud800"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
ZERO_WIDTH = "\u200b\ufeff\u2060\u00ad\u200d\u200c"  # joiners here stand between ASCII letters
CONTROL = "\x01\x07\x08\x0b\x0c\x1b\x7f\x85\x9b"
HUGE_WORD = "W" * 10_000
HUGE_TITLE = "long title " * 9_100  # 100,100 characters
# Text real papers hold, which must survive: a ZWNJ inside a Persian word, a ZWJ emoji, a
# subdivision flag (tag characters), an emoji with its variation selector, CJK, and "é"
# decomposed (NFC composes it).
KEPT = "می\u200cخواهم 👩\u200d🔬 \U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f ❤\ufe0f 注意力 e\u0301"
KEPT_NFC = unicodedata.normalize("NFC", KEPT)

# Characters no output may hold (outside markup the templates write themselves).
FORBIDDEN = frozenset(
    [chr(c) for c in range(0x00, 0x20) if chr(c) not in "\t\n\r"]
    + [chr(c) for c in range(0x7F, 0xA0)]
    + list(BIDI + "\u200b\ufeff\u2060\u2061\u2062\u2063\u2064\u00ad\ufffe\uffff")
)
_BAD_BYTES = "__BAD_BYTES__"
_INVALID_UTF8 = b"\xff\xfe\xc3("


def text_problems(text: str, what: str = "text", *, max_line: int | None = None) -> list[str]:
    """Every way `text` is not clean output: a surrogate, a forbidden character, a joiner
    beside an ASCII character or a space, a line longer than `max_line`. [] when clean."""
    problems = []
    for index, char in enumerate(text):
        if "\ud800" <= char <= "\udfff":
            problems.append(f"{what}: a surrogate at {index}")
        elif char in FORBIDDEN:
            problems.append(f"{what}: U+{ord(char):04X} at {index}")
        elif char in "\u200c\u200d":
            around = text[max(0, index - 1) : index] + text[index + 1 : index + 2]
            if len(around) < 2 or any(c.isascii() or c.isspace() for c in around):
                problems.append(f"{what}: a joiner beside {around!r} at {index}")
    if max_line is not None:
        for number, line in enumerate(text.splitlines(), 1):
            if len(line) > max_line:
                problems.append(f"{what}: line {number} has {len(line)} characters")
    return problems[:20]


def _hostile_items() -> list[dict[str, Any]]:
    """Six good items of a real day and six hostile ones (ids 2611.2000N)."""
    base = hf_items()
    good = copy.deepcopy(base[:6])
    hostile = []
    titles = [
        f"Surrogate {SURROGATE} and \udfff in a title",
        f"Bidi {BIDI}override{BIDI} and control {CONTROL} nul \x00 title",
        f"Zero{ZERO_WIDTH}width and kept text {KEPT}",
        f"Word {HUGE_WORD} end",
        HUGE_TITLE,
        f"Bad bytes {_BAD_BYTES} in a title",
    ]
    for i, title in enumerate(titles):
        item = copy.deepcopy(base[6 + i])
        paper = item["paper"]
        paper["id"] = f"2611.2000{i}"
        paper["title"] = item["title"] = title
        paper["summary"] = (
            f"{CONTROL}{BIDI}{SURROGATE} {HUGE_WORD} {_BAD_BYTES} " + paper["summary"]
        )
        authors = paper.get("authors") or [{"name": "A. Author"}]
        authors[0]["name"] = f"Mallory{BIDI}{ZERO_WIDTH}\x00{SURROGATE}"
        paper["authors"] = authors
        paper["ai_summary"] = f"{HUGE_WORD}{BIDI} summary"
        hostile.append(item)
    return good + hostile


ITEMS = _hostile_items()
API_IDS = [item["paper"]["id"] for item in ITEMS]
PAGE_IDS = API_IDS


def api_body() -> bytes:
    """The HF API's JSON: lone surrogates and NUL as JSON escapes (valid JSON), bidi and
    zero-width characters raw, and raw bytes that are not UTF-8."""
    body = json.dumps(ITEMS, ensure_ascii=True).encode("ascii")
    return body.replace(_BAD_BYTES.encode(), _INVALID_UTF8)


def page_body() -> bytes:
    """The HF page holding ITEMS: in its data-props, lone surrogates as JSON escapes, and
    &#xD800; / &#0; references; raw invalid UTF-8 bytes; the rest raw UTF-8."""
    items = copy.deepcopy(ITEMS)
    for item in items:
        for key in ("title",):
            item["paper"][key] = item["paper"][key].replace(SURROGATE, "__LONE__")
            item["paper"][key] = item["paper"][key].replace("\udfff", "__REF__")
        item["title"] = item["paper"]["title"]
        item["paper"]["summary"] = item["paper"]["summary"].replace(SURROGATE, "__LONE__")
        item["paper"]["ai_summary"] = item["paper"]["ai_summary"].replace(SURROGATE, "__LONE__")
        for author in item["paper"]["authors"]:
            author["name"] = author["name"].replace(SURROGATE, "__LONE__")
    page = hf_page(items)
    # In the attribute, JSON's "\ud800" escape and HTML references to a surrogate and NUL.
    page = page.replace("__LONE__", "\\ud800").replace("__REF__", "&#xD800;&#0;")
    return page.encode("utf-8").replace(_BAD_BYTES.encode(), _INVALID_UTF8)


# Titles and descriptions as they stand in the XML (descriptions hold escaped HTML).
_FEED_GOOD = [
    ("2611.30001", "A Good Paper on Retrieval", "A plain abstract."),
    ("2611.30002", "Another Good Paper", "With &lt;b&gt;markup&lt;/b&gt; &amp;amp; an entity."),
]
_FEED_HOSTILE = [
    ("2611.30003", "Surrogate &#xD800; and &#xDFFF; title", "Ref &amp;#xD800; in HTML"),
    ("2611.30004", "Nul &#0; and raw \x00 and &#x1B; title", "&#x110000; past the last"),
    ("2611.30005", f"Bidi {BIDI} zero {ZERO_WIDTH} title", f"{CONTROL} control"),
    ("2611.30006", f"Word {HUGE_WORD} title", f"{HUGE_WORD} abstract"),
    ("2611.30007", f"Bad bytes {_BAD_BYTES} title", f"{_BAD_BYTES} abstract"),
    ("2611.30008", f"Kept {KEPT} title", "abstract"),
]
FEED_IDS = [arxiv_id for arxiv_id, _, _ in _FEED_GOOD + _FEED_HOSTILE]


def feed_body() -> bytes:
    """An RSS feed: good items, hostile ones, one whose link is not a URL (and no arXiv id)
    and one whose title is nothing but invisible characters (both skipped, with a warning)."""
    items = []
    for arxiv_id, title, abstract in _FEED_GOOD + _FEED_HOSTILE:
        items.append(
            f"<item><title>{title}</title><link>https://arxiv.org/abs/{arxiv_id}</link>"
            f"<description>{abstract}</description>"
            f"<guid>oai:arXiv.org:{arxiv_id}v1</guid><dc:creator>Ann Lee, Bo{BIDI} Chen"
            "</dc:creator></item>"
        )
    items.append("<item><title>Broken link</title><link>http://[bad</link></item>")
    items.append(
        f"<item><title>{ZERO_WIDTH}{BIDI}</title>"
        "<link>https://arxiv.org/abs/2611.30009</link></item>"
    )
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        "<title>hostile</title><link>https://example.org/</link><description>d</description>"
        + "".join(items)
        + "</channel></rss>"
    )
    return xml.encode("utf-8").replace(_BAD_BYTES.encode(), _INVALID_UTF8)


def serve_all(http_server: Any) -> list[dict[str, str]]:
    """Serve the three on `http_server`; the [[source]] tables of a config that reads them."""
    page = http_server.serve("/papers", page_body(), content_type="text/html; charset=utf-8")
    api = http_server.serve("/api/daily_papers", api_body(), content_type="application/json")
    feed = http_server.serve("/feed.xml", feed_body(), content_type="application/rss+xml")
    return [
        {"type": "hf-papers", "url": page, "name": "hostile-page"},
        {"type": "hf-api", "url": api, "name": "hostile-api"},
        {"type": "feed", "url": feed, "name": "hostile-feed"},
    ]


__all__ = [
    "API_IDS",
    "FEED_IDS",
    "FORBIDDEN",
    "KEPT_NFC",
    "PAGE_IDS",
    "WORD_CHARS",
    "api_body",
    "feed_body",
    "page_body",
    "serve_all",
    "text_problems",
]
