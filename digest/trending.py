""" "Trending today": the day's most upvoted new papers, for readers who did not get them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from digest.models import Paper

POOL_SIZE = 10  # computed once per run; each digest shows a few of these
SHOWN = 3


def trending_pool(papers: Iterable[Paper], size: int = POOL_SIZE) -> list[Paper]:
    """The run's new papers with upvotes, most upvoted first (ties: page order)."""
    voted = [p for p in papers if p.upvotes]
    return sorted(voted, key=lambda p: -(p.upvotes or 0))[:size]


def trending_for(pool: Sequence[Paper], chosen: Iterable[str], shown: int = SHOWN) -> list[Paper]:
    """The top of the pool that is not in this reader's digest."""
    ids = set(chosen)
    return [p for p in pool if p.id not in ids][:shown]
