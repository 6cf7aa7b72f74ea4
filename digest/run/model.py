"""The run's embedding model, started only when something must be embedded.

    model = run_model(config, deps)   # None: keywords only
    model.start()                     # optional: start loading now (a cold state)
    ...                               # the ranking embeds what the state lacks (if anything)
    model.close()

A state prepared ahead of the send time (the daemon's fetch-ahead, `digest fetch`, a send-now
that was not due) holds the vectors of every recent paper and every profile: a send then
starts no model process at all (no second of loading on a shared core, no 80 MB). A run that
fetches new papers starts the model as it begins, so loading overlaps the fetch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np

from digest.config import Config
from digest.rank.embed import DIMENSION, MODEL_NAME, EmbeddingModel, ModelUnavailable
from digest.rank.embed_process import start_model_process
from digest.run.options import SHIPPED_MODEL, Deps

log = logging.getLogger(__name__)


class LazyModel:
    """An EmbeddingModel whose process starts on first use (or `start()`). `ready()` waits
    only for a model that was started: a run that needs no new vector never waits for one."""

    def __init__(self, start: Callable[[], EmbeddingModel], name: str) -> None:
        self.name = name
        self._start = start
        self._model: EmbeddingModel | None = None
        self._problem: ModelUnavailable | None = None
        self._lock = threading.Lock()  # the profile thread and the run may start it at once

    @property
    def started(self) -> bool:
        return self._model is not None or self._problem is not None

    def start(self) -> None:
        """Start loading the model now (returns at once; a second call does nothing)."""
        with self._lock:
            if self._model is None and self._problem is None:
                try:
                    self._model = self._start()
                except ModelUnavailable as exc:
                    self._problem = exc

    def _started(self) -> EmbeddingModel:
        self.start()
        if self._problem is not None:
            raise self._problem
        assert self._model is not None
        return self._model

    def ready(self) -> None:
        if self._problem is not None:
            raise self._problem
        if self._model is not None:
            self._model.ready()

    def prefetch(self, texts: Sequence[str]) -> None:
        if texts:
            self._started().prefetch(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        return self._started().embed(texts)

    def close(self) -> None:
        with self._lock:
            model, self._model = self._model, None
            self._problem = self._problem or ModelUnavailable("the model was closed")
        if model is not None:
            model.close()


def run_model(config: Config, deps: Deps) -> EmbeddingModel | None:
    """The model a run ranks with: the shipped one, started when first needed; another one
    from `deps.model` (tests, benchmarks) as that factory makes it; None ranks by keywords
    (`semantic = false`, or no model; one warning when the model was wanted but cannot
    start)."""
    if not config.digest.semantic or deps.model is None:
        return None
    if deps.model is SHIPPED_MODEL:
        return LazyModel(start_model_process, MODEL_NAME)
    try:
        return deps.model()
    except ModelUnavailable as exc:
        log.warning("ranking by keywords only: the embedding model is unavailable (%s)", exc)
        return None


def start_soon(model: EmbeddingModel | None) -> None:
    """Start a lazy model loading now (a run that fetches new papers will embed them)."""
    if isinstance(model, LazyModel):
        model.start()
