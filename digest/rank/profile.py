"""A subscriber's profile compiled for matching: terms, excludes, followed authors, likes."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from digest.config import Subscriber
from digest.rank.lexical import Term, compile_term


@dataclass(frozen=True)
class Profile:
    terms: tuple[Term, ...]
    excludes: tuple[Term, ...]
    authors: frozenset[str]  # author_key of each followed author
    text: str  # what the profile is embedded from
    likes: tuple[str, ...]  # paper ids from the config


def compile_profile(sub: Subscriber) -> Profile:
    terms = tuple(
        t for label, weight in sub.keywords.items() if (t := compile_term(label, float(weight)))
    )
    excludes = tuple(t for label in sub.exclude if (t := compile_term(label, 1.0)))
    return Profile(
        terms=terms,
        excludes=excludes,
        authors=frozenset(k for a in sub.authors if (k := author_key(a))),
        text=profile_text(sub.keywords),
        likes=sub.like,
    )


def profile_text(keywords: Mapping[str, float]) -> str:
    """The keywords as one short text, strongest first: what a reader would type to search."""
    ordered = sorted(keywords.items(), key=lambda kv: -kv[1])
    return ", ".join(label for label, _ in ordered)


def profile_key(sub: Subscriber) -> tuple[object, ...]:
    """Subscribers with equal keys compile to equal profiles (the per-run cache key)."""
    return (
        tuple(sub.keywords.items()),
        sub.exclude,
        sub.authors,
        sub.like,
    )


def author_key(name: str) -> str:
    """Names compared after folding accents, case, dots and whitespace."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(text.replace(".", " ").split())
