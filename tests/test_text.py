"""digest.text: any text made valid and safe on the way in (issue 25)."""

from __future__ import annotations

import random
import re
import unicodedata

import pytest

from digest.text import (
    LINE_CHARS,
    TEXT_CHARS,
    URL_CHARS,
    WORD_CHARS,
    replace_surrogates,
    trim,
    valid_text,
    valid_url,
)
from tests.support.hostile import BIDI, CONTROL, KEPT, KEPT_NFC, ZERO_WIDTH, text_problems


def test_lone_surrogates_become_the_replacement_character_and_pairs_their_character() -> None:
    assert valid_text("a\ud800b\udfffc") == "a\ufffdb\ufffdc"
    assert valid_text("\ud83d\ude00 smile") == "😀 smile"  # a well-formed pair, as feedparser
    assert valid_text("end \ud83d") == "end \ufffd"
    valid_text("\ud800" * 1000).encode("utf-8")  # encodes, whatever it was
    assert replace_surrogates("plain") == "plain"


def test_controls_bidi_and_invisible_characters_are_removed() -> None:
    assert valid_text(f"A{CONTROL}B{BIDI}C\x00D") == "A BCD"  # VT, FF, NEL: whitespace
    assert valid_text(f"Zero{ZERO_WIDTH}width") == "Zerowidth"
    assert valid_text("\ufeffBOM first") == "BOM first"
    assert valid_text("ag\u00adent in\u2062visible \ufffe\U0001ffff") == "agent invisible"
    assert valid_text("\u3164") == ""  # a Hangul filler: a name that only looks blank
    assert valid_text("a\uffa0b") == "ab"
    assert not text_problems(valid_text("".join(map(chr, range(0x20))) + BIDI * 3 + ZERO_WIDTH))


def test_what_real_text_needs_inside_a_word_is_kept() -> None:
    assert valid_text(KEPT) == KEPT_NFC
    assert "می\u200cخواهم" in valid_text(KEPT)  # ZWNJ in a Persian word
    assert "👩\u200d🔬" in valid_text(KEPT)  # ZWJ in an emoji sequence
    assert valid_text("क्\u200dष") == "क्\u200dष"  # ZWJ after a virama (Devanagari)
    assert "❤\ufe0f" in valid_text(KEPT)
    england = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    assert valid_text(f"flag {england}") == f"flag {england}"


def test_what_only_hides_is_dropped_even_when_it_looks_like_it_belongs() -> None:
    assert valid_text("ag\u200dent a\u200cb") == "agent ab"  # joiners between ASCII letters
    assert valid_text("\u200dمی \u200c") == "می"  # at an edge or beside a space
    assert valid_text("می\u200c\u200c\u200cخواهم") == "می\u200cخواهم"  # one is enough
    assert valid_text("hidden\U000e0041\U000e0042 tags") == "hidden tags"  # ASCII smuggling
    assert valid_text("x" + "\ufe0f" * 50 + " \ufe0fy") == "x\ufe0f y"  # selector runs


def test_nfc() -> None:
    assert valid_text("e\u0301te\u0301") == "été"
    assert valid_text("\u212b") == "Å"
    assert unicodedata.is_normalized("NFC", valid_text("\u0958 \u1e9b\u0323"))


def test_one_line_and_multi_line_fields() -> None:
    text = "  First\tline\r\nsecond\u2028third  \n\n\n\nfourth \x0c fifth  "
    assert valid_text(text) == "First line second third fourth fifth"
    assert valid_text(text, multiline=True) == "First\tline\nsecond\nthird\n\nfourth\nfifth"
    assert valid_text("a\x00\x1b\tb", multiline=True) == "a\tb"


def test_words_and_sizes_are_bounded() -> None:
    word = valid_text("x" * 10_000)
    assert len(word) == WORD_CHARS and word.endswith("…")
    assert valid_text("y" * WORD_CHARS) == "y" * WORD_CHARS  # a word of the bound is whole
    title = valid_text("word " * 20_000, 1000)
    assert len(title) <= 1000 and title.endswith("…")
    assert LINE_CHARS - 3 <= len(valid_text("z " * 200_000)) <= LINE_CHARS  # one line: default
    assert len(valid_text("z\n" * 200_000, multiline=True)) <= TEXT_CHARS
    # A sentence in a script written without spaces is not a long word.
    chinese = "注意力机制" * 200
    assert valid_text(chinese) == chinese
    # A key is not cut at the word bound.
    link = "https://example.org/" + "p" * 1000
    assert valid_text(link, URL_CHARS, word_limit=None) == link


def test_trim_keeps_no_dangling_joiner() -> None:
    assert trim("alpha beta gamma delta", 12) == "alpha beta…"
    cut = valid_text("👩\u200d🔬" * 10, 5)
    assert cut == valid_text(cut, 5) and not text_problems(cut)


@pytest.mark.parametrize("value", [None, 3, b"bytes", ["a"], ""])
def test_anything_that_is_not_text_is_empty(value: object) -> None:
    assert valid_text(value) == ""


def test_valid_url() -> None:
    assert valid_url(" https://example.org/a b ") == "https://example.org/a%20b"
    assert valid_url("http://127.0.0.1:8080/x?y=1") == "http://127.0.0.1:8080/x?y=1"
    for bad in (
        "javascript:alert(1)",
        "data:text/html,x",
        "ftp://example.org/x",
        "https://ex\u202eample.org",
        "https://exa\u200bmple.org",
        "https://example.org/\ud800",
        "https://example.org/a\nb",
        "https://example.org/\x00",
        "https://[bad/",
        "https:/no-host",
        "https://example.org/" + "p" * URL_CHARS,
        None,
    ):
        assert valid_url(bad) == "", bad


ALPHABET = [
    *"ab é\t\n\r.,-…",
    *"\u0301\u0316\u064b\u094d\u0915\u0958\u1fef\u2126مก中👨❤\u3000\xa0\u2028",
    *"\u200b\u200c\u200d\ufe0f\ufe0e\U000e0100\U000e0067\U000e007f\U0001f3f4\U0001f3fd",
    *"\ud800\udc00\ud83d\ude00\x00\x1b\x85\u202e\u2066\u200e\ufeff\u00ad\uffff\U0001fffe",
]


def test_any_input_gives_valid_text_and_a_second_pass_changes_nothing() -> None:
    rng = random.Random(25)
    for _ in range(8_000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
        limit = rng.choice([5, 12, 40, 1000])
        word_limit = rng.choice([None, 3, 8, WORD_CHARS])
        multiline = rng.random() < 0.5
        out = valid_text(text, limit, multiline=multiline, word_limit=word_limit)
        assert out == valid_text(out, limit, multiline=multiline, word_limit=word_limit)
        assert len(out) <= limit and unicodedata.is_normalized("NFC", out)
        assert not text_problems(out), (text, out)
        if not multiline:
            assert "\n" not in out and "\t" not in out and out == out.strip()
        if word_limit is not None:
            assert all(len(w) <= word_limit for w in out.split() if not _no_space_script(w))


def _no_space_script(word: str) -> bool:
    return any("\u0e00" <= c <= "\u0fff" or "\u2e80" <= c <= "\u9fff" for c in word)


def test_the_fast_path_misses_nothing_it_must_remove() -> None:
    # valid_text skips the removal for text str.isprintable passes; these are the only
    # removed characters it passes, and _normalised removes them itself.
    from digest import text as module

    every = "".join(map(chr, range(0x110000)))
    removed = re.findall(f"[{module._REMOVED}]", every)
    assert {c for c in removed if c.isprintable()} == set(module._PRINTABLE_REMOVED)
