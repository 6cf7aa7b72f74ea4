"""The score: a calibrated probability that the reader finds the paper relevant, from the parts.

    logit = bias + w_meaning * meaning + w_keyword * keyword + w_words * words
            + w_likes * likes - w_dislikes * dislikes + w_reader * reader;
    score = 1 / (1 + e^-logit)

The parts (each one a number in `Scored.parts`, explained by PART_SCALES):
    lexical   the keyword match, BM25F summed over the keywords (lexical.py)
    words     the same on 0..1: 1 - exp(-lexical / 4)
    semantic  the paper's cosine to the profile (its keywords embedded as one text)
    meaning   how far above the usual that cosine is: (cosine - mean) / sd over the indexed
              papers (the store's recent ones), shrunk towards the labelled set's values while
              there are few; readers whose keywords sit close to everything (or to nothing)
              are thus on one scale
    keyword   the keywords' own meanings against the paper's title: each keyword embedded alone,
              its cosine to the title standardised the same way (against the indexed papers'
              titles); their mean, weighted by the keywords' weights. A title squarely on some
              of the keywords counts, where the whole profile's meaning (all of them embedded
              together) blurs; titles carry much of a paper's meaning
    likes     the cosine to the closest liked paper, above the usual paper's (the mean over
              the run's papers of their cosine to their closest liked paper)
    dislikes  the same for the closest disliked paper
    reader    the reader's own model's logit (reader_model.py), once they have enough thumbs,
              above its mean logit over the run's papers (centred like likes and dislikes, so
              that thumbs move papers against each other, not every score down)

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
# The same for one keyword's cosine to a paper's title.
KEYWORD_PRIOR_MEAN, KEYWORD_PRIOR_SD = 0.12, 0.09
LEXICAL_SCALE = 4.0
KEYWORDS_ONLY_SCALE = 1.0  # without the model: one abstract match counts for more

PART_SCALES = {
    "lexical": "keyword match: BM25F summed over the keywords, 0 and up",
    "words": "keyword match on 0..1",
    "semantic": "cosine to the keywords' meaning, -1..1",
    "meaning": "that cosine in sd above the usual paper's",
    "keyword": "each keyword's cosine to the title, in sd above the usual title's: their mean",
    "likes": "cosine to the closest paper you liked, above the usual paper's",
    "dislikes": "cosine to the closest paper you disliked, above the usual paper's",
    "reader": "your own model from your thumbs: a logit above the usual paper's",
    "score": "the chance you find it relevant, 0..1 (min_score cuts here)",
}


@dataclass(frozen=True)
class Calibration:
    bias: float
    meaning: float
    keyword: float
    words: float
    likes: float
    dislikes: float
    reader: float


# Fitted on the tune days (see the docstring); the lexical one on the same days without the model.
WITH_MODEL = Calibration(
    bias=-3.95, meaning=1.63, keyword=0.89, words=2.74, likes=0.52, dislikes=0.67, reader=3.23
)
KEYWORDS_ONLY = Calibration(
    bias=-3.40, meaning=0.0, keyword=0.0, words=3.59, likes=0.0, dislikes=0.0, reader=0.0
)


def words_part(bm25f: np.ndarray, scale: float = LEXICAL_SCALE) -> np.ndarray:
    part: np.ndarray = 1.0 - np.exp(-np.maximum(bm25f, 0.0) / scale)
    return part


def standardiser(
    background: np.ndarray, prior: tuple[float, float] = (PRIOR_MEAN, PRIOR_SD)
) -> tuple[float, float]:
    """(mean, sd) of a text's cosines to `background`, shrunk towards the labelled set's
    (mean, sd) `prior` while the background is small."""
    n = float(len(background))
    prior_mean, prior_sd = prior
    mean = (float(background.sum()) + PRIOR_PAPERS * prior_mean) / (n + PRIOR_PAPERS)
    var = float(((background - mean) ** 2).sum()) if n else 0.0
    sd = float(np.sqrt((var + PRIOR_PAPERS * prior_sd**2) / (n + PRIOR_PAPERS)))
    return mean, max(sd, 1e-6)


def probability(parts: dict[str, np.ndarray], c: Calibration) -> np.ndarray:
    """The score of each paper from its parts (absent parts count 0)."""
    logit = np.full(len(parts["words"]), c.bias)
    for name, weight in (
        ("meaning", c.meaning),
        ("keyword", c.keyword),
        ("words", c.words),
        ("reader", c.reader),
    ):
        if name in parts:
            logit = logit + weight * parts[name]
    if "likes" in parts:
        logit = logit + c.likes * parts["likes"]
    if "dislikes" in parts:
        logit = logit - c.dislikes * parts["dislikes"]
    out: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
    return out
