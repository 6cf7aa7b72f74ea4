"""Each reader's own model, learnt from their thumbs: an L2-regularised logistic regression over
the papers' embeddings (the liked papers against the disliked ones, and a few of the store's
recent papers as weak negatives, as Scholar Inbox does), joined to the keyword profile by the
calibrated fusion (calibrate.py) as one more feature, so keywords still steer and `exclude`
still holds.

A reader gets a model once they have MIN_LIKES likes and MIN_THUMBS thumbs in all (config
`like` counts as a like). The model is keyed by a fingerprint of exactly those thumbs and the
embedding model: when a thumb is added, undone or the history cleared, the fingerprint changes
and the stored model is no longer used (it is trained again, or the reader is back to
keywords). Nothing in it comes from another reader: their thumbs, and random papers.

Training is bounded: at most MAX_LIKED + MAX_DISLIKED thumbs (the latest) and NEGATIVES weak
negatives, so at most N = 2 * 64 + 64 examples of 385 numbers; a fixed NEWTON steps in the
dual (an N x N solve each), many readers at a time in one numpy batch. See
benchmarks/rank_speed.py --readers for the time of 10,000.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

MIN_LIKES = 2
MIN_THUMBS = 5
MAX_LIKED = 64
MAX_DISLIKED = 64
NEGATIVES = 64  # random recent papers, weak negatives
NEGATIVE_WEIGHT = 0.25  # each counts this much against a thumb
L2 = 1.0  # the regulariser: small histories give small, cautious models
NEWTON = 2  # steps after the least-squares start (6 gave the same models on the tune days)
BATCH = 64  # readers trained together (memory: BATCH x N x 385 floats)
_MAGIC = b"RM1\n"


class ReaderModelStore(Protocol):
    """Where the readers' models are kept (the state implements it; tests use a dict)."""

    def load_reader_model(self, email: str) -> bytes | None: ...

    def save_reader_models(self, items: Iterable[tuple[str, bytes]]) -> None: ...

    def delete_reader_model(self, email: str) -> None: ...


@dataclass(frozen=True)
class Thumbs:
    """One reader's thumbs, oldest first (what a model is trained on)."""

    liked: tuple[str, ...]
    disliked: tuple[str, ...]

    @classmethod
    def of(cls, config_likes: Sequence[str], feedback: Mapping[str, str] | None) -> Thumbs:
        """The feedback is the reader's latest word: a dislike there wins over a config like."""
        feedback = feedback or {}
        liked = [p for p in config_likes if feedback.get(p) != "dislike"]
        liked += [p for p, kind in feedback.items() if kind == "like" and p not in liked]
        disliked = [p for p, kind in feedback.items() if kind == "dislike"]
        return cls(tuple(liked[-MAX_LIKED:]), tuple(disliked[-MAX_DISLIKED:]))

    @property
    def enough(self) -> bool:
        return len(self.liked) >= MIN_LIKES and len(self.liked) + len(self.disliked) >= MIN_THUMBS

    def fingerprint(self, model_name: str) -> bytes:
        text = "\n".join([model_name, "+", *sorted(self.liked), "-", *sorted(self.disliked)])
        return hashlib.sha256(text.encode("utf-8")).digest()[:16]


@dataclass(frozen=True)
class ReaderModel:
    """w . [vector, 1] is the reader's logit for a paper."""

    fingerprint: bytes
    weights: np.ndarray  # float32, (dimension + 1,)

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        out: np.ndarray = vectors @ self.weights[:-1] + self.weights[-1]
        return out

    def to_bytes(self) -> bytes:
        return _MAGIC + self.fingerprint + self.weights.astype("<f4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, dimension: int) -> ReaderModel | None:
        """None for bytes that are not a model of this dimension (then it is trained again)."""
        head = len(_MAGIC) + 16
        if not data.startswith(_MAGIC) or len(data) != head + 4 * (dimension + 1):
            return None
        weights = np.frombuffer(data[head:], dtype="<f4").astype(np.float32)
        return cls(fingerprint=data[len(_MAGIC) : head], weights=weights)


@dataclass(frozen=True)
class Example:
    """What one reader's model is trained on: rows of `vectors` with labels and weights."""

    fingerprint: bytes
    vectors: np.ndarray  # (n, dimension)
    labels: np.ndarray  # (n,) 1 liked, 0 disliked or a weak negative
    weights: np.ndarray  # (n,)


def example(
    thumbs: Thumbs,
    liked: np.ndarray,
    disliked: np.ndarray,
    background: np.ndarray,
    *,
    fingerprint: bytes,
    seed: int,
) -> Example:
    """The training set: thumbs, and NEGATIVES papers drawn (by `seed`) from `background`."""
    rng = np.random.default_rng(seed)
    take = min(NEGATIVES, len(background))
    negatives = background[rng.choice(len(background), size=take, replace=False)]
    vectors = np.concatenate([liked, disliked.reshape(-1, liked.shape[1]), negatives])
    labels = np.concatenate([np.ones(len(liked)), np.zeros(len(disliked) + take)])
    weights = np.concatenate([np.ones(len(liked) + len(disliked)), np.full(take, NEGATIVE_WEIGHT)])
    return Example(fingerprint, vectors.astype(np.float32), labels, weights)


def train(examples: Sequence[Example]) -> list[ReaderModel]:
    """A model per example, BATCH readers at a time (see the module's docstring)."""
    out: list[ReaderModel] = []
    for start in range(0, len(examples), BATCH):
        out += _train_batch(examples[start : start + BATCH])
    return out


def _train_batch(examples: Sequence[Example]) -> list[ReaderModel]:
    """Newton's method on the dual of L2 logistic regression (w = X^T a): with fewer examples
    than dimensions each step is an n x n solve. Padding rows weigh 0 and stay at a = 0."""
    if not examples:
        return []
    n = max(len(e.labels) for e in examples)
    dim = examples[0].vectors.shape[1] + 1
    x = np.zeros((len(examples), n, dim), dtype=np.float32)
    y = np.zeros((len(examples), n), dtype=np.float32)
    c = np.zeros((len(examples), n), dtype=np.float32)
    for i, e in enumerate(examples):
        k = len(e.labels)
        x[i, :k, :-1] = e.vectors
        x[i, :k, -1] = 1.0  # the bias, as one more (regularised) dimension
        y[i, :k], c[i, :k] = e.labels, e.weights
    kernel = x @ x.transpose(0, 2, 1)  # (readers, n, n)
    eye = np.eye(n, dtype=np.float32)
    y, c = y[:, :, None].astype(np.float32), c[:, :, None].astype(np.float32)
    # Start from the least-squares fit of the labels as +-1 (one solve), then a few Newton
    # steps of the logistic loss: (D K + L2 I) step = c (p - y) + L2 a, D = diag(c p (1 - p)).
    alpha = np.linalg.solve(c * kernel + L2 * eye, c * (2 * y - 1))
    for _ in range(NEWTON):
        p = 1.0 / (1.0 + np.exp(-(kernel @ alpha)))
        system = (c * p * (1.0 - p)) * kernel + L2 * eye
        alpha -= np.linalg.solve(system, c * (p - y) + L2 * alpha)
    weights = (x.transpose(0, 2, 1) @ alpha)[:, :, 0]
    return [ReaderModel(e.fingerprint, weights[i]) for i, e in enumerate(examples)]


def reader_seed(email: str) -> int:
    """The weak negatives a reader's model is trained with depend on them only (reproducible)."""
    return int.from_bytes(hashlib.sha256(email.encode("utf-8")).digest()[:8], "little")
