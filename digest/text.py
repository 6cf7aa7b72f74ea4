"""Text made valid and safe on the way in: the one place every string from outside passes
(pages, feeds, the HF API, file imports, the sign-up form) before it becomes data.

    valid_text(text, limit=None, *, multiline=False, word_limit=WORD_CHARS) -> str
    valid_url(text, limit=URL_CHARS) -> str          # an http(s) URL, or ""
    trim(text, limit) -> str                         # cut at a word boundary, ending in "…"
    replace_surrogates(text) -> str                  # only the encodability fix

What `valid_text` guarantees of its result, whatever it is given (any object; a non-str is ""):
it encodes as UTF-8 (a lone surrogate becomes U+FFFD, a well-formed pair its character); it
holds no NUL, C0 or C1 control character (tab and newline only when `multiline`), no bidi
embedding, override, isolate or mark, no zero-width space, BOM, soft hyphen, word joiner,
invisible operator, noncharacter or stray tag character; a zero-width (non-)joiner only
between two non-ASCII letters, marks or symbols (emoji sequences, Persian and Indic words), a
variation selector only right after a visible character and never two in a row; it is NFC;
one line (whitespace runs are one space) unless `multiline` (then lines end in "\\n", a run
of spaces is one, no line starts or ends in a blank, at most one empty line in a row); no run
of more than `word_limit` characters without a space (unless it is in a script written
without spaces: CJK, Thai, ...); at most `limit` characters. It is idempotent:
valid_text(valid_text(x)) == valid_text(x).

Bounds: WORD_CHARS (300) for a run without a space; by default LINE_CHARS (1,000) for one
line and TEXT_CHARS (20,000) for multi-line text; NAME_CHARS (200) for a person's or an
organisation's name; URL_CHARS (2,048) for a URL. digest.sources.valid has the bounds of
each Paper field.

It imports nothing but the standard library, so any module may use it.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

REPLACEMENT = "\ufffd"
LINE_CHARS = 1_000  # the default bound of one line
TEXT_CHARS = 20_000  # the default bound of multi-line text
WORD_CHARS = 300  # the longest run without a space (real URLs and chemical names fit)
URL_CHARS = 2_048  # the longest URL kept (browsers and mail clients agree up to here)
NAME_CHARS = 200  # a person's or an organisation's name

# Always removed: C0 controls but tab/LF/VT/FF/CR (whitespace, handled below), DEL, C1 but NEL;
# bidi marks, embeddings, overrides and isolates; zero-width space, soft hyphen, word joiner,
# invisible math operators, deprecated format controls, BOM, interlinear annotation, Mongolian
# vowel separator, the Hangul fillers that only make a name look blank; noncharacters.
_REMOVED_BMP = (
    "\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\u00ad\u180e\u200b\u2060-\u2064\u206a-\u206f\ufeff\ufff9-\ufffb\u3164\uffa0"
    "\ufdd0-\ufdef\ufffe\uffff"
)
_NONCHARACTERS_ASTRAL = "".join(
    chr(p * 0x10000 + 0xFFFE) + chr(p * 0x10000 + 0xFFFF) for p in range(1, 17)
)
_REMOVED = _REMOVED_BMP + _NONCHARACTERS_ASTRAL
# Apart, as a class with characters past U+FFFF is several times slower to scan.
_REMOVE_BMP = re.compile(f"[{_REMOVED_BMP}]")
_REMOVE_ASTRAL = re.compile(f"[{_NONCHARACTERS_ASTRAL}]")
_REMOVE_ASCII = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_PRINTABLE_REMOVED = "\u3164\uffa0"  # the only removed characters str.isprintable passes
_SURROGATE = re.compile("[\ud800-\udfff]")
_JOINERS = "\u200c\u200d"
_VARIATION = "\ufe00-\ufe0f\U000e0100-\U000e01ef"
# Characters whose meaning depends on their neighbours: checked in context.
_CONTEXTUAL_BMP = re.compile(f"[{_JOINERS}\ufe00-\ufe0f]")
_CONTEXTUAL_ASTRAL = re.compile("[\U000e0000-\U000e007f\U000e0100-\U000e01ef]")
_JOINER_RUN = re.compile(f"[{_JOINERS}]+")
_VARIATION_RUN = re.compile(f"[{_VARIATION}]+")
# A subdivision flag (England, Scotland, Wales): black flag, tag letters, cancel tag.
_TAG_FLAG = re.compile("\U0001f3f4[\U000e0020-\U000e007e]{1,30}\U000e007f")
_TAG = re.compile("[\U000e0000-\U000e007f]")
_LINE_BREAK = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
_HORIZONTAL_WS = re.compile(r"[^\S\n\t]+")
_EDGE_WS = re.compile(r"^[^\S\n]+|[^\S\n]+$", re.MULTILINE)
_BLANK_LINES = re.compile(r"\n{3,}")
# Scripts written without spaces between words: a long run of them is a sentence, not a word.
_NO_SPACE_SCRIPT = re.compile(
    "[\u0e00-\u0fff\u1000-\u109f\u1780-\u17ff\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
    "\U00020000-\U0003ffff]"
)
# What trim and the word bound take off the end of a cut: punctuation that would dangle, and
# joiners and tag characters whose sequence the cut broke.
_CUT_END = " ,;:.-–—…" + _JOINERS
_UNSAFE_IN_URL = re.compile(
    f"[{_REMOVED}{_JOINERS}{_VARIATION}\U000e0000-\U000e007f\ud800-\udfff]|[^\\S ]"
)


def valid_text(
    text: object,
    limit: int | None = None,
    *,
    multiline: bool = False,
    word_limit: int | None = WORD_CHARS,
) -> str:
    """`text` made valid and safe (see the module docstring): one line of at most `limit`
    characters (LINE_CHARS by default), or with `multiline` lines kept (TEXT_CHARS by
    default). `word_limit=None` keeps long runs (a key, a link)."""
    if limit is None:
        limit = TEXT_CHARS if multiline else LINE_CHARS
    if not isinstance(text, str) or not text or limit <= 0:
        return ""
    # Cut hostile sizes before the regexes see them, with room for what they remove.
    text = text[: limit * 4 + 64]
    # isprintable (C speed) is false for any control, format character, surrogate, unassigned
    # code point or whitespace but the space: most text needs no removal at all.
    if not text.isprintable():
        text = _REMOVE_ASCII.sub("", text) if text.isascii() else _removed(text)
    if not text.isascii():
        text = _normalised(text)
    text = _lines(text) if multiline else " ".join(text.split())
    if word_limit is None:
        return trim(text, limit)
    bounded = _bound_words(text, word_limit)
    cut = trim(bounded, limit)
    # Again after a cut: its "…" may lengthen the last word past the bound.
    return cut if cut is bounded else _bound_words(cut, word_limit)


def valid_url(text: object, limit: int = URL_CHARS) -> str:
    """An absolute http(s) URL fit for an href, a text line and the store, or "".

    A URL is never repaired, only refused: one holding a control, bidi, zero-width or other
    invisible character, a line break or tab, a lone surrogate, or more than `limit`
    characters points somewhere other than it shows. Spaces become %20.
    """
    if not isinstance(text, str):
        return ""
    url = text.strip(" \t\r\n")
    if not url or len(url) > limit or _UNSAFE_IN_URL.search(url):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    return url.replace(" ", "%20")


def replace_surrogates(text: str) -> str:
    """`text` with each well-formed surrogate pair joined into its character and each lone
    surrogate replaced by U+FFFD: what any str needs before it is encoded as UTF-8."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def trim(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters at a word boundary, ending in "…"."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 0.6:
        cut = cut[:space]
    return _cut_end(cut) + "…"


