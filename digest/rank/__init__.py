"""Rank papers against each subscriber: keywords (BM25F) and meaning (a small local
sentence-embedding model), the reader's likes, dislikes and own model, fused into a calibrated
0..1 score; followed authors, excludes, the cut, and the reasons for each paper. See ranker.py
(one run's ranker), lexical.py (matching), keywords.py (each keyword's meaning), calibrate.py
(the score), cut.py (order and cut), reader_model.py (each reader's model) and model/README.md
(the embedding model).

    model = start_model_process()                    # the caller's: started and closed by it
    ranker = Ranker.for_run(store, papers, model=model, subscribers=subs)   # once per run
    ranker.rank(candidates, subscriber, store.feedback(subscriber.email))
    ranker.close(); model.close()

The names below load on first use: the model's process imports digest.rank.embed alone, and
should not pay for the ranker, the store and the HTTP client it never uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as type checkers see them (re-exported)
    from digest.rank.calibrate import PART_SCALES as PART_SCALES
    from digest.rank.embed import EmbeddingModel as EmbeddingModel
    from digest.rank.embed import ModelUnavailable as ModelUnavailable
    from digest.rank.embed_process import start_model_process as start_model_process
    from digest.rank.explain import Explanation as Explanation
    from digest.rank.explain import explain_paper as explain_paper
    from digest.rank.lexical import BM25F as BM25F
    from digest.rank.ranker import Ranker as Ranker
    from digest.rank.ranker import Scored as Scored
    from digest.rank.ranker import Scoring as Scoring
    from digest.rank.ranker import run_papers as run_papers
    from digest.rank.reader_model import ReaderModelStore as ReaderModelStore

# Which module each name comes from.
_WHERE = {
    "BM25F": "lexical",
    "EmbeddingModel": "embed",
    "Explanation": "explain",
    "ModelUnavailable": "embed",
    "PART_SCALES": "calibrate",
    "Ranker": "ranker",
    "ReaderModelStore": "reader_model",
    "Scored": "ranker",
    "Scoring": "ranker",
    "explain_paper": "explain",
    "run_papers": "ranker",
    "start_model_process": "embed_process",
}
__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"digest.rank.{module}"), name)
