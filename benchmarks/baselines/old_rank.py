"""Rank papers against a subscriber's keyword profile.

    def rank_papers(papers, subscriber, *, limit=None) -> list[RankedPaper]

Matching (keywords and excluded words alike)
    Title and abstract are matched separately. Text and terms are normalised the same way:
    accents folded (NFKD), casefolded, every dash/hyphen variant made "-", soft hyphens dropped,
    whitespace collapsed. A term matches as a whole word: it must not be preceded or followed
    by a letter or digit ("RL" is not in "URL", "GNN" is not in "AGNN" nor in "GNNExplainer").
    Hyphenation and spacing are free: wherever the term has a space or hyphen, and inside a
    longer word (both sides at least two characters), the text may have a space, a hyphen or
    nothing, so "pre-training" = "pretraining" = "pre training". The last word of a term is
    plural-tolerant: "network"/"networks", "query"/"queries", "LLM"/"LLMs", "process"/
    "processes", "analysis"/"analyses", "matrix"/"matrices"; a term written as a plural
    ("networks", "LLMs") matches the singular too.

Score (subscriber with keywords)
    per term: weight * (3 * sat(title matches) + sat(abstract matches)),
    sat(n) = 0 if n == 0 else 1 + ln(min(n, 10))   (repeats saturate);
    score = sum over terms + upvote_boost * log2(1 + upvotes).
    A paper that matches no term and has no followed author is dropped.

Subscriber without keywords
    Every paper passes; score = upvotes (None counts as 0); matched = [].

Excluded words vs followed authors
    DESIGN.md says both "any excluded word removes the paper" and "a followed author always
    makes the cut". Here the exclusion wins: it is the user's explicit veto on a topic, while
    following an author is a standing interest. So an excluded paper is gone even if a followed
    author wrote it.

Followed authors
    Compared with the paper's authors after folding accents, case, dots and whitespace
    ("Jure  Leskovec" = "jure leskovec" = "Jüre Leskovec"). Such a paper is always in the result,
    placed ahead of the cut and listed first (among themselves by score): it is never cut, even
    when there are more of them than the limit. `followed_authors` holds the names as the paper
    spells them (so the email can highlight them in the author list), and `matched` ends with
    "author: <name>" for each.

Order
    Followed-author papers first, then the rest by score; ties by upvotes (None lowest), then by
    paper id, so the result is deterministic. The cut (limit, default subscriber.max_papers)
    applies to the papers that are not by followed authors: they fill what is left of it.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from digest.config import Subscriber
from digest.models import Paper, RankedPaper

__all__ = ["TITLE_WEIGHT", "rank_papers"]

TITLE_WEIGHT = 3.0  # a title match counts this many abstract matches
MAX_REPEATS = 10  # matches beyond this many in one field add nothing

# Every dash or hyphen that may stand for an ASCII hyphen; the soft hyphen disappears.
_TRANSLATE = str.maketrans(
    {
        **{c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"},
        "\u00ad": None,
    }
)
# Between two parts of a term the text may have nothing, a hyphen, a space, or "- "
# (a hyphen left by a line break). Text is normalised, so a space is a single " ".
_SEP = "-? ?"
_MIN_SPLIT = 2  # a word may be split where both sides have at least this many characters
_VOWELS = frozenset("aeiou")


def fold(text: str) -> str:
    """Normalise text for matching: accents, case, dashes and whitespace made uniform."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.casefold().translate(_TRANSLATE).split())


@functools.lru_cache(maxsize=8192)
def _prepared(text: str) -> tuple[str, str]:
    """Folded and squashed text, cached: one run ranks the same papers for every subscriber."""
    folded = fold(text)
    return folded, _squash(folded)


def _squash(text: str) -> str:
    """Folded text without spaces and hyphens: every match of a term contains its key."""
    return text.replace(" ", "").replace("-", "")


@dataclass(frozen=True)
class _Term:
    label: str  # as the user wrote it
    weight: float
    pattern: re.Pattern[str]
    key: str  # squashed stem: a cheap substring test before running the regex

    def count(self, text: str, squashed: str) -> int:
        if self.key not in squashed:
            return 0
        return sum(1 for _ in self.pattern.finditer(text))


