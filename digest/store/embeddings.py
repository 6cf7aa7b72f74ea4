"""Embeddings in the state: each paper embedded once, ever (paper_embeddings), and each
reader profile once, until its keywords change (profile_embeddings). Vectors are normalised
float32 bytes, kept with the name of the model that made them: another model means embedding
again."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from digest.store.db import Database

if TYPE_CHECKING:  # numpy loads on first use: the render workers import the store, not numpy
    import numpy as np

DTYPE = "float32"
# The two tables, by what their vectors are keyed on (fixed names, never user input).
_PAPERS = ("paper_embeddings", "paper_id")
_PROFILES = ("profile_embeddings", "text")


class EmbeddingStore:
    """The paper_embeddings and profile_embeddings tables (a part of Store)."""

    db: Database

    def load_paper_vectors(self, ids: Iterable[str], model: str) -> dict[str, np.ndarray]:
        """The stored vectors of these papers made by `model` (others are absent)."""
        return self._load_vectors(_PAPERS, ids, model)

    def save_paper_vectors(self, ids: Sequence[str], vectors: np.ndarray, model: str) -> None:
        """Store (or replace) the vectors of these papers, in one transaction."""
        self._save_vectors(_PAPERS, ids, vectors, model)

    def load_profile_vectors(self, texts: Iterable[str], model: str) -> dict[str, np.ndarray]:
        """The stored vectors of these profile texts made by `model` (others are absent)."""
        return self._load_vectors(_PROFILES, texts, model)

    def save_profile_vectors(self, texts: Sequence[str], vectors: np.ndarray, model: str) -> None:
        self._save_vectors(_PROFILES, texts, vectors, model)

    def stored_profile_texts(self, texts: Iterable[str], model: str) -> set[str]:
        """Which of these profile texts have a vector made by `model` (vectors stay on disk)."""
        name, key = _PROFILES
        rows = self.db.select_in(
            f"SELECT {key} FROM {name} WHERE model = ? AND {key} IN ({{marks}})", texts, model
        )
        return {text for (text,) in rows}

    def _load_vectors(
        self, table: tuple[str, str], keys: Iterable[str], model: str
    ) -> dict[str, np.ndarray]:
        import numpy as np

        name, key = table
        rows = self.db.select_in(
            f"SELECT {key}, vector FROM {name} WHERE model = ? AND {key} IN ({{marks}})",
            keys,
            model,
        )
        return {k: np.frombuffer(bytes(blob), dtype=DTYPE) for k, blob in rows}

    def _save_vectors(
        self, table: tuple[str, str], keys: Sequence[str], vectors: np.ndarray, model: str
    ) -> None:
        import numpy as np

        name, key = table
        rows = [
            (k, model, np.ascontiguousarray(vec, dtype=DTYPE).tobytes())
            for k, vec in zip(keys, vectors, strict=True)
        ]
        with self.db.transaction() as db:
            db.executemany(
                f"INSERT INTO {name} ({key}, model, vector) VALUES (?, ?, ?) ON CONFLICT ({key}) "
                "DO UPDATE SET model = excluded.model, vector = excluded.vector",
                rows,
            )
