"""Each keyword's own meaning against the papers' titles: the `keyword` part of calibrate.py.

Every keyword is embedded alone (kept in the state with the profiles, by text); its cosine to
every title of the run is standardised against them once, and kept for the run: keywords are a
small vocabulary that many readers share, so a reader costs look-ups, not products.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from digest.rank import calibrate
from digest.rank.corpus import Corpus
from digest.rank.lexical import Term

CACHE = 4096  # keywords kept in a run (4 bytes a paper each: 16 MB for 1,000 papers)


class KeywordMeanings:
    def __init__(self, corpus: Corpus, vector_of: Callable[[str], np.ndarray | None]) -> None:
        self.corpus = corpus
        self.vector_of = vector_of  # a text's vector (None: the model is gone)
        self._kept: dict[str, tuple[np.ndarray, int]] = {}  # keyword -> part, over how many

    def part(self, rows: np.ndarray, terms: Sequence[Term]) -> tuple[np.ndarray, np.ndarray] | None:
        """For these rows: the weighted mean of each keyword's standardised cosine to the title,
        and the keyword (index) that contributes most; None without the model or keywords."""
        found = [self.standardised(t.label) for t in terms]
        known = [k[rows] for k in found if k is not None]
        if not known or len(known) < len(found):
            return None
        weights = np.array([t.weight for t in terms])
        each = np.stack(known, axis=1) * (weights / weights.sum())
        part: np.ndarray = each.sum(axis=1)
        return part, each.argmax(axis=1)

    def standardised(self, label: str) -> np.ndarray | None:
        """The keyword's cosine to every title of the run, in sd above the usual title's (once
        per run, and again when papers were added); None without the model."""
        papers = self.corpus.embedded
        found = self._kept.get(label)
        if found is not None and found[1] == papers:
            kept: np.ndarray = found[0]
            return kept
        vector = self.vector_of(label)
        if vector is None or self.corpus.model is None:
            return None
        cosines = self.corpus.titles @ vector
        prior = (calibrate.KEYWORD_PRIOR_MEAN, calibrate.KEYWORD_PRIOR_SD)
        mean, sd = calibrate.standardiser(cosines[self.corpus.embedded_rows], prior)
        if len(self._kept) >= CACHE:
            self._kept.clear()
        standardised: np.ndarray = ((cosines - mean) / sd).astype(np.float32)
        self._kept[label] = (standardised, papers)
        return standardised
