"""The lexical score: profile terms found in titles and abstracts, scored with BM25F.

Matching
    Text and terms are tokenised alike (digest.rank.text): folded, stemmed, so "networks"
    matches "network" and "queries" "query" (but "useful" is not "use"). A term of several
    words is a phrase, and matches only as a phrase, never through one of its words alone:
    its words in order, with at most MAX_GAP words between them ("LLM-based agents" for
    "LLM agents"), or a two-word phrase turned round over a small word ("use of tools" for
    "tool use"); never across a comma or a full stop (only spaces, dashes, brackets or quotes
    may separate its words). Hyphens and spaces do not matter: "pre-training" = "pre
    training" = "pretraining" (two adjacent words also count as their joined word). A word
    with two or more capitals ("LoRA", "GNN", "RL") is an acronym: it matches that spelling
    (plural "s" allowed), not the plain word ("lora"). A paper that defines an acronym
    ("graph neural networks (GNNs)") matches the long form and the acronym both ways within
    that paper. A term matches whole tokens only: "RL" is not in "URL" nor in "RLHF".
    What a term can cost is bounded whatever its length: words past MAX_STEMMED letters are
    not stemmed nor split, a term keeps its first MAX_TERM_WORDS words, and a paper's first
    MAX_DEFINITIONS acronym definitions per field count.

Score (BM25F)
    per field f (title, abstract): tf_f = matches; the field-weighted, length-normalised
    frequency  t = sum_f w_f * tf_f / (1 - b_f + b_f * len_f / avglen_f);
    term score = weight * idf * t / (k1 + t), idf over the indexed papers (the store's recent
    papers, not only the day's). The paper's lexical score sums its terms.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from digest.models import Paper
from digest.rank.text import (
    FUNCTION_WORDS,
    MAX_STEMMED,
    Token,
    acronym_key,
    fold,
    is_acronym,
    split_words,
    stem,
    tokenise,
)

FIELDS = ("title", "abstract")
TITLE, ABSTRACT = 0, 1
MAX_GAP = 2  # words a phrase may have between its words ("LLM-based agents")
MAX_TERM_WORDS = 12  # a longer keyword is not a phrase anyone writes: the rest is ignored
MAX_DEFINITIONS = 32  # "long form (ACRONYM)" definitions read per field of a paper


@dataclass(frozen=True)
class BM25F:
    k1: float = 1.2
    title_weight: float = 3.0
    abstract_weight: float = 1.0
    title_b: float = 0.3
    abstract_b: float = 0.75


# A unit of matching: ("s", stem), ("a", acronym as written), ("c", joined stem of two
# adjacent words), ("p", "stem stem ...": a long form an acronym stands for in this paper).
Unit = tuple[str, str]


@dataclass(frozen=True)
class Term:
    """A compiled profile term: the unit sequences any of which is a match."""

    label: str
    weight: float
    variants: tuple[tuple[Unit, ...], ...]

    @property
    def key(self) -> tuple[tuple[Unit, ...], ...]:
        return self.variants


@functools.lru_cache(maxsize=8192)
def compile_term(label: str, weight: float = 1.0) -> Term | None:
    """The compiled term. Cached: readers share terms, so a long list compiles its vocabulary
    once and its profiles hold shared Terms (frozen values), not copies."""
    words = split_words(label)[:MAX_TERM_WORDS]
    if not words:
        return None
    units: list[Unit] = [
        ("a", acronym_key(w)) if is_acronym(w) else ("s", stem(fold(w))) for w in words
    ]
    variants: list[tuple[Unit, ...]] = [tuple(units)]
    if len(units) == 1 and units[0][0] == "s":
        variants += _split_variants(fold(words[0]))
    if len(words) > 1 and all(u[0] == "s" for u in units):
        joined = fold("".join(words))
        variants += [(("s", stem(joined)),), *_split_variants(joined)]
        variants.append((("p", " ".join(u[1] for u in units)),))
    return Term(label=label, weight=weight, variants=tuple(variants))


def _split_variants(word: str) -> list[tuple[Unit, ...]]:
    """A word written as two ("pre training", "pre-training"): each split with both parts
    of two letters or more, as indexed by _units."""
    if not word.isalpha() or len(word) > MAX_STEMMED:
        return []
    return [(("c", word[:k] + stem(word[k:])),) for k in range(2, len(word) - 1)]


@dataclass
class Doc:
    """One indexed paper: per field, its tokens and the units found at each position."""

    paper: Paper
    tokens: tuple[list[Token], list[Token]]
    units: tuple[list[list[Unit]], list[list[Unit]]]
    long_forms: dict[tuple[int, int], int]  # (field, start) of a defined long form -> its end


@dataclass
class TermHits:
    """Where a term matched, over every indexed paper."""

    counts: np.ndarray  # shape (docs, 2): matches in title, abstract
    spans: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)  # doc -> (f,s,e)


class Index:
    """Postings of every unit over the indexed papers, plus field lengths for BM25F.

    Built once per run; papers can be added (a candidate from an older run). Term lookups
    are cached per term, so a thousand subscribers sharing "LLM" cost one lookup.
    """

    def __init__(self, params: BM25F | None = None) -> None:
        self.params = params or BM25F()
        self.docs: list[Doc] = []
        self.by_id: dict[str, int] = {}
        self.postings: dict[Unit, list[tuple[int, int, int]]] = {}
        self._lengths: list[tuple[int, int]] = []
        self._cache: dict[tuple[tuple[Unit, ...], ...], TermHits] = {}
        self._norm: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.docs)

    def add(self, papers: Iterable[Paper]) -> None:
        added = False
        for paper in papers:
            if paper.id in self.by_id:
                continue
            added = True
            doc_index = len(self.docs)
            self.by_id[paper.id] = doc_index
            title, abstract = tokenise(paper.title), tokenise(paper.abstract)
            units = (_units(title), _units(abstract))
            long_forms = _add_definitions(units, (title, abstract), (paper.title, paper.abstract))
            self.docs.append(Doc(paper, (title, abstract), units, long_forms))
            self._lengths.append((len(title), len(abstract)))
            for f, field_units in enumerate(units):
                for pos, at in enumerate(field_units):
                    for unit in at:
                        self.postings.setdefault(unit, []).append((doc_index, f, pos))
        if added:
            self._cache.clear()
            self._norm = None

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        return np.array([self.by_id[i] for i in ids], dtype=np.int64)

    def hits(self, term: Term) -> TermHits:
        cached = self._cache.get(term.key)
        if cached is not None:
            return cached
        starts: dict[tuple[int, int, int], int] = {}  # (doc, field, start) -> end position
        for variant in term.variants:
            for doc_index, f, pos, end in self._variant_hits(variant):
                key = (doc_index, f, pos)
                starts[key] = max(end, starts.get(key, end))
        counts = np.zeros((len(self.docs), 2), dtype=np.float64)
        spans: dict[int, list[tuple[int, int, int]]] = {}
        for (doc_index, f, pos), end in starts.items():
            counts[doc_index, f] += 1
            tokens = self.docs[doc_index].tokens[f]
            spans.setdefault(doc_index, []).append((f, tokens[pos].start, tokens[end].end))
        hits = TermHits(counts, spans)
        self._cache[term.key] = hits
        return hits

    def _variant_hits(self, variant: tuple[Unit, ...]) -> Iterator[tuple[int, int, int, int]]:
        """(doc, field, first token, last token) of each place this variant matches."""
        first, rest = variant[0], variant[1:]
        for doc_index, f, pos in self.postings.get(first, ()):
            doc = self.docs[doc_index]
            if rest:
                end = _phrase_end(doc.units[f], doc.tokens[f], pos, rest)
                if end is not None:
                    yield doc_index, f, pos, end
            elif first[0] == "c":
                yield doc_index, f, pos, pos + 1  # a joined pair spans two tokens
            elif first[0] == "a":  # maybe the long form of an acronym
                yield doc_index, f, pos, doc.long_forms.get((f, pos), pos)
            else:  # a word, or ("p") the acronym standing for the phrase
                yield doc_index, f, pos, pos
        if len(variant) == 2 and all(u[0] == "s" for u in variant):
            # Turned round over a small word: "use of tools" for "tool use".
            for doc_index, f, pos in self.postings.get(variant[1], ()):
                doc = self.docs[doc_index]
                end = _turned_end(doc.units[f], doc.tokens[f], pos, variant[0])
                if end is not None:
                    yield doc_index, f, pos, end

    def _field_norm(self) -> np.ndarray:
        if self._norm is None:
            p = self.params
            lengths = np.array(self._lengths, dtype=np.float64).reshape(-1, 2)
            avg = np.maximum(lengths.mean(axis=0), 1.0) if len(lengths) else np.ones(2)
            b = np.array([p.title_b, p.abstract_b])
            w = np.array([p.title_weight, p.abstract_weight])
            self._norm = w / (1.0 - b + b * lengths / avg)  # (docs, 2)
        return self._norm

    def bm25f(self, term: Term) -> np.ndarray:
        """The term's BM25F score in every indexed paper (weight not applied)."""
        counts = self.hits(term).counts
        n = len(self.docs)
        df = float(np.count_nonzero(counts.sum(axis=1)))
        idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        t = (counts * self._field_norm()).sum(axis=1)
        score: np.ndarray = idf * t / (self.params.k1 + t)
        return score

    def term_score(self, term: Term) -> np.ndarray:
        return self.bm25f(term) * term.weight


