"""The score: a calibrated probability that the reader finds the paper relevant, from the parts.

    logit = bias + w_meaning * meaning + w_words * words + w_likes * likes
            - w_dislikes * dislikes + w_reader * reader;      score = 1 / (1 + e^-logit)

The parts (each one a number in `Scored.parts`, explained by PART_SCALES):
    lexical   the keyword match, BM25F summed over the keywords (lexical.py)
    words     the same on 0..1: 1 - exp(-lexical / 4)
    semantic  the paper's cosine to the profile (its keywords embedded as one text)
    meaning   how far above the usual that cosine is: (cosine - mean) / sd over the indexed
              papers (the store's recent ones), shrunk towards the labelled set's values while
              there are few; readers whose keywords sit close to everything (or to nothing)
              are thus on one scale
    likes     the cosine to the closest liked paper, above the usual paper's (the mean over
              the run's papers of their cosine to their closest liked paper)
    dislikes  the same for the closest disliked paper
    reader    the reader's own model's logit (reader_model.py), once they have enough thumbs

The weights were fitted by logistic regression on the "tune" days of benchmarks/relevance
(`benchmarks/relevance.py --calibrate`, graded >= 1 counts as relevant), never on its test days;
so `min_score` means the same for every reader: 0.3 keeps papers with at least a 30% chance.
Without the model only the keyword match is left, with its own fitted weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The labelled set's cosine of a paper to a profile (mean, sd), and how many indexed papers
# count as much as it when a store holds few.
PRIOR_MEAN, PRIOR_SD, PRIOR_PAPERS = 0.16, 0.09, 50.0
LEXICAL_SCALE = 4.0
KEYWORDS_ONLY_SCALE = 1.0  # without the model: one abstract match counts for more

PART_SCALES = {
    "lexical": "keyword match: BM25F summed over the keywords, 0 and up",
    "words": "keyword match on 0..1",
    "semantic": "cosine to the keywords' meaning, -1..1",
    "meaning": "that cosine in sd above the usual paper's",
    "likes": "cosine to the closest paper you liked, above the usual paper's",
    "dislikes": "cosine to the closest paper you disliked, above the usual paper's",
    "reader": "your own model from your thumbs: a logit, 0 = undecided",
    "score": "the chance you find it relevant, 0..1 (min_score cuts here)",
}


@dataclass(frozen=True)
class Calibration:
    bias: float
    meaning: float
    words: float
    likes: float
    dislikes: float
    reader: float


# Fitted on the tune days (see the docstring); the lexical one on the same days without the model.
WITH_MODEL = Calibration(
    bias=-3.89, meaning=1.96, words=2.72, likes=1.33, dislikes=0.85, reader=0.95
)
KEYWORDS_ONLY = Calibration(
    bias=-3.40, meaning=0.0, words=3.59, likes=0.0, dislikes=0.0, reader=0.0
)


def words_part(bm25f: np.ndarray, scale: float = LEXICAL_SCALE) -> np.ndarray:
    part: np.ndarray = 1.0 - np.exp(-np.maximum(bm25f, 0.0) / scale)
    return part


def meaning_part(cosine: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The cosines standardised against the same profile's cosines to `background`."""
    n = float(len(background))
    mean = (float(background.sum()) + PRIOR_PAPERS * PRIOR_MEAN) / (n + PRIOR_PAPERS)
    var = float(((background - mean) ** 2).sum()) if n else 0.0
    sd = np.sqrt((var + PRIOR_PAPERS * PRIOR_SD**2) / (n + PRIOR_PAPERS))
    out: np.ndarray = (cosine - mean) / max(sd, 1e-6)
    return out


def probability(parts: dict[str, np.ndarray], c: Calibration) -> np.ndarray:
    """The score of each paper from its parts (absent parts count 0)."""
    logit = np.full(len(parts["words"]), c.bias)
    for name, weight in (("meaning", c.meaning), ("words", c.words), ("reader", c.reader)):
        if name in parts:
            logit = logit + weight * parts[name]
    if "likes" in parts:
        logit = logit + c.likes * parts["likes"]
    if "dislikes" in parts:
        logit = logit - c.dislikes * parts["dislikes"]
    out: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
    return out
