"""Embeddings in the state: each paper embedded once, ever (paper_embeddings), and each
reader profile once, until its keywords change (profile_embeddings)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from digest.store import Store

DTYPE = np.float32
# The two tables, by what their vectors are keyed on (fixed names, never user input).
_PAPERS = ("paper_embeddings", "paper_id")
_PROFILES = ("profile_embeddings", "text")


def load_embeddings(store: Store, ids: Iterable[str], model: str) -> dict[str, np.ndarray]:
    """The stored vectors of these papers made by `model` (others are absent)."""
    return _load(store, _PAPERS, ids, model)


def save_embeddings(store: Store, ids: Sequence[str], vectors: np.ndarray, model: str) -> None:
    """Store (or replace) the vectors of these papers, in one transaction."""
    _save(store, _PAPERS, ids, vectors, model)


def load_profile_vectors(store: Store, texts: Iterable[str], model: str) -> dict[str, np.ndarray]:
    """The stored vectors of these profile texts made by `model` (others are absent)."""
    return _load(store, _PROFILES, texts, model)


def stored_profile_texts(store: Store, texts: Iterable[str], model: str) -> set[str]:
    """Which of these profile texts have a vector made by `model` (the vectors stay on disk)."""
    name, key = _PROFILES
    rows = store.select_in(
        f"SELECT {key} FROM {name} WHERE model = ? AND {key} IN ({{marks}})", texts, model
    )
    return {text for (text,) in rows}


def save_profile_vectors(
    store: Store, texts: Sequence[str], vectors: np.ndarray, model: str
) -> None:
    _save(store, _PROFILES, texts, vectors, model)


def _load(
    store: Store, table: tuple[str, str], keys: Iterable[str], model: str
) -> dict[str, np.ndarray]:
    name, key = table
    rows = store.select_in(
        f"SELECT {key}, vector FROM {name} WHERE model = ? AND {key} IN ({{marks}})", keys, model
    )
    return {k: np.frombuffer(blob, dtype=DTYPE) for k, blob in rows}


def _save(
    store: Store, table: tuple[str, str], keys: Sequence[str], vectors: np.ndarray, model: str
) -> None:
    name, key = table
    rows = [
        (k, model, np.ascontiguousarray(vec, dtype=DTYPE).tobytes())
        for k, vec in zip(keys, vectors, strict=True)
    ]
    with store.transaction() as conn:
        conn.executemany(
            f"INSERT INTO {name} ({key}, model, vector) VALUES (?, ?, ?) ON CONFLICT ({key}) "
            "DO UPDATE SET model = excluded.model, vector = excluded.vector",
            rows,
        )
