"""Rank papers against each subscriber: keywords (BM25F) and meaning (a small local
sentence-embedding model) fused, likes and dislikes, followed authors, excludes, the cut,
and the reasons for each paper. See ranker.py (order and cut), lexical.py (matching),
fuse.py (fusion) and model/README.md (the model).

    ranker = Ranker.for_run(store, papers, subscribers=subs)   # once per run
    ranker.rank(candidates, subscriber, store.feedback(subscriber.email))
"""

from digest.rank.explain import Explanation, explain_paper
from digest.rank.fuse import DEFAULT_FUSION, FusionSettings
from digest.rank.lexical import BM25F
from digest.rank.ranker import Ranker, Scored, Scoring, rank_papers, run_papers

__all__ = [
    "BM25F",
    "DEFAULT_FUSION",
    "Explanation",
    "FusionSettings",
    "Ranker",
    "Scored",
    "Scoring",
    "explain_paper",
    "rank_papers",
    "run_papers",
]
