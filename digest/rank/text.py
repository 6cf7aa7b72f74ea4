"""Text to tokens for matching: folding, English stemming, acronyms, spans for highlighting.

A token is a run of letters and digits ("C++" and "C#" keep their sign). Each token has:
    norm     folded form: accents removed (NFKD), casefolded
    stem     Snowball English stem of `norm` (a few irregular plurals first: analyses ->
             analysis, matrices -> matrix), so "networks" = "network" and "queries" = "query";
             but a suffix that changes the meaning keeps the word apart ("useful" is not
             "use", "reasonable" not "reason"), and a word longer than MAX_STEMMED is its own
             stem (no input makes matching slow: the stemmer is not linear in the word)
    acronym  for a token with at least two capitals ("LLM", "LoRA", "GNNs"): its spelling as
             written, without a plural "s" ("GNNs" -> "GNN"); else "". A profile term that is
             such an acronym matches by this key, so case counts: "LoRA" is not "lora".
    start, end  the span in the original text, so the email can highlight what matched
    joined   only spaces, dashes, brackets or quotes separate it from the token before, so
             a phrase may run on across that gap (not across ".", ",", ";", ":" ...)
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import snowballstemmer

# Letters and digits (any script); "C++", "C#", "F#" keep their sign. Soft hyphens join.
_TOKEN = re.compile(r"[^\W_]+(?:\u00ad[^\W_]+)*(?:\+\+|#)?")
# Plurals Snowball leaves apart from their singular.
_IRREGULAR = {
    "matrices": "matrix",
    "indices": "index",
    "vertices": "vertex",
    "appendices": "appendix",
    "simplices": "simplex",
    "criteria": "criterion",
    "phenomena": "phenomenon",
}
_STEMMER = snowballstemmer.stemmer("english")
# Words that may sit inside a long form without a letter in its acronym ("mixture of experts").
FUNCTION_WORDS = frozenset(
    ["a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or"]
    + ["the", "to", "via", "with", "without"]
)


def fold(text: str) -> str:
    """Casefolded, accents removed."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    return text.casefold().replace("\u00ad", "")


# Longer words are not stemmed (no English word is this long; a pasted blob must not cost
# the stemmer's worse-than-linear time).
MAX_STEMMED = 40
# Suffixes Snowball removes though they change the meaning: the word keeps them in its stem
# ("useful" -> "use+ful"), so "tool use" never matches "useful" and "reasoning" not "reasonable".
_DERIVATIONAL = ("fulness", "fully", "ful", "lessness", "lessly", "less", "able", "ably", "ible")


@functools.lru_cache(maxsize=200_000)
def stem(norm: str) -> str:
    """The stem of a folded word. Words with digits or signs are their own stem."""
    if not norm.isalpha() or len(norm) > MAX_STEMMED:
        return norm
    norm = _IRREGULAR.get(norm, norm)
    if norm.endswith(("yses", "theses")):  # analyses, hypotheses, syntheses
        norm = norm[:-2] + "is"
    stemmed = str(_STEMMER.stemWord(norm))
    for suffix in _DERIVATIONAL:
        base = norm[: -len(suffix)]
        if norm.endswith(suffix) and len(base) >= 3 and _STEMMER.stemWord(base) == stemmed:
            return f"{stemmed}+{suffix}"
    return stemmed


def acronym_key(surface: str) -> str:
    """The case-kept key of an acronym-like spelling ("LLMs" -> "LLM"), or "" for a word."""
    surface = surface.replace("\u00ad", "")
    if sum(1 for c in surface if c.isupper()) < 2:
        return ""
    if len(surface) > 2 and surface[-1] == "s" and sum(1 for c in surface[:-1] if c.isupper()) >= 2:
        return surface[:-1]
    return surface


@dataclass(frozen=True)
class Token:
    norm: str
    stem: str
    acronym: str
    start: int
    end: int
    joined: bool = True


# What may sit between two words of one phrase: spaces, dashes, brackets, quotes, slashes.
_JOINING = re.compile(r"[\s\-\u2010-\u2015\u2212()\[\]\"'\u2018\u2019\u201c\u201d/]*")


def tokenise(text: str) -> list[Token]:
    out: list[Token] = []
    previous = 0
    for match in _TOKEN.finditer(text):
        surface = match.group()
        norm = fold(surface)
        joined = _JOINING.fullmatch(text, previous, match.start()) is not None
        out.append(
            Token(norm, stem(norm), acronym_key(surface), match.start(), match.end(), joined)
        )
        previous = match.end()
    return out


def split_words(label: str) -> list[str]:
    """The words of a profile term as written: "multi-agent RL" -> ["multi", "agent", "RL"]."""
    return [m.group() for m in _TOKEN.finditer(label)]


def is_acronym(word: str) -> bool:
    """Short words with two or more capitals are matched by case ("LoRA", "GNNs", "RL")."""
    return len(word) <= 8 and bool(acronym_key(word))