def _phrase_end(
    at: list[list[Unit]], toks: list[Token], pos: int, rest: tuple[Unit, ...]
) -> int | None:
    """Where the phrase that starts at `pos` ends: each next unit within MAX_GAP words of
    the one before (all of them together), the words joined (no comma or full stop between);
    None when it does not match here."""
    gap = MAX_GAP
    for unit in rest:
        for step in range(1, gap + 2):
            nxt = pos + step
            if nxt >= len(at) or not toks[nxt].joined:
                return None
            if unit in at[nxt]:
                gap -= step - 1
                pos = nxt
                break
        else:
            return None
    return pos


def _turned_end(at: list[list[Unit]], toks: list[Token], pos: int, unit: Unit) -> int | None:
    """Where "B of A" ends when `pos` holds B: A one or two words on, a small word between."""
    for step in (2, 3):
        nxt = pos + step
        if nxt >= len(at) or not toks[nxt].joined or not toks[pos + step - 1].joined:
            return None
        between = toks[pos + 1 : nxt]
        if unit in at[nxt] and any(t.norm in FUNCTION_WORDS for t in between):
            return nxt
    return None


def _units(tokens: list[Token]) -> list[list[Unit]]:
    out: list[list[Unit]] = []
    for i, tok in enumerate(tokens):
        at: list[Unit] = [("s", tok.stem)]
        if tok.acronym:
            at.append(("a", tok.acronym))
        if i + 1 < len(tokens):
            nxt = tokens[i + 1]
            # Two adjacent words may be one word split ("pre training"): keyed by the first
            # as written and the second's stem, which a term's splits look up (no stemming
            # of every pair: that would dominate indexing).
            if (
                nxt.joined
                and len(tok.norm) >= 2
                and len(nxt.norm) >= 2
                and tok.norm.isalpha()
                and nxt.norm.isalpha()
            ):
                at.append(("c", tok.norm + nxt.stem))
        out.append(at)
    return out


