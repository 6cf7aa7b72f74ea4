"""Reader profiles' vectors for a run: read back from the state, or embedded in a background
thread that runs ahead of the subscriber loop.

The model releases the GIL while it runs, so a thread embeds the profiles of readers further
down the list while the event loop ranks and mails the ones before them: the first mail does
not wait for every profile, and a long list does not pay for its profiles twice (the vectors
are kept in the state, keyed by the profile's text and the model).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np

from digest.rank.embed import TextEmbedder
from digest.rank.embed_store import load_profile_vectors, save_profile_vectors
from digest.store import Store

log = logging.getLogger(__name__)

CHUNK = 64  # profiles embedded per model call in the background
SAVE_EVERY = 256  # new vectors written to the state in one transaction


class ProfileVectors:
    """text -> vector. `get` waits for a text the background thread has not reached yet."""

    def __init__(self, embedder: TextEmbedder, store: Store | None) -> None:
        self.embedder = embedder
        self.store = store
        self._vectors: dict[str, np.ndarray] = {}
        self._unsaved: list[str] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._queued: set[str] = set()
        self._closed = threading.Event()  # the run is over: the thread stops between chunks
        self.failed: Exception | None = None

    def start(self, texts: Sequence[str]) -> None:
        """Read back the stored vectors of these texts and embed the rest in the background,
        in this order (the order readers come up in)."""
        wanted = list(dict.fromkeys(t for t in texts if t))
        if self.store is not None and wanted:
            self._vectors.update(load_profile_vectors(self.store, wanted, self.embedder.name))
        todo = [t for t in wanted if t not in self._vectors]
        if not todo:
            return
        self._queued = set(todo)
        self._thread = threading.Thread(
            target=self._work, args=(todo,), name="profile-embedder", daemon=True
        )
        self._thread.start()

    def _work(self, todo: list[str]) -> None:
        try:
            for start in range(0, len(todo), CHUNK):
                if self._closed.is_set():
                    return
                chunk = todo[start : start + CHUNK]
                vectors = self.embedder.embed(chunk)
                with self._ready:
                    self._vectors.update(zip(chunk, vectors, strict=True))
                    self._unsaved.extend(chunk)
                    self._ready.notify_all()
        except Exception as exc:  # onnxruntime raises its own types
            with self._ready:
                self.failed = exc
                self._ready.notify_all()

    def get(self, text: str) -> np.ndarray | None:
        """The text's vector: ready, waited for, or embedded now (a text nobody queued).
        None when the model failed (the caller ranks by keywords)."""
        with self._ready:
            while (
                text not in self._vectors
                and text in self._queued
                and self.failed is None
                and self._thread is not None
                and self._thread.is_alive()
            ):
                self._ready.wait()
            vector = self._vectors.get(text)
            if self.failed is not None:
                raise self.failed
        if vector is None:
            vector = self.embedder.embed([text])[0]
            self._vectors[text] = vector
            self._unsaved.append(text)
        if len(self._unsaved) >= SAVE_EVERY:
            self.save()
        return vector

    def close(self) -> None:
        """Keep what was embedded, and stop the thread (a run stopped early leaves no thread
        embedding for nobody in a long-lived daemon)."""
        self._closed.set()
        self.save()

    def save(self) -> None:
        """Write the vectors embedded so far to the state (from the thread that owns it)."""
        with self._ready:
            texts, self._unsaved = self._unsaved, []
            vectors = [self._vectors[t] for t in texts]
        if self.store is not None and texts:
            save_profile_vectors(self.store, texts, np.stack(vectors), self.embedder.name)
