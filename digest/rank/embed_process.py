"""The embedding model in a process of its own, for the length of one run.

    model = start_model_process()   # starts loading now, while the run fetches its sources
    model.ready()               # waits for it; ModelUnavailable if it cannot load
    model.prefetch(texts)       # optional: starts on them, returns at once
    model.embed(texts)          # like Embedder.embed (collects a prefetch of the same texts)
    model.close()

The model's runtime and weights (about 80 MB) live only in this child: the process that ranks
and mails stays small however long the list, a long-lived daemon does not keep them between
runs, and loading overlaps the fetch. A child that cannot load the model says why (the run then
ranks by keywords); one that dies mid-run makes `embed` raise, and the run falls back the same way.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from digest.child import die_with_parent, spawn_context
from digest.rank.embed import DIMENSION, MODEL_DIR, MODEL_NAME, Embedder, ModelUnavailable

CLOSE_TIMEOUT = 5.0  # seconds a closing child gets to finish the request it is on


class EmbedFailed(Exception):
    """The model process failed to embed (it raised, or it is gone)."""


def start_model_process(model_dir: Path = MODEL_DIR) -> EmbedderProcess:
    """The shipped model, loading in a process of its own from now on: what a run ranks with.
    Raises ModelUnavailable when the process cannot even start; a model that cannot load says
    so at `ready()`, which the ranking calls (and then ranks by keywords, with a warning)."""
    try:
        return EmbedderProcess(model_dir)
    except OSError as exc:
        raise ModelUnavailable(f"cannot start the model process: {exc}") from None


class EmbedderProcess:
    """An Embedder served by a child process; one request at a time (threads share it).
    Implements embed.EmbeddingModel."""

    name = MODEL_NAME

    def __init__(self, model_dir: Path = MODEL_DIR) -> None:
        context = spawn_context()
        self._conn, child_end = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child_end, model_dir), name="digest-embedder", daemon=True
        )
        self._process.start()
        child_end.close()
        self.pid = self._process.pid
        self._lock = threading.Lock()
        self._problem: str | None = None  # why the model cannot be used, once known
        self._loaded = False
        self._ahead: list[str] | None = None  # texts sent by prefetch, their vectors not read
        self.requests = 0  # lists of texts sent to the child

    def ready(self) -> None:
        """Wait until the model is loaded. Raises ModelUnavailable (with the child's reason)."""
        with self._lock:
            self._wait_loaded()

    def _wait_loaded(self) -> None:
        if not self._loaded and self._problem is None:
            try:
                kind, detail = self._conn.recv()
            except (EOFError, OSError):
                kind, detail = "unavailable", "the model process ended while loading"
            if kind == "ready":
                self._loaded = True
            else:
                self._problem = detail
        if self._problem is not None:
            raise ModelUnavailable(self._problem)

    def prefetch(self, texts: Sequence[str]) -> None:
        """Have the model start on these texts now; the next `embed` of the same texts gets
        their vectors (the caller does other work meanwhile)."""
        if not texts:
            return
        with self._lock:
            self._wait_loaded()
            try:
                self._drop_ahead()
                self._send(texts)
            except (EOFError, OSError):
                raise EmbedFailed("the model process ended") from None
            self._ahead = list(texts)

    def _send(self, texts: Sequence[str]) -> None:
        self._conn.send(list(texts))
        self.requests += 1

    def _drop_ahead(self) -> None:
        """Read (and forget) the reply to a prefetch nobody asked for."""
        if self._ahead is not None:
            self._ahead = None
            self._conn.recv()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        with self._lock:
            self._wait_loaded()
            try:
                if self._ahead is not None and self._ahead == list(texts):
                    self._ahead = None  # its reply is the next one
                else:
                    self._drop_ahead()
                    self._send(texts)
                kind, result = self._conn.recv()
            except (EOFError, OSError):
                raise EmbedFailed("the model process ended") from None
        if kind != "ok":
            raise EmbedFailed(result)
        vectors: np.ndarray = result
        return vectors

    def close(self) -> None:
        """Stop the child (after the request it is on, if any) and free its memory."""
        if self._lock.acquire(timeout=CLOSE_TIMEOUT):
            try:
                with contextlib.suppress(OSError):
                    self._conn.send(None)
            finally:
                self._lock.release()
        self._process.join(timeout=CLOSE_TIMEOUT)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()
        self._problem = self._problem or "the model process was closed"


def _serve(conn: Connection, model_dir: Path) -> None:
    """The child: load the model, say so, then embed each list of texts it is sent (None ends)."""
    die_with_parent()
    # Ctrl-C, and a service manager's SIGTERM to the whole group, are the run's to handle: it
    # stops, then closes us (and if it dies, so do we).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        embedder = Embedder(model_dir)
    except ModelUnavailable as exc:
        conn.send(("unavailable", str(exc)))
        return
    conn.send(("ready", embedder.name))
    while True:
        try:
            texts = conn.recv()
        except (EOFError, OSError):
            return
        if texts is None:
            return
        try:
            conn.send(("ok", embedder.embed(texts)))
        except Exception as exc:  # onnxruntime raises its own types
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