_DEFINITION = re.compile(r"\(\s*([^\W_][\w-]*?)\s*[),;]")


def _add_definitions(
    units: tuple[list[list[Unit]], list[list[Unit]]],
    tokens: tuple[list[Token], list[Token]],
    texts: tuple[str, str],
) -> dict[tuple[int, int], int]:
    """'graph neural networks (GNNs)': the acronym and its long form match each other.
    Returns where each long form found ends: (field, start) -> end position."""
    pairs: dict[str, str] = {}  # acronym -> "stem stem ..."
    for f in (TITLE, ABSTRACT):
        toks = tokens[f]
        ends = [t.end for t in toks]
        starts = {t.start: t for t in toks}
        for match in itertools.islice(_DEFINITION.finditer(texts[f]), MAX_DEFINITIONS):
            before = toks[: bisect.bisect_right(ends, match.start())]
            found = starts.get(match.start(1))
            acronym = found.acronym if found is not None else ""
            if not acronym or not before:
                continue
            long_form = _long_form(acronym, before)
            if long_form:
                pairs[acronym] = " ".join(t.stem for t in long_form)
    long_forms: dict[tuple[int, int], int] = {}
    if not pairs:
        return long_forms
    by_phrase = {phrase: acronym for acronym, phrase in pairs.items()}
    for f in (TITLE, ABSTRACT):
        toks, at = tokens[f], units[f]
        for pos, tok in enumerate(toks):
            if tok.acronym in pairs:
                at[pos].append(("p", pairs[tok.acronym]))
        for phrase, acronym in by_phrase.items():
            stems = phrase.split(" ")
            for pos in range(len(toks) - len(stems) + 1):
                if all(toks[pos + j].stem == s for j, s in enumerate(stems)):
                    at[pos].append(("a", acronym))
                    long_forms[(f, pos)] = pos + len(stems) - 1
    return long_forms


def _long_form(acronym: str, before: list[Token]) -> list[Token]:
    """The words before "(ACRONYM)" whose initials spell its capitals, or []."""
    letters = [c.lower() for c in acronym if c.isupper()]
    i = len(before) - 1
    taken: list[Token] = []
    while letters and i >= 0:
        tok = before[i]
        if tok.norm[:1] == letters[-1]:
            letters.pop()
            taken.append(tok)
        elif tok.norm in FUNCTION_WORDS and taken:
            taken.append(tok)
        else:
            return []
        i -= 1
    if letters or len(taken) < 2:
        return []
    return list(reversed(taken))
