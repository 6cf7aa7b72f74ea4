"""`digest explain`: why one paper scored what it did for one reader, and where it stood
against the cut. Works on an in-memory copy of the state (changes nothing, fetches nothing):
the paper may be any paper in the state, not only one that is new for that reader."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from digest.clock import utc_now
from digest.config import Config, Subscriber
from digest.errors import UsageError
from digest.ids import normalise_arxiv_id
from digest.models import Paper, RankedPaper
from digest.rank.embed import EmbeddingModel
from digest.rank.ranker import Ranker, Scored, Scoring, evidence
from digest.store import Store


@dataclass
class Explanation:
    subscriber: Subscriber
    paper: RankedPaper  # score, parts and reasons
    position: int  # 1-based, among the reader's candidates in rank order
    candidates: int  # how many papers were ranked with it
    # True: the paper is among the reader's new papers, ranked with them. False (already
    # offered to them, or before their start): ranked among the papers first seen the same day.
    new_for_reader: bool
    in_digest: bool
    verdict: str  # one line: why it is in or out
    cut_score: float | None  # the score of the last paper that made the cut
    model: bool  # False: the embedding model was unavailable (lexical only)


def explain_paper(
    config: Config,
    paper_id: str,
    email: str,
    *,
    model: EmbeddingModel | None,
    now: datetime | None = None,
    store: Store | None = None,
) -> Explanation:
    """`model`: the embedding model, started (and closed) by the caller; None: keywords only.
    `store`: a copy of the state to read and throw away (default: a new copy of the config's
    state), e.g. one the sources were just fetched into."""
    sub = config.subscriber(email)
    key = normalise_arxiv_id(paper_id) or paper_id.strip()
    now = now or utc_now()
    with store or Store.open_copy(config.digest.state) as store:
        paper = store.get_papers([key]).get(key)
        if paper is None:
            raise UsageError(
                f"paper {key!r} is not in the state",
                fix="name a paper a run has seen (digest preview shows the current ones)",
            )
        store.register_subscribers(
            [sub.email], now=now, lookback_days=config.digest.lookback_days
        )  # a copy: a new reader's start point, as their first run would fix it
        candidates = store.candidates(sub.email, upto_seq=store.max_seq())
        new = any(p.id == key for p in candidates)
        if not new:
            candidates = _same_day(store, key)
        ranker = Ranker.for_run(store, candidates, model=model, subscribers=[sub])
        try:
            scoring = ranker.score(candidates, sub, store.feedback(sub.email))
        finally:
            ranker.close()  # what follows reads the scoring, never the state
    position = next(i for i, x in enumerate(scoring.ranked) if x.paper.id == key)
    scored = scoring.ranked[position]
    in_digest = position < scoring.kept
    return Explanation(
        subscriber=sub,
        paper=ranker.ranked_paper(scoring, scored),
        position=position + 1,
        candidates=len(scoring.ranked),
        new_for_reader=new,
        in_digest=in_digest,
        verdict=_verdict(ranker, scoring, scored, position, in_digest),
        cut_score=scoring.ranked[scoring.kept - 1].score if scoring.kept else None,
        model=ranker.model is not None,
    )


def _verdict(ranker: Ranker, scoring: Scoring, scored: Scored, position: int, kept: bool) -> str:
    """One line: in or out, and what decided it."""
    if scored.marked:
        return f"out: the reader marked it ({scored.marked}); it shapes their ranking instead"
    if scored.excluded:
        hits = [
            t.label for t in scoring.profile.excludes if ranker.index.hits(t).spans.get(scored.row)
        ]
        return f"removed: it contains the excluded {', '.join(repr(w) for w in hits)}"
    if scored.authors and kept:
        return "in: a followed author wrote it (they come first, within max_papers)"
    if kept:
        verdict = f"in: #{position + 1} of max_papers {scoring.limit}"
        if not scoring.by_upvotes:
            verdict += f", score {scored.score:.3f} >= min_score {scoring.min_score:.2f}"
        return verdict
    if not scoring.by_upvotes and not scored.authors:
        if scored.score < scoring.min_score:
            return f"out: score {scored.score:.3f} is below min_score {scoring.min_score:.2f}"
        if not _has_evidence(scored):
            return "out: nothing in it matches the profile (no keyword, not close in meaning)"
    return f"out: #{position + 1}, beyond max_papers {scoring.limit}"


def _has_evidence(scored: Scored) -> bool:
    return bool(evidence({k: np.array([v]) for k, v in scored.parts.items()})[0])


def _same_day(store: Store, paper_id: str) -> list[Paper]:
    """The papers first seen on the (UTC) day this one was: its day's digest, roughly."""
    return store.papers_first_seen_with(paper_id)
