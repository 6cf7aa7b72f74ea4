"""The readers' models during a run: read from where they are kept, trained when a reader's
thumbs changed since (or never were), and written back when the run closes. A kept model whose
thumbs are no longer the reader's (a thumb undone, the history cleared) is never used; the
state deletes it when the history is cleared (ReaderModelStore.delete_reader_model)."""

from __future__ import annotations

from digest.rank.corpus import Corpus
from digest.rank.reader_model import (
    ReaderModel,
    ReaderModelStore,
    Thumbs,
    example,
    reader_seed,
    train,
)

SAVE_EVERY = 256  # models trained in a run, written in one go


class ReaderModels:
    def __init__(self, corpus: Corpus, store: ReaderModelStore | None) -> None:
        self.corpus = corpus
        self.store = store
        self._trained: list[tuple[str, bytes]] = []  # not saved yet
        self.trained = 0  # models trained in this run (for tests and benchmarks)

    def get(self, email: str, thumbs: Thumbs) -> ReaderModel | None:
        """The reader's model for these thumbs (trained now if the kept one is for others);
        None when they have too few thumbs, or without the embedding model."""
        model = self.corpus.model
        if model is None or not thumbs.enough:
            return None
        fingerprint = thumbs.fingerprint(model.name)
        kept = self._load(email)
        if kept is not None and kept.fingerprint == fingerprint:
            return kept
        liked, _ = self.corpus.vectors_of(thumbs.liked)
        disliked, _ = self.corpus.vectors_of(thumbs.disliked)
        rows = self.corpus.embedded_rows
        if self.corpus.model is None or not len(liked):
            return None
        background = self.corpus.matrix[rows]
        found = example(
            thumbs, liked, disliked, background, fingerprint=fingerprint, seed=reader_seed(email)
        )
        [trained] = train([found])
        self.trained += 1
        if self.store is not None:
            self._trained.append((email, trained.to_bytes()))
            if len(self._trained) >= SAVE_EVERY:
                self.save()
        return trained

    def _load(self, email: str) -> ReaderModel | None:
        if self.store is None:
            return None
        data = self.store.load_reader_model(email)
        if data is None:
            return None
        return ReaderModel.from_bytes(data, self.corpus.matrix.shape[1])

    def save(self) -> None:
        """Write the models trained so far."""
        items, self._trained = self._trained, []
        if items and self.store is not None:
            self.store.save_reader_models(items)
