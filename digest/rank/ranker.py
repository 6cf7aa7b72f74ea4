"""The ranker of one run: papers indexed and embedded once, each subscriber scored with numpy.

    ranker = Ranker.for_run(store, papers, subscribers=...)   # once per run
    ranker.rank(candidates, subscriber, store.feedback(email)) -> list[RankedPaper]

Order and the cut
    A paper the reader liked or disliked is never offered (they know it). Any excluded term
    removes the paper (it wins over a followed author: it is the reader's explicit veto).
    Papers by followed authors always make it and come first (among themselves by score).
    The rest need a fused score of at least `min_score` (and above 0) and fill what is left
    of `max_papers`, best first; ties by upvotes (None lowest), then id. A subscriber without
    keywords gets the papers by upvotes (score = upvotes), and `min_score` does not apply.
    `upvote_boost` adds boost * log2(1 + upvotes) to the score.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from digest.config import Subscriber
from digest.models import Paper, RankedPaper, Reason
from digest.rank import reasons as why
from digest.rank.embed import DIMENSION, ModelUnavailable, TextEmbedder, paper_text
from digest.rank.embed_process import EmbedderProcess
from digest.rank.embed_store import load_embeddings, save_embeddings
from digest.rank.fuse import (
    DEFAULT_FUSION,
    FusionSettings,
    fuse,
    lexical_part,
    like_part,
    semantic_part,
)
from digest.rank.lexical import BM25F, Index, Term
from digest.rank.likes import closest, liked_and_disliked, rocchio
from digest.rank.profile import (
    Profile,
    author_key,
    compile_profile,
    profile_key,
    profile_text,
)
from digest.rank.profile_vectors import ProfileVectors
from digest.store import Store

log = logging.getLogger(__name__)

# IDF is computed over this many of the store's most recent papers (and the run's).
BACKGROUND_PAPERS = 1000
_AUTO = object()


@dataclass
class Scored:
    """One candidate as scored for one subscriber, before the cut."""

    paper: Paper
    row: int  # in the ranker's index
    score: float
    parts: dict[str, float]
    excluded: bool  # an excluded word, or the reader marked it
    authors: list[str]
    liked: Paper | None = None  # the closest liked paper, when it counts as a reason
    meaning: bool = False  # close in meaning to the profile
    terms: list[tuple[float, int]] = field(default_factory=list)  # (score, term index)
    marked: str = ""  # "like" | "dislike": the reader already marked this paper


@dataclass
class Scoring:
    """Every candidate scored for one subscriber (what `explain` shows), in rank order."""

    subscriber: Subscriber
    profile: Profile
    # Followed authors first, then by score, then those below the cut; excluded ones last.
    ranked: list[Scored]
    kept: int  # how many of `ranked` make the cut (its first `kept`)
    by_upvotes: bool  # no keywords: ordered by upvotes
    min_score: float
    limit: int


PROFILE_CACHE = 1024  # compiled profiles kept in a run


def load_embedder() -> EmbedderProcess:
    """The run's model, loading in its own process from now on (see embed_process)."""
    return EmbedderProcess()


def start_model() -> TextEmbedder | None:
    """Start loading the embedding model, to be handed to `Ranker.for_run` (and closed by the
    caller). None when it cannot even start (the run ranks by keywords, with one warning)."""
    try:
        return load_embedder()
    except ModelUnavailable as exc:
        _warn_unavailable(exc)
        return None


def close_model(model: object | None) -> None:
    """Close a model `start_model` gave (a stand-in without `close` has nothing to close)."""
    close = getattr(model, "close", None)
    if close is not None:
        close()


def _warn_unavailable(exc: Exception) -> None:
    log.warning("ranking by keywords only: the embedding model is unavailable (%s)", exc)


