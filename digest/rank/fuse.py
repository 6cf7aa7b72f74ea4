"""Fusion: the lexical and semantic scores mapped to [0, 1] and summed with fixed weights.

Both maps are absolute, not relative to the day, so `min_score` means the same thing every
day and a day without a good paper sends nothing rather than its best bad ones:
    lexical   1 - exp(-lexical / lexical_scale)
    semantic  (cosine - floor) / (ceiling - floor), clipped to [0, 1]
    fused     lexical_weight * lexical + (1 - lexical_weight) * semantic
              + like_weight * likes - dislike_weight * dislikes
where likes / dislikes map the cosine to the closest liked / disliked paper like `semantic`.
Without the model the fused score is the mapped lexical score alone (with its own scale).

The settings below were chosen on the "tune" days of benchmarks/relevance (never on its
"test" days) by `benchmarks/relevance.py --tune`, which reports both; so was
config.DEFAULT_MIN_SCORE = 0.3: on the tune days it keeps every paper graded 2 and 93% of
those graded 1 or 2, and drops 70% of the papers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FusionSettings:
    lexical_scale: float = 4.0
    semantic_floor: float = 0.1
    semantic_ceiling: float = 0.55
    lexical_weight: float = 0.3
    like_floor: float = 0.5
    like_ceiling: float = 0.9
    like_weight: float = 0.3
    dislike_weight: float = 0.3  # not tuned (the set has no dislikes): mirrors like_weight
    rocchio: float = 0.25  # how far liked papers pull the profile's vector towards them
    # Pseudo-relevance feedback (RM3-like, on the vectors): the profile's vector moves this
    # far towards the mean of its prf_papers best papers of the run. Off: on the tune days
    # 0.25 / 3 papers gave fused +0.010 NDCG@10 but fused with likes -0.010 (likes already
    # move the vector), so it is not worth its surprise.
    prf_weight: float = 0.0
    prf_papers: int = 3
    # Without the model the lexical score alone is the fused one, mapped with this scale so
    # that DEFAULT_MIN_SCORE still keeps what plausibly matches (one abstract match of a
    # term passes it).
    fallback_lexical_scale: float = 1.0
    # Reasons: "close in meaning" from this semantic part up; "close to a paper you liked"
    # from this cosine to the liked paper up (papers of one narrow topic score about 0.4+).
    meaning_reason: float = 0.5
    like_reason_cosine: float = 0.4


DEFAULT_FUSION = FusionSettings()


def lexical_part(lexical: np.ndarray, s: FusionSettings, *, model: bool = True) -> np.ndarray:
    scale = s.lexical_scale if model else s.fallback_lexical_scale
    part: np.ndarray = 1.0 - np.exp(-np.maximum(lexical, 0.0) / scale)
    return part


def semantic_part(cosine: np.ndarray, s: FusionSettings) -> np.ndarray:
    return np.clip((cosine - s.semantic_floor) / (s.semantic_ceiling - s.semantic_floor), 0, 1)


def like_part(cosine: np.ndarray, s: FusionSettings) -> np.ndarray:
    return np.clip((cosine - s.like_floor) / (s.like_ceiling - s.like_floor), 0, 1)


def fuse(
    lexical: np.ndarray,
    semantic: np.ndarray | None,
    likes: np.ndarray | None,
    dislikes: np.ndarray | None,
    s: FusionSettings,
) -> np.ndarray:
    """Fused scores; `semantic`, `likes`, `dislikes` are mapped values or None (no model)."""
    if semantic is None:
        return lexical.copy()
    fused = s.lexical_weight * lexical + (1.0 - s.lexical_weight) * semantic
    if likes is not None:
        fused = fused + s.like_weight * likes
    if dislikes is not None:
        fused = fused - s.dislike_weight * dislikes
    return fused
