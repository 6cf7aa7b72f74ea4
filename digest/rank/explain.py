"""`digest explain`: why one paper scored what it did for one reader, and where it stood
against the cut. Works on an in-memory copy of the state (changes nothing, fetches nothing):
the paper may be any paper in the state, not only one that is new for that reader."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest.config import Config, Subscriber
from digest.errors import UsageError
from digest.models import RankedPaper
from digest.rank.ranker import Ranker
from digest.sources.ids import normalise_arxiv_id
from digest.store import Store, utc_now


@dataclass
class Explanation:
    subscriber: Subscriber
    paper: RankedPaper  # score, parts and reasons
    position: int  # 1-based, among the reader's candidates in rank order
    candidates: int  # how many papers were ranked (the reader's new ones, plus this one)
    new_for_reader: bool  # the paper is among what the reader's next digest would consider
    in_digest: bool
    verdict: str  # one line: why it is in or out
    cut_score: float | None  # the score of the last paper that made the cut
    model: bool  # False: the embedding model was unavailable (lexical only)


def explain_paper(
    config: Config, paper_id: str, email: str, *, now: datetime | None = None
) -> Explanation:
    sub = config.subscriber(email)
    key = normalise_arxiv_id(paper_id) or paper_id.strip()
    now = now or utc_now()
    with Store.open_copy(config.digest.state) as store:
        paper = store.get_papers([key]).get(key)
        if paper is None:
            raise UsageError(
                f"paper {key!r} is not in the state",
                fix="name a paper a run has seen (digest preview shows the current ones)",
            )
        candidates = store.candidates(
            sub.email,
            upto_seq=store.max_seq(),
            lookback_days=config.digest.lookback_days,
            now=now,
        )
        new = any(p.id == key for p in candidates)
        if not new:
            candidates = [*candidates, paper]
        ranker = Ranker.for_run(store, candidates, subscribers=[sub])
        scoring = ranker.score(candidates, sub, store.feedback(sub.email))
    position = next(i for i, x in enumerate(scoring.ranked) if x.paper.id == key)
    scored = scoring.ranked[position]
    in_digest = position < scoring.kept
    if scored.excluded:
        words = [t.label for t in scoring.profile.excludes if ranker.index.hits(t).spans.get(scored.row)]
        verdict = f"removed: it contains the excluded {', '.join(repr(w) for w in words)}"
    elif scored.authors:
        verdict = "in: a followed author wrote it (always makes the cut)"
    elif in_digest:
        verdict = f"in: #{position + 1} of max_papers {scoring.limit}"
        if not scoring.by_upvotes:
            verdict += f", score {scored.score:.3f} >= min_score {scoring.min_score:.2f}"
    elif not scoring.by_upvotes and scored.score < scoring.min_score:
        verdict = f"out: score {scored.score:.3f} is below min_score {scoring.min_score:.2f}"
    else:
        verdict = f"out: #{position + 1}, beyond max_papers {scoring.limit}"
    last = scoring.ranked[scoring.kept - 1].score if scoring.kept else None
    return Explanation(
        subscriber=sub,
        paper=ranker.ranked_paper(scoring, scored),
        position=position + 1,
        candidates=len(scoring.ranked),
        new_for_reader=new,
        in_digest=in_digest,
        verdict=verdict,
        cut_score=last,
        model=ranker.embedder is not None,
    )
