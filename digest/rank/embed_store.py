"""Embeddings in the state, for the ranking: the store's own methods (digest.store.embeddings),
under the names the ranking calls."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from digest.store import Store


def load_embeddings(store: Store, ids: Iterable[str], model: str) -> dict[str, np.ndarray]:
    """The stored vectors of these papers made by `model` (others are absent)."""
    return store.load_paper_vectors(ids, model)


def save_embeddings(store: Store, ids: Sequence[str], vectors: np.ndarray, model: str) -> None:
    """Store (or replace) the vectors of these papers, in one transaction."""
    store.save_paper_vectors(ids, vectors, model)


def load_profile_vectors(store: Store, texts: Iterable[str], model: str) -> dict[str, np.ndarray]:
    return store.load_profile_vectors(texts, model)


def stored_profile_texts(store: Store, texts: Iterable[str], model: str) -> set[str]:
    return store.stored_profile_texts(texts, model)


def save_profile_vectors(
    store: Store, texts: Sequence[str], vectors: np.ndarray, model: str
) -> None:
    store.save_profile_vectors(texts, vectors, model)
