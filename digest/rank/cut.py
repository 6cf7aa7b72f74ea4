"""Order and the cut: which of a reader's scored candidates make their digest, in what order.

A paper the reader liked or disliked is never offered (they know it). Any excluded term
removes the paper (it wins over a followed author: it is the reader's explicit veto).
`max_papers` is the cap: papers by followed authors come first within it (among themselves
by score), whatever their score; the rest need `min_score` and some evidence (a keyword,
or a meaning, a like or their own model above the usual), and fill what is left, best
first. Ties by upvotes (None lowest), then id. A reader without keywords gets the papers
by upvotes, and `min_score` does not apply. Nothing is padded in: a thin day is short.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Cut:
    kept: np.ndarray  # candidate positions that make the digest, in its order
    shown: np.ndarray  # every candidate in explain's order: kept, below the cut, removed


def order_and_cut(
    score: np.ndarray,
    upvotes: np.ndarray,
    ids: list[str],
    *,
    removed: np.ndarray,
    by_author: np.ndarray,
    passes: np.ndarray,
    limit: int,
) -> Cut:
    n = len(ids)
    if not n:
        empty = np.zeros(0, np.int64)
        return Cut(empty, empty)
    # Best first; ties by upvotes (None lowest), then by id: deterministic.
    id_rank = np.argsort(np.argsort(np.array(ids)))
    order = np.lexsort((id_rank, -upvotes, -score))
    ours = order[by_author[order] & ~removed[order]][: max(0, limit)]
    rest = order[~by_author[order] & ~removed[order]]
    eligible = rest[passes[rest]][: max(0, limit - len(ours))]
    kept = np.concatenate([ours, eligible]).astype(np.int64)
    below = order[~removed[order] & ~np.isin(order, kept)]
    shown = np.concatenate([kept, below, order[removed[order]]]).astype(np.int64)
    return Cut(kept, shown)
