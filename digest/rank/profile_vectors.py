"""Reader profiles' vectors for a run: read back from the state a window at a time, or embedded
by a background thread that runs ahead of the subscriber loop.

The model works in its own process, so a thread waiting on it embeds the profiles of readers
further down the list while the event loop ranks and mails the ones before them: the first
mail does not wait for every profile, and a long list does not pay for its profiles twice (the
vectors are kept in the state, keyed by the profile's text and the model).

Memory does not grow with the list: stored vectors are read WINDOW at a time in the order
readers come up, the thread stays at most AHEAD vectors ahead of what the run has saved, and
saved vectors are dropped (a reader who comes up again reads them back).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np

from digest.rank.embed import EmbeddingModel
from digest.rank.embed_store import (
    load_profile_vectors,
    save_profile_vectors,
    stored_profile_texts,
)
from digest.store import Store

log = logging.getLogger(__name__)

CHUNK = 64  # profiles embedded per model call in the background
SAVE_EVERY = 256  # new vectors written to the state in one transaction
WINDOW = 512  # stored vectors read back at a time
AHEAD = 1024  # embedded vectors the thread may hold that the run has not saved yet


class ProfileVectors:
    """text -> vector. `get` waits for a text the background thread has not reached yet."""

    def __init__(
        self,
        embedder: EmbeddingModel,
        store: Store | None,
        *,
        chunk: int = CHUNK,
        save_every: int = SAVE_EVERY,
        window: int = WINDOW,
        ahead: int = AHEAD,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.chunk, self.save_every, self.window, self.ahead = chunk, save_every, window, ahead
        self._vectors: dict[str, np.ndarray] = {}  # a window of stored ones, and unsaved ones
        self._unsaved: list[str] = []
        self._order: list[str] = []  # the texts in the order readers come up
        self._position: dict[str, int] = {}
        self._ready = threading.Condition(threading.RLock())  # save() runs inside get()'s wait
        self._thread: threading.Thread | None = None
        self._queued: set[str] = set()  # for the thread, not embedded yet
        self._closed = threading.Event()  # the run is over: the thread stops between chunks
        self.failed: Exception | None = None

    @property
    def in_memory(self) -> int:
        """How many vectors are held now (for tests: it must not grow with the list)."""
        return len(self._vectors)

    def start(self, texts: Sequence[str]) -> None:
        """Note which of these texts the state has vectors for, and embed the rest in the
        background, in this order (the order readers come up in)."""
        self._order = list(dict.fromkeys(t for t in texts if t))
        self._position = {text: i for i, text in enumerate(self._order)}
        stored: set[str] = set()
        if self.store is not None and self._order:
            stored = stored_profile_texts(self.store, self._order, self.embedder.name)
        todo = [t for t in self._order if t not in stored]
        if not todo:
            return
        self._queued = set(todo)
        self._thread = threading.Thread(
            target=self._work, args=(todo,), name="profile-embedder", daemon=True
        )
        self._thread.start()

    def _work(self, todo: list[str]) -> None:
        try:
            for start in range(0, len(todo), self.chunk):
                with self._ready:
                    while len(self._unsaved) >= self.ahead and not self._closed.is_set():
                        self._ready.wait()
                if self._closed.is_set():
                    return
                chunk = todo[start : start + self.chunk]
                vectors = self.embedder.embed(chunk)
                with self._ready:
                    self._vectors.update(zip(chunk, vectors, strict=True))
                    self._unsaved.extend(chunk)
                    self._queued.difference_update(chunk)
                    self._ready.notify_all()
        except Exception as exc:  # the model raises its own types
            with self._ready:
                self.failed = exc
                self._ready.notify_all()

    def get(self, text: str) -> np.ndarray | None:
        """The text's vector: ready, waited for, read back, or embedded now (a text nobody
        queued). Raises what the model raised (the caller then ranks by keywords)."""
        with self._ready:
            while (
                text in self._queued
                and self.failed is None
                and self._thread is not None
                and self._thread.is_alive()
            ):
                if len(self._unsaved) >= self.ahead:  # the thread waits for a save: never both wait
                    self.save()
                self._ready.wait()
            if self.failed is not None:
                raise self.failed
            vector = self._vectors.get(text)
        if vector is None and self.store is not None and text in self._position:
            vector = self._read_window(self._position[text]).get(text)
        if vector is None:
            vector = self.embedder.embed([text])[0]
            with self._ready:
                self._vectors[text] = vector
                self._unsaved.append(text)
        if len(self._unsaved) >= self.save_every:
            self.save()
        return vector

    def _read_window(self, start: int) -> dict[str, np.ndarray]:
        """Read back the stored vectors of the `window` texts from `start` on, in place of the
        window read before (unsaved vectors stay)."""
        assert self.store is not None
        loaded = load_profile_vectors(
            self.store, self._order[start : start + self.window], self.embedder.name
        )
        with self._ready:
            unsaved = set(self._unsaved)
            self._vectors = {t: v for t, v in self._vectors.items() if t in unsaved}
            self._vectors.update(loaded)
        return loaded

    def close(self) -> None:
        """Keep what was embedded, and stop the thread (a run stopped early leaves no thread
        embedding for nobody in a long-lived daemon)."""
        self._closed.set()
        with self._ready:
            self._ready.notify_all()
        self.save()

    def save(self) -> None:
        """Write the vectors embedded so far to the state (from the thread that owns it), and
        let them go: a reader who comes up again reads them back."""
        with self._ready:
            texts, self._unsaved = self._unsaved, []
            vectors = [self._vectors[t] for t in texts]
            if self.store is not None:
                for text in texts:
                    self._vectors.pop(text, None)
            self._ready.notify_all()  # the thread may run ahead again
        if self.store is not None and texts:
            save_profile_vectors(self.store, texts, np.stack(vectors), self.embedder.name)
