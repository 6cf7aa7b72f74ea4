"""The reader's likes and dislikes: from the config's `like` and from the state's feedback."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def liked_and_disliked(
    config_likes: Sequence[str], feedback: Mapping[str, str] | None
) -> tuple[list[str], list[str]]:
    """Paper ids the reader likes and dislikes. The reader's feedback is their latest word,
    so a dislike there overrides a like in the config."""
    feedback = feedback or {}
    likes = [pid for pid in config_likes if feedback.get(pid) != "dislike"]
    likes += [pid for pid, kind in feedback.items() if kind == "like" and pid not in likes]
    dislikes = [pid for pid, kind in feedback.items() if kind == "dislike"]
    return likes, dislikes


def rocchio(profile: np.ndarray, liked: np.ndarray, weight: float) -> np.ndarray:
    """The profile's vector moved towards the mean of the liked papers', normalised."""
    if not len(liked):
        return profile
    moved = profile + weight * liked.mean(axis=0)
    norm = float(np.linalg.norm(moved))
    return moved / norm if norm > 0 else profile


def closest(vectors: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of `vectors`: the best cosine to `others` and which one it was."""
    if not len(others):
        zeros = np.zeros(len(vectors))
        return zeros, zeros.astype(np.int64)
    sims = vectors @ others.T
    return sims.max(axis=1), sims.argmax(axis=1)
