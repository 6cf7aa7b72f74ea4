"""Rank papers against each subscriber: keywords (BM25F) and meaning (a small local
sentence-embedding model) fused, likes and dislikes, followed authors, excludes, the cut,
and the reasons for each paper. See ranker.py (order and cut), lexical.py (matching),
fuse.py (fusion) and model/README.md (the model).

    ranker = Ranker.for_run(store, papers, subscribers=subs)   # once per run
    ranker.rank(candidates, subscriber, store.feedback(subscriber.email))

The names below load on first use: the model's process imports digest.rank.embed alone, and
should not pay for the ranker, the store and the HTTP client it never uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as type checkers see them (re-exported)
    from digest.rank.explain import Explanation as Explanation
    from digest.rank.explain import explain_paper as explain_paper
    from digest.rank.fuse import DEFAULT_FUSION as DEFAULT_FUSION
    from digest.rank.fuse import FusionSettings as FusionSettings
    from digest.rank.lexical import BM25F as BM25F
    from digest.rank.ranker import Ranker as Ranker
    from digest.rank.ranker import Scored as Scored
    from digest.rank.ranker import Scoring as Scoring
    from digest.rank.ranker import rank_papers as rank_papers
    from digest.rank.ranker import run_papers as run_papers

# Which module each name comes from.
_WHERE = {
    "BM25F": "lexical",
    "DEFAULT_FUSION": "fuse",
    "Explanation": "explain",
    "FusionSettings": "fuse",
    "Ranker": "ranker",
    "Scored": "ranker",
    "Scoring": "ranker",
    "explain_paper": "explain",
    "rank_papers": "ranker",
    "run_papers": "ranker",
}
__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"digest.rank.{module}"), name)