def _removed(text: str) -> str:
    text = _REMOVE_BMP.sub("", replace_surrogates(text))
    return _REMOVE_ASTRAL.sub("", text) if max(text, default="") > "\uffff" else text


def _normalised(text: str) -> str:
    for filler in _PRINTABLE_REMOVED:  # Lo, so isprintable let them through
        if filler in text:
            text = text.replace(filler, "")
    text = _nfc(text)
    astral = max(text, default="") > "\uffff"
    if _CONTEXTUAL_BMP.search(text) or astral and _CONTEXTUAL_ASTRAL.search(text):
        # After NFC, so that no neighbour it judges by changes afterwards (NFC maps a few
        # symbols to ASCII); NFC again, as what it removes may let marks compose.
        text = _nfc(_contextual(text))
    return text


def _nfc(text: str) -> str:
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def _contextual(text: str) -> str:
    """Tag characters, variation selectors and joiners kept only where text needs them, in
    that order (each step judges by what the step before left)."""
    if _TAG.search(text):
        pieces: list[str] = []
        pos = 0
        for flag in _TAG_FLAG.finditer(text):
            pieces += (_TAG.sub("", text[pos : flag.start()]), flag.group())
            pos = flag.end()
        pieces.append(_TAG.sub("", text[pos:]))
        text = "".join(pieces)
    text = _VARIATION_RUN.sub(_variation, text)
    return _JOINER_RUN.sub(_joiner, text)


def _variation(match: re.Match[str]) -> str:
    """A variation selector chooses the glyph of the visible character before it: one is
    enough (a run of them is a hiding place for data)."""
    start = match.start()
    before = match.string[start - 1] if start else ""
    return match.group()[0] if before and not before.isspace() and before not in _JOINERS else ""


def _joiner(match: re.Match[str]) -> str:
    text, start, end = match.string, match.start(), match.end()
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    return match.group()[0] if _joinable(before) and _joinable(after) else ""


def _joinable(char: str) -> bool:
    """A neighbour a zero-width (non-)joiner may stand by: a non-ASCII letter, mark or symbol
    (between two ASCII letters a joiner changes nothing but what a search finds)."""
    return bool(char) and not char.isascii() and unicodedata.category(char)[0] in "LMS"


def _lines(text: str) -> str:
    text = _LINE_BREAK.sub("\n", text)
    text = _EDGE_WS.sub("", _HORIZONTAL_WS.sub(" ", text))
    return _BLANK_LINES.sub("\n\n", text).strip("\n ")


def _bound_words(text: str, word_limit: int) -> str:
    if len(text) <= word_limit or max(map(len, text.split())) <= word_limit:
        return text
    long_run = re.compile(rf"(?<!\S)\S{{{word_limit + 1},}}")  # from a word's start only

    def cut(match: re.Match[str]) -> str:
        run = match.group()
        if _NO_SPACE_SCRIPT.search(run):
            return run
        return _cut_end(run[: word_limit - 1]) + "…"

    return long_run.sub(cut, text)


def _cut_end(text: str) -> str:
    text = text.rstrip(_CUT_END)
    while text and _TAG.match(text[-1]):
        text = text[:-1]
    return text
