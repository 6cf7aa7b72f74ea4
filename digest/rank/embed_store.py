"""Embeddings in the state: each paper embedded once, ever (paper_embeddings), and each
reader profile once, until its keywords change (profile_embeddings)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from digest.store import Store

DTYPE = np.float32


def load_embeddings(store: Store, ids: Iterable[str], model: str) -> dict[str, np.ndarray]:
    """The stored vectors of these papers made by `model` (others are absent)."""
    rows = store.select_in(
        "SELECT paper_id, vector FROM paper_embeddings WHERE model = ? AND paper_id IN ({marks})",
        ids,
        model,
    )
    return {pid: np.frombuffer(blob, dtype=DTYPE) for pid, blob in rows}


def save_embeddings(store: Store, ids: Sequence[str], vectors: np.ndarray, model: str) -> None:
    """Store (or replace) the vectors of these papers, in one transaction."""
    rows = [
        (pid, model, np.ascontiguousarray(vec, dtype=DTYPE).tobytes())
        for pid, vec in zip(ids, vectors, strict=True)
    ]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO paper_embeddings (paper_id, model, vector) VALUES (?, ?, ?) "
            "ON CONFLICT (paper_id) DO UPDATE SET model = excluded.model, vector = excluded.vector",
            rows,
        )


def load_profile_vectors(store: Store, texts: Iterable[str], model: str) -> dict[str, np.ndarray]:
    """The stored vectors of these profile texts made by `model` (others are absent)."""
    rows = store.select_in(
        "SELECT text, vector FROM profile_embeddings WHERE model = ? AND text IN ({marks})",
        texts,
        model,
    )
    return {text: np.frombuffer(blob, dtype=DTYPE) for text, blob in rows}


def save_profile_vectors(
    store: Store, texts: Sequence[str], vectors: np.ndarray, model: str
) -> None:
    rows = [
        (text, model, np.ascontiguousarray(vec, dtype=DTYPE).tobytes())
        for text, vec in zip(texts, vectors, strict=True)
    ]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO profile_embeddings (text, model, vector) VALUES (?, ?, ?) "
            "ON CONFLICT (text) DO UPDATE SET model = excluded.model, vector = excluded.vector",
            rows,
        )