def _plural(word: str, written: str) -> tuple[str, str]:
    """Split the last word of a term into a stem and a regex for its endings."""
    if len(word) < 2 or not word[-1].isalpha():
        return word, ""
    if len(word) > 2 and re.fullmatch(r".*[A-Z0-9]{2,}s", written):  # "LLMs", "GPUs"
        return word[:-1], "s?"
    if len(word) <= 3:
        return word, "s?"  # short words and acronyms: "rl", "gnn", "llm"
    if word.endswith("ies"):
        return word[:-3], "(?:y|ies)"
    if word[-1] == "y" and word[-2] not in _VOWELS:
        return word[:-1], "(?:y|ies)"
    if word.endswith(("ix", "ex")):  # matrix/matrices, index/indices/indexes
        return word[:-2], f"(?:{word[-2:]}|ices|{word[-2:]}es)"
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2], "(?:es)?"
    if word.endswith(("ss", "us", "as", "os", "x", "z", "ch", "sh")):
        return word, "(?:es)?"
    if word.endswith("is"):  # analysis/analyses
        return word[:-2], "(?:is|es)"
    if word[-1] == "s":  # networks, images, graphs
        return word[:-1], "s?"
    return word, "s?"


def _word_pattern(word: str) -> str:
    """A word whose letters may be split by a hyphen or space ("pretraining" ~ "pre training")."""
    out: list[str] = []
    for i, char in enumerate(word):
        if _MIN_SPLIT <= i <= len(word) - _MIN_SPLIT and word[i - 1].isalnum() and char.isalnum():
            out.append(_SEP)
        out.append(re.escape(char))
    return "".join(out)


def _compile_term(label: str, weight: float) -> _Term | None:
    folded = fold(label)
    words = [w for w in re.split(r"[- ]+", folded) if w]
    if not words:
        return None
    written_last = re.split(r"[\s\-\u2010-\u2015\u2212]+", label.strip())[-1]
    stem, ending = _plural(words[-1], written_last)
    words[-1] = stem
    body = _SEP.join(_word_pattern(w) for w in words)
    pattern = re.compile(rf"(?<!\w){body}{ending}(?!\w)")
    return _Term(label=label, weight=weight, pattern=pattern, key="".join(words))


def _author_key(name: str) -> str:
    return " ".join(fold(name).replace(".", " ").split())


def _saturate(count: int) -> float:
    return 0.0 if count <= 0 else 1.0 + math.log(min(count, MAX_REPEATS))


def _sort_key(ranked: RankedPaper) -> tuple[float, int, str]:
    upvotes = ranked.paper.upvotes
    return (-ranked.score, -(upvotes if upvotes is not None else -1), ranked.paper.id)


def rank_papers(
    papers: Sequence[Paper], subscriber: Subscriber, *, limit: int | None = None
) -> list[RankedPaper]:
    """The papers that make the subscriber's cut, best first (see the module docstring)."""
    if limit is None:
        limit = subscriber.max_papers
    terms = [
        t
        for label, weight in subscriber.keywords.items()
        if (t := _compile_term(label, float(weight))) is not None
    ]
    excludes = [t for label in subscriber.exclude if (t := _compile_term(label, 1.0)) is not None]
    followed = {_author_key(a) for a in subscriber.authors if _author_key(a)}
    boost = subscriber.upvote_boost

    by_author: list[RankedPaper] = []
    others: list[RankedPaper] = []
    seen: set[str] = set()
    for paper in papers:
        if paper.id in seen:
            continue
        seen.add(paper.id)
        title, title_sq = _prepared(paper.title)
        abstract, abstract_sq = _prepared(paper.abstract)
        if any(t.count(title, title_sq) or t.count(abstract, abstract_sq) for t in excludes):
            continue

        authors = [a for a in paper.authors if followed and _author_key(a) in followed]
        upvotes = paper.upvotes or 0
        if terms:
            contributions: list[tuple[float, int, str]] = []
            for index, term in enumerate(terms):
                hits = TITLE_WEIGHT * _saturate(term.count(title, title_sq)) + _saturate(
                    term.count(abstract, abstract_sq)
                )
                if hits:
                    contributions.append((term.weight * hits, index, term.label))
            if not contributions and not authors:
                continue
            contributions.sort(key=lambda c: (-c[0], c[1]))
            score = sum(c[0] for c in contributions)
            if boost and upvotes > 0:
                score += boost * math.log2(1 + upvotes)
            matched = [c[2] for c in contributions]
        else:
            score = float(upvotes)
            matched = []
        matched += [f"author: {a}" for a in authors]
        ranked = RankedPaper(paper=paper, score=score, matched=matched, followed_authors=authors)
        (by_author if authors else others).append(ranked)

    by_author.sort(key=_sort_key)
    others.sort(key=_sort_key)
    return by_author + others[: max(0, limit - len(by_author))]