class Ranker:
    def __init__(
        self,
        store: Store | None,
        embedder: TextEmbedder | None,
        settings: FusionSettings = DEFAULT_FUSION,
        bm25f: BM25F | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.index = Index(bm25f)
        self._vectors: dict[int, np.ndarray] = {}  # index row -> paper vector
        self._matrix: np.ndarray = np.zeros((0, DIMENSION), dtype=np.float32)
        self._profiles: dict[tuple[object, ...], Profile] = {}
        self._profile_vectors: ProfileVectors | None = None
        self._term_scores: dict[Term, np.ndarray] = {}
        self._missing_likes: set[str] = set()
        self._author_keys: dict[int, list[tuple[str, str]]] = {}
        self._prf: dict[object, np.ndarray] = {}
        self._owned_model: TextEmbedder | None = None  # a model this ranker started

    # --- preparation (once per run) ---------------------------------------------------------

    @classmethod
    def for_run(
        cls,
        store: Store | None,
        papers: Iterable[Paper],
        *,
        subscribers: Sequence[Subscriber] = (),
        embedder: object = _AUTO,
        settings: FusionSettings = DEFAULT_FUSION,
        background: int = BACKGROUND_PAPERS,
        bm25f: BM25F | None = None,
    ) -> Ranker:
        """Index the run's papers (and the store's recent ones, for IDF), embed the papers
        not embedded yet and store their vectors, compile the subscribers' profiles.
        Without the model (missing, altered, not loadable) it ranks lexically, with one
        warning."""
        owned: TextEmbedder | None = None
        if embedder is _AUTO:
            embedder = owned = start_model()
        assert embedder is None or hasattr(embedder, "embed")
        ready = getattr(embedder, "ready", None)
        if ready is not None:
            try:
                ready()  # the model loads in its own process: wait for it here
            except ModelUnavailable as exc:
                _warn_unavailable(exc)
                embedder = None
        ranker = cls(store, embedder, settings, bm25f)  # type: ignore[arg-type]
        ranker._owned_model = owned
        papers = list(papers)
        stored = ranker._embed_ahead(papers)
        if store is not None and background > 0:
            ranker.index.add(_recent_papers(store, background))
        ranker.index.add(papers)
        ranker._ensure_vectors(papers, stored=stored)
        if ranker.embedder is not None:
            ranker._profile_vectors = ProfileVectors(ranker.embedder, store)
            ranker._profile_vectors.start([profile_text(s.keywords) for s in subscribers])
        return ranker

    def close(self) -> None:
        """Keep the profile vectors embedded in this run for the next ones; stop embedding (and
        the model's process, when this ranker started it)."""
        if self._profile_vectors is not None:
            self._profile_vectors.close()
        close_model(self._owned_model)
        self._owned_model = None

    def profile(self, sub: Subscriber) -> Profile:
        """The subscriber's compiled profile; readers with the same one share it (a bounded
        cache: each reader is ranked about once a run, so a long list is not kept)."""
        key = profile_key(sub)
        compiled = self._profiles.get(key)
        if compiled is None:
            if len(self._profiles) >= PROFILE_CACHE:
                self._profiles.clear()
            compiled = self._profiles[key] = compile_profile(sub)
        return compiled

    def _embed_ahead(self, papers: Sequence[Paper]) -> dict[str, np.ndarray] | None:
        """A model in its own process starts on the papers not embedded yet while this process
        indexes; `_ensure_vectors` then asks for the very same texts and collects them.
        Returns the stored vectors it read (None when it read none), for `_ensure_vectors`."""
        prefetch = getattr(self.embedder, "prefetch", None)
        if self.embedder is None or prefetch is None:
            return None
        stored = self._stored_vectors(papers)
        # A failure here is met again by the embed that follows, which falls back.
        with contextlib.suppress(Exception):
            prefetch(
                [
                    paper_text(p.title, p.abstract)
                    for p in {p.id: p for p in papers}.values()
                    if p.id not in stored
                ]
            )
        return stored

    def _stored_vectors(self, papers: Iterable[Paper]) -> dict[str, np.ndarray]:
        if self.store is None or self.embedder is None:
            return {}
        return load_embeddings(self.store, [p.id for p in papers], self.embedder.name)

    def _ensure_vectors(
        self, papers: Sequence[Paper], *, stored: dict[str, np.ndarray] | None = None
    ) -> None:
        """Index these papers and give each a vector: stored, or embedded once and stored.
        `stored`: the stored vectors of these papers, when already read."""
        self.index.add(papers)
        if self.embedder is None:
            return
        rows = {self.index.by_id[p.id]: p for p in papers}
        missing = {r: p for r, p in rows.items() if r not in self._vectors}
        if not missing:
            return
        if stored is None:
            stored = self._stored_vectors(missing.values())
        todo = [(r, p) for r, p in missing.items() if p.id not in stored]
        for r, p in missing.items():
            if p.id in stored:
                self._vectors[r] = stored[p.id]
        if todo:
            vectors = self._embed([paper_text(p.title, p.abstract) for _, p in todo])
            if vectors is None:
                return
            for (r, _), vec in zip(todo, vectors, strict=True):
                self._vectors[r] = vec
            if self.store is not None:
                save_embeddings(self.store, [p.id for _, p in todo], vectors, self.embedder.name)
        matrix = np.zeros((len(self.index), DIMENSION), dtype=np.float32)
        for r, vec in self._vectors.items():
            matrix[r] = vec
        self._matrix = matrix

    def _profile_vector(self, text: str) -> np.ndarray | None:
        """The profile text's vector (see profile_vectors); None without the model."""
        if self.embedder is None or not text:
            return None
        if self._profile_vectors is None:
            self._profile_vectors = ProfileVectors(self.embedder, self.store)
        try:
            return self._profile_vectors.get(text)
        except Exception as exc:  # onnxruntime raises its own types
            self._model_failed(exc)
            return None

    def _embed(self, texts: Sequence[str]) -> np.ndarray | None:
        """The model's vectors, or None when it failed: then this run ranks by keywords
        (one warning), rather than failing."""
        if self.embedder is None:
            return None
        try:
            return self.embedder.embed(texts)
        except Exception as exc:  # onnxruntime raises its own types
            self._model_failed(exc)
            return None

    def _model_failed(self, exc: Exception) -> None:
        """The rest of this run ranks by keywords (one warning), rather than failing."""
        log.warning("ranking by keywords only: the embedding model failed (%s)", exc)
        self.embedder = None
        self._vectors.clear()

    def _term_score(self, term: Term) -> np.ndarray:
        """The term's score in every indexed paper; cached (subscribers share terms)."""
        score = self._term_scores.get(term)
        if score is None or len(score) != len(self.index):
            score = self._term_scores[term] = self.index.term_score(term)
        return score

    def _liked_vectors(self, ids: Sequence[str]) -> tuple[np.ndarray, list[Paper]]:
        """Vectors of liked (or disliked) papers; those not in the store are skipped with one
        warning per run each."""
        known = [self.index.docs[self.index.by_id[i]].paper for i in ids if i in self.index.by_id]
        absent = [i for i in ids if i not in self.index.by_id]
        if absent and self.store is not None:
            found = self.store.get_papers(absent)
            known += [found[i] for i in absent if i in found]
            absent = [i for i in absent if i not in found]
        for pid in absent:
            if pid not in self._missing_likes:
                self._missing_likes.add(pid)
                log.warning("liked paper %s is not in the state; it is ignored", pid)
        if not known or self.embedder is None:
            return np.zeros((0, DIMENSION), dtype=np.float32), []
        self._ensure_vectors(known)
        rows = [self.index.by_id[p.id] for p in known]
        return self._matrix[rows], known

    # --- scoring ----------------------------------------------------------------------------

    def score(
        self,
        candidates: Sequence[Paper],
        sub: Subscriber,
        feedback: Mapping[str, str] | None = None,
        *,
        limit: int | None = None,
        everything: bool = True,
    ) -> Scoring:
        """Every candidate scored and ordered for this subscriber, and where the cut falls
        (`everything=False`: only those that make the cut, which is all a digest needs)."""
        limit = sub.max_papers if limit is None else limit
        papers = list({p.id: p for p in candidates}.values())  # each paper once
        profile = self.profile(sub)
        self._ensure_vectors(papers)
        s = self.settings
        rows = self.index.rows([p.id for p in papers])
        n = len(papers)

        excluded = np.zeros(n, dtype=bool)
        for term in profile.excludes:
            excluded |= self.index.hits(term).counts[rows].sum(axis=1) > 0
        # Papers the reader liked or disliked are known to them: never offered again.
        liked_ids, disliked_ids = liked_and_disliked(profile.likes, feedback)
        marks = {pid: "like" for pid in liked_ids} | {pid: "dislike" for pid in disliked_ids}
        marked = np.array([p.id in marks for p in papers], dtype=bool)
        excluded |= marked

        term_scores = [self._term_score(t)[rows] for t in profile.terms]
        lexical = np.sum(term_scores, axis=0) if term_scores else np.zeros(n)

        sem = likes = dislikes = None
        cosine = like_cos = np.zeros(n)
        like_which = np.zeros(n, dtype=np.int64)
        liked_papers: list[Paper] = []
        if self.embedder is not None and n:
            liked_vecs, liked_papers = self._liked_vectors(liked_ids)
            disliked_vecs, _ = self._liked_vectors(disliked_ids)
            self._profile_vector(profile.text)
        if self.embedder is not None and n:  # (the model may have failed just now)
            vectors = self._matrix[rows]
            query = self._expanded(profile)
            if query is not None:
                query = rocchio(query, liked_vecs, s.rocchio)
                cosine = vectors @ query
                sem = semantic_part(cosine, s)
            else:
                sem = np.zeros(n)
            like_cos, like_which = closest(vectors, liked_vecs)
            likes = like_part(like_cos, s) if len(liked_vecs) else None
            dislikes = (
                like_part(closest(vectors, disliked_vecs)[0], s) if len(disliked_vecs) else None
            )
        lex = lexical_part(lexical, s, model=sem is not None)
        fused = fuse(lex, sem, likes, dislikes, s)

        by_upvotes = not profile.terms
        upvotes = np.array([p.upvotes if p.upvotes is not None else -1 for p in papers], float)
        if by_upvotes:
            score = np.maximum(upvotes, 0.0)
        else:
            score = fused.copy()
            if sub.upvote_boost:
                score += sub.upvote_boost * np.log2(1 + np.maximum(upvotes, 0.0))
        authors = self._followed(rows, profile) if profile.authors else {}
        # Best first; ties by upvotes (None lowest), then by id: deterministic.
        id_rank = np.argsort(np.argsort(np.array([p.id for p in papers])))
        order = np.lexsort((id_rank, -upvotes, -score)) if n else np.zeros(0, np.int64)
        by_author = np.zeros(n, dtype=bool)
        by_author[list(authors)] = True
        ours = order[by_author[order] & ~excluded[order]]
        rest = order[~by_author[order] & ~excluded[order]]
        # A paper that matches nothing at all is never padded in, even with min_score = 0.
        passes = np.ones(n, bool) if by_upvotes else (score >= sub.min_score) & (score > 0)
        eligible = rest[passes[rest]]
        room = max(0, limit - len(ours))
        kept = np.concatenate([ours, eligible[:room]]).astype(np.int64)
        if everything:
            below = rest[~np.isin(rest, eligible[:room])]
            shown = np.concatenate([kept, below, order[excluded[order]]]).astype(np.int64)
        else:
            shown = kept

        def scored(i: int) -> Scored:
            parts = {"lexical": float(lexical[i]), "lexical_part": float(lex[i])}
            if sem is not None:
                parts["semantic"] = float(cosine[i])
                parts["semantic_part"] = float(sem[i])
            if likes is not None:
                parts["likes"] = float(like_cos[i])
            if dislikes is not None:
                parts["dislikes"] = float(dislikes[i])
            parts["fused"] = float(fused[i])
            close = likes is not None and like_cos[i] >= s.like_reason_cosine
            return Scored(
                paper=papers[i],
                row=int(rows[i]),
                score=float(score[i]),
                parts=parts,
                excluded=bool(excluded[i]),
                marked=marks.get(papers[i].id, ""),
                authors=authors.get(i, []),
                liked=liked_papers[int(like_which[i])] if close else None,
                meaning=sem is not None and bool(sem[i] >= s.meaning_reason),
                terms=sorted(
                    ((float(ts[i]), k) for k, ts in enumerate(term_scores) if ts[i] > 0),
                    key=lambda c: (-c[0], c[1]),
                ),
            )

        return Scoring(
            subscriber=sub,
            profile=profile,
            ranked=[scored(int(i)) for i in shown],
            kept=len(kept),
            by_upvotes=by_upvotes,
            min_score=sub.min_score,
            limit=limit,
        )

    def _expanded(self, profile: Profile) -> np.ndarray | None:
        """The profile's vector, moved towards its best papers among those embedded this run
        (pseudo-relevance feedback: the profile's words say what it means by the papers it
        finds). Once per profile per run."""
        query = self._profile_vector(profile.text)
        s = self.settings
        if query is None or not s.prf_weight or not s.prf_papers or not self._vectors:
            return query
        key = (s, profile.text, tuple((t.key, t.weight) for t in profile.terms))
        cached = self._prf.get(key)
        if cached is not None:
            return cached
        pool = np.array(sorted(self._vectors), dtype=np.int64)
        lexical = sum((self._term_score(t)[pool] for t in profile.terms), np.zeros(len(pool)))
        vectors = self._matrix[pool]
        first = fuse(lexical_part(lexical, s), semantic_part(vectors @ query, s), None, None, s)
        best = np.argsort(-first, kind="stable")[: s.prf_papers]
        expanded = rocchio(query, vectors[best], s.prf_weight)
        self._prf[key] = expanded
        return expanded

    def _followed(self, rows: np.ndarray, profile: Profile) -> dict[int, list[str]]:
        """Candidate position -> the followed authors among its authors, as spelled there."""
        out: dict[int, list[str]] = {}
        for i, row in enumerate(rows):
            keys = self._author_keys.get(int(row))
            if keys is None:
                paper = self.index.docs[int(row)].paper
                keys = self._author_keys[int(row)] = [(author_key(a), a) for a in paper.authors]
            names = [name for key, name in keys if key in profile.authors]
            if names:
                out[i] = names
        return out

    def rank(
        self,
        candidates: Sequence[Paper],
        sub: Subscriber,
        feedback: Mapping[str, str] | None = None,
        *,
        limit: int | None = None,
    ) -> list[RankedPaper]:
        """The papers that make the subscriber's cut, best first, with their reasons."""
        scoring = self.score(candidates, sub, feedback, limit=limit, everything=False)
        return [self.ranked_paper(scoring, x) for x in scoring.ranked]

    def ranked_paper(self, scoring: Scoring, x: Scored) -> RankedPaper:
        terms = [scoring.profile.terms[k] for _, k in x.terms]
        matched = [t.label for t in terms if self.index.hits(t).spans.get(x.row)]
        matched += [f"author: {a}" for a in x.authors]
        return RankedPaper(
            paper=x.paper,
            score=x.score,
            matched=matched,
            followed_authors=list(x.authors),
            reasons=self.reasons(scoring, x),
            score_parts=dict(x.parts),
        )

    def reasons(self, scoring: Scoring, x: Scored) -> list[Reason]:
        terms = [scoring.profile.terms[k] for _, k in x.terms]
        out = why.author_reasons(x.authors)
        out += why.term_reasons(self.index, x.row, terms)
        out += why.like_reason(x.liked)
        if x.meaning:
            out += why.meaning_reason()
        if scoring.by_upvotes or scoring.subscriber.upvote_boost:
            out += why.upvote_reason(x.paper.upvotes)
        return out


def _recent_papers(store: Store, limit: int) -> list[Paper]:
    return store.recent_papers(limit)


def run_papers(store: Store, *, lookback_days: int, now: datetime) -> list[Paper]:
    """The papers a run's subscribers may get: first seen within lookback_days (and a day),
    so they are indexed and embedded before the first subscriber. An older candidate (a
    digest that kept failing) is prepared when it comes up."""
    return store.papers_first_seen_since(now - timedelta(days=lookback_days + 1))


def rank_papers(
    papers: Sequence[Paper],
    subscriber: Subscriber,
    *,
    limit: int | None = None,
    feedback: Mapping[str, str] | None = None,
    embedder: object = None,
) -> list[RankedPaper]:
    """Rank papers without a store (tests, tools): lexical only unless an embedder is given."""
    ranker = Ranker.for_run(None, papers, embedder=embedder)
    return ranker.rank(papers, subscriber, feedback, limit=limit)
