"""Ranking in tests: a ranker without a state, and a dict that keeps readers' models."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from digest.config import Subscriber
from digest.models import Paper, RankedPaper
from digest.rank import EmbeddingModel, Ranker


def rank_papers(
    papers: Sequence[Paper],
    subscriber: Subscriber,
    *,
    limit: int | None = None,
    feedback: Mapping[str, str] | None = None,
    model: EmbeddingModel | None = None,
) -> list[RankedPaper]:
    """Rank papers without a state: by keywords unless a model is given."""
    ranker = Ranker.for_run(None, papers, model=model)
    return ranker.rank(papers, subscriber, feedback, limit=limit)


class DictModelStore:
    """digest.rank.ReaderModelStore over a dict, and the reader's feedback beside it (what the
    state keeps), with the web side's undo and clear."""

    def __init__(self) -> None:
        self.models: dict[str, bytes] = {}
        self.thumbs: dict[str, dict[str, str]] = {}
        self.saves = 0

    def load_reader_model(self, email: str) -> bytes | None:
        return self.models.get(email)

    def save_reader_models(self, items: Iterable[tuple[str, bytes]]) -> None:
        self.saves += 1
        self.models.update(items)

    def delete_reader_model(self, email: str) -> None:
        self.models.pop(email, None)

    def feedback(self, email: str) -> dict[str, str]:
        return dict(self.thumbs.get(email, {}))

    def thumb(self, email: str, paper_id: str, kind: str) -> None:
        self.thumbs.setdefault(email, {})[paper_id] = kind

    def undo(self, email: str, paper_id: str) -> None:
        self.thumbs.get(email, {}).pop(paper_id, None)

    def clear(self, email: str) -> None:
        self.thumbs.pop(email, None)
        self.delete_reader_model(email)


class HashModel:
    """A stand-in embedding model (digest.rank.EmbeddingModel): a fixed random unit vector per
    text, or the vector `fixed` gives it; counts the texts it embeds."""

    name = "hash-model"

    def __init__(self, fixed: Mapping[str, np.ndarray] | None = None) -> None:
        self.calls = 0
        self.fixed = dict(fixed or {})

    def ready(self) -> None:
        pass

    def prefetch(self, texts: Sequence[str]) -> None:
        pass

    def close(self) -> None:
        pass

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            if text in self.fixed:
                out[i] = self.fixed[text]
                continue
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            out[i] = np.random.default_rng(seed).standard_normal(384)
        norms: np.ndarray = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)
