"""The papers of one run as the ranking sees them: the lexical index and each paper's vectors.

Each paper has two vectors: of its title and abstract together (`matrix`), and of its title
alone (`titles`: each keyword's own meaning is compared with it). They come from the state when
the paper was embedded before (each paper is embedded once, ever), else from the model, and
are then kept in the state, the two as one record (stored_name(model)). A model that fails (it
raised, or its process died) leaves the rest of the run to the keywords, with one warning.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence

import numpy as np

from digest.models import Paper
from digest.rank.embed import DIMENSION, EmbeddingModel, paper_text
from digest.rank.embed_store import load_embeddings, save_embeddings
from digest.rank.lexical import BM25F, Index
from digest.store import Store

log = logging.getLogger(__name__)

# A stored record is the paper's vector then its title's; the name says so, and a record of the
# model's name alone (one vector, as stored before titles were) is embedded again.
STORED_LAYOUT = "+title"


def stored_name(model: EmbeddingModel) -> str:
    """The name a paper's vectors are stored under: the model's, and the record's layout."""
    return model.name + STORED_LAYOUT


class Corpus:
    def __init__(self, store: Store | None, model: EmbeddingModel | None, bm25f: BM25F | None):
        self.store = store
        self.model = model
        self.index = Index(bm25f)
        self._vectors: dict[int, np.ndarray] = {}  # index row -> paper vector, title vector
        self.matrix: np.ndarray = np.zeros((0, DIMENSION), dtype=np.float32)
        self.titles: np.ndarray = np.zeros((0, DIMENSION), dtype=np.float32)
        self._missing: set[str] = set()  # liked papers not in the state, warned about once

    @property
    def embedded(self) -> int:
        """How many papers have vectors (cheaper than len(embedded_rows))."""
        return len(self._vectors)

    @property
    def embedded_rows(self) -> np.ndarray:
        """The rows that have a vector (the background a profile's cosines are judged against)."""
        return np.array(sorted(self._vectors), dtype=np.int64)

    def prefetch(self, papers: Sequence[Paper]) -> dict[str, np.ndarray] | None:
        """Have the model start on the papers not embedded yet while this process indexes;
        `add` then asks for the very same texts and collects them. Returns the stored vectors
        it read (None when it read none), for `add`."""
        if self.model is None:
            return None
        stored = self._stored(papers)
        unique = {p.id: p for p in papers}.values()
        todo = _texts([p for p in unique if p.id not in stored])
        # A failure here is met again by the embed that follows, which falls back.
        with contextlib.suppress(Exception):
            self.model.prefetch(todo)
        return stored

    def _stored(self, papers: Iterable[Paper]) -> dict[str, np.ndarray]:
        if self.store is None or self.model is None:
            return {}
        found = load_embeddings(self.store, [p.id for p in papers], stored_name(self.model))
        return {pid: vec for pid, vec in found.items() if len(vec) == 2 * DIMENSION}

    def add(self, papers: Sequence[Paper], *, stored: dict[str, np.ndarray] | None = None) -> None:
        """Index these papers and give each its vectors: stored, or embedded once and stored.
        `stored`: the stored vectors of these papers, when already read."""
        self.index.add(papers)
        if self.model is None:
            return
        rows = {self.index.by_id[p.id]: p for p in papers}
        missing = {r: p for r, p in rows.items() if r not in self._vectors}
        if not missing:
            return
        if stored is None:
            stored = self._stored(missing.values())
        todo = [(r, p) for r, p in missing.items() if p.id not in stored]
        for r, p in missing.items():
            if p.id in stored:
                self._vectors[r] = stored[p.id]
        if todo:
            vectors = self.embed(_texts([p for _, p in todo]))
            if vectors is None or self.model is None:
                return
            both = np.concatenate([vectors[: len(todo)], vectors[len(todo) :]], axis=1)
            for (r, _), vec in zip(todo, both, strict=True):
                self._vectors[r] = vec
            if self.store is not None:
                ids = [p.id for _, p in todo]
                save_embeddings(self.store, ids, both, stored_name(self.model))
        both = np.zeros((len(self.index), 2 * DIMENSION), dtype=np.float32)
        for r, vec in self._vectors.items():
            both[r] = vec
        self.matrix = np.ascontiguousarray(both[:, :DIMENSION])
        self.titles = np.ascontiguousarray(both[:, DIMENSION:])

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        """The model's vectors, or None when it failed: then this run ranks by keywords (one
        warning), rather than failing."""
        if self.model is None:
            return None
        try:
            return self.model.embed(texts)
        except Exception as exc:  # onnxruntime raises its own types
            self.model_failed(exc)
            return None

    def model_failed(self, exc: Exception) -> None:
        """The rest of this run ranks by keywords (one warning), rather than failing."""
        log.warning("ranking by keywords only: the embedding model failed (%s)", exc)
        self.model = None
        self._vectors.clear()

    def papers(self, ids: Sequence[str]) -> list[Paper]:
        """These papers, from the index or the state; those in neither are skipped with one
        warning per run each (a liked paper that was never seen here)."""
        known = [self.index.docs[self.index.by_id[i]].paper for i in ids if i in self.index.by_id]
        absent = [i for i in ids if i not in self.index.by_id]
        if absent and self.store is not None:
            found = self.store.get_papers(absent)
            # a paper the reader imported that no source listed: its title and abstract
            found |= self.store.imported_papers([i for i in absent if i not in found])
            known += [found[i] for i in absent if i in found]
            absent = [i for i in absent if i not in found]
        for pid in absent:
            if pid not in self._missing:
                self._missing.add(pid)
                log.warning("liked paper %s is not in the state; it is ignored", pid)
        return known

    def vectors_of(self, ids: Sequence[str]) -> tuple[np.ndarray, list[Paper]]:
        """The vectors of these papers (indexed and embedded now when they were not)."""
        known = self.papers(ids)
        if not known or self.model is None:
            return np.zeros((0, DIMENSION), dtype=np.float32), []
        self.add(known)
        if self.model is None:  # it failed just now
            return np.zeros((0, DIMENSION), dtype=np.float32), []
        rows = [self.index.by_id[p.id] for p in known]
        return self.matrix[rows], known


def _texts(papers: Sequence[Paper]) -> list[str]:
    """What these papers are embedded from: each one's title and abstract, then each title."""
    return [paper_text(p.title, p.abstract) for p in papers] + [p.title.strip() for p in papers]
