"""The ranker of one run: papers indexed and embedded once, each subscriber scored with numpy.

    ranker = Ranker.for_run(store, papers, model=model, subscribers=...)   # once per run
    ranker.rank(candidates, subscriber, store.feedback(email)) -> list[RankedPaper]
    ranker.close()                                     # the caller closes the model itself

Each candidate gets its parts (calibrate.py: meaning, each keyword's meaning, words, likes,
dislikes, the reader's own model) and a calibrated score, then cut.py decides the digest. The
model is the caller's: the ranker never starts one (None ranks by keywords).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from digest.config import Subscriber
from digest.models import Paper, RankedPaper, Reason
from digest.rank import calibrate
from digest.rank import reasons as why
from digest.rank.calibrate import KEYWORDS_ONLY, WITH_MODEL, Calibration
from digest.rank.corpus import Corpus
from digest.rank.cut import order_and_cut
from digest.rank.embed import EmbeddingModel, ModelUnavailable
from digest.rank.keywords import KeywordMeanings
from digest.rank.lexical import BM25F, Index, Term
from digest.rank.profile import Profile, author_key, compile_profile, profile_key, profile_text
from digest.rank.profile_vectors import ProfileVectors
from digest.rank.reader_model import ReaderModel, ReaderModelStore, Thumbs
from digest.rank.reader_models import ReaderModels
from digest.store import Store

log = logging.getLogger(__name__)

# IDF is computed over this many of the store's most recent papers (and the run's).
BACKGROUND_PAPERS = 1000
PROFILE_CACHE = 1024  # compiled profiles kept in a run
MEANING_EVIDENCE = 1.0  # sd above the usual paper: close enough in meaning to count alone
LIKE_EVIDENCE = 0.25  # cosine above the usual paper's to a liked paper: counts alone
USUAL_SAMPLE = 256  # papers the usual closeness to a reader's liked papers is taken over
LIKE_REASON = 0.4  # cosine to a liked paper from which it is named as a reason
READER_EVIDENCE = 1.0  # the reader's model's logit above the usual paper's: counts alone


@dataclass
class Scored:
    """One candidate as scored for one subscriber, before the cut."""

    paper: Paper
    row: int  # in the ranker's index
    score: float
    parts: dict[str, float]
    excluded: bool  # an excluded word, or the reader marked it
    authors: list[str]
    liked: list[Paper] = field(default_factory=list)  # liked papers it is close to (a reason)
    meaning: bool = False  # close in meaning to the profile
    keyword: str = ""  # the keyword closest in meaning to its title, when that speaks for it
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


@dataclass
class _Parts:
    """The parts of every candidate's score, as arrays over the candidates."""

    values: dict[str, np.ndarray]
    term_scores: list[np.ndarray]
    liked: list[Paper]
    like_cosines: np.ndarray  # (candidates, liked)
    closest: np.ndarray  # per candidate: the term (index) whose meaning is closest to its title
    labels: list[str]  # the profile's terms as written


class Ranker:
    def __init__(
        self,
        corpus: Corpus,
        calibration: Calibration = WITH_MODEL,
        models: ReaderModelStore | None = None,
    ) -> None:
        self.corpus = corpus
        self.calibration = calibration
        self.reader_models = ReaderModels(corpus, models)
        self._profiles: dict[tuple[object, ...], Profile] = {}
        self._profile_vectors: ProfileVectors | None = None
        self._term_scores: dict[Term, np.ndarray] = {}
        self._author_keys: dict[int, list[tuple[str, str]]] = {}
        # profile text -> how its cosines to the run's papers are standardised, over how many
        self._standardisers: dict[str, tuple[float, float, int]] = {}
        self.keywords = KeywordMeanings(corpus, self._profile_vector)

    @property
    def index(self) -> Index:
        return self.corpus.index

    @property
    def model(self) -> EmbeddingModel | None:
        return self.corpus.model

    # --- preparation (once per run) ---------------------------------------------------------

    @classmethod
    def for_run(
        cls,
        store: Store | None,
        papers: Iterable[Paper],
        *,
        model: EmbeddingModel | None,
        subscribers: Sequence[Subscriber] = (),
        calibration: Calibration = WITH_MODEL,
        background: int = BACKGROUND_PAPERS,
        bm25f: BM25F | None = None,
        models: ReaderModelStore | None = None,
    ) -> Ranker:
        """Index the run's papers (and the store's recent ones, for IDF), embed the papers
        not embedded yet and store their vectors, compile the subscribers' profiles. `model`
        is the caller's (started, and closed, by it); None, or one that cannot load, ranks by
        keywords (one warning for the latter). `models`: where readers' models are kept."""
        if model is not None:
            try:
                model.ready()  # the model loads in its own process: wait for it here
            except ModelUnavailable as exc:
                log.warning(
                    "ranking by keywords only: the embedding model is unavailable (%s)", exc
                )
                model = None
        corpus = Corpus(store, model, bm25f)
        papers = list(papers)
        stored = corpus.prefetch(papers)
        if store is not None and background > 0:
            corpus.index.add(_recent_papers(store, background))
        corpus.add(papers, stored=stored)
        ranker = cls(corpus, calibration, models)
        if corpus.model is not None:
            ranker._profile_vectors = ProfileVectors(corpus.model, store)
            ranker._profile_vectors.start(texts_to_embed(subscribers))
        return ranker

    def close(self) -> None:
        """Keep the profile vectors and readers' models made in this run for the next ones, and
        stop embedding. The model itself is the caller's to close."""
        if self._profile_vectors is not None:
            self._profile_vectors.close()
        self.reader_models.save()

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
        thumbs = Thumbs.of(profile.likes, feedback)
        self.corpus.add(papers)
        rows = self.corpus.index.rows([p.id for p in papers])
        parts = self._parts(rows, profile, thumbs, sub.email)
        marks = {p: "like" for p in thumbs.liked} | {p: "dislike" for p in thumbs.disliked}
        removed = self._excluded(rows, profile) | np.array([p.id in marks for p in papers], bool)
        by_upvotes = not profile.terms
        upvotes = np.array([p.upvotes if p.upvotes is not None else -1 for p in papers], float)
        if by_upvotes:
            score = np.maximum(upvotes, 0.0)
            passes = np.ones(len(papers), bool)
        else:
            score = parts.values["score"].copy()
            if sub.upvote_boost:
                score += sub.upvote_boost * np.log2(1 + np.maximum(upvotes, 0.0))
            passes = (score >= sub.min_score) & evidence(parts.values)
        authors = self._followed(rows, profile) if profile.authors else {}
        by_author = np.zeros(len(papers), dtype=bool)
        by_author[list(authors)] = True
        cut = order_and_cut(
            score,
            upvotes,
            [p.id for p in papers],
            removed=removed,
            by_author=by_author,
            passes=passes,
            limit=limit,
        )
        shown = cut.shown if everything else cut.kept
        ranked = [
            self._scored(int(i), papers, rows, parts, score, removed, marks, authors) for i in shown
        ]
        return Scoring(sub, profile, ranked, len(cut.kept), by_upvotes, sub.min_score, limit)

    def _parts(self, rows: np.ndarray, profile: Profile, thumbs: Thumbs, email: str) -> _Parts:
        """Every part of the score of these rows (see calibrate.py), and the score itself."""
        term_scores = [self._term_score(t)[rows] for t in profile.terms]
        bm25f = np.sum(term_scores, axis=0) if term_scores else np.zeros(len(rows))
        values = {"lexical": bm25f, "words": calibrate.words_part(bm25f)}
        liked: list[Paper] = []
        like_cosines = np.zeros((len(rows), 0))
        closest = np.full(len(rows), -1)
        if self.corpus.model is not None and len(rows):
            liked_vecs, liked = self.corpus.vectors_of(thumbs.liked)
            disliked_vecs, _ = self.corpus.vectors_of(thumbs.disliked)
            query = self._profile_vector(profile.text)
        if self.corpus.model is not None and len(rows):  # (the model may have failed just now)
            vectors = self.corpus.matrix[rows]
            if query is not None:
                values["semantic"] = vectors @ query
                mean, sd = self._standardiser(profile.text, query)
                values["meaning"] = (values["semantic"] - mean) / sd
            keyword = self.keywords.part(rows, profile.terms)
            if keyword is not None:
                values["keyword"], closest = keyword
            if len(liked_vecs):
                like_cosines = vectors @ liked_vecs.T
                values["likes"] = like_cosines.max(axis=1) - self._usual(liked_vecs)
            if len(disliked_vecs):
                usual = self._usual(disliked_vecs)
                values["dislikes"] = (vectors @ disliked_vecs.T).max(axis=1) - usual
            model = self.reader_models.get(email, thumbs)
            if model is not None:
                values["reader"] = model.logits(vectors) - self._usual_logit(model)
        calibration = self.calibration if self.corpus.model is not None else KEYWORDS_ONLY
        if self.corpus.model is None:  # keywords alone: their own scale (fitted with it)
            values["words"] = calibrate.words_part(bm25f, calibrate.KEYWORDS_ONLY_SCALE)
        values["score"] = calibrate.probability(values, calibration)
        labels = [t.label for t in profile.terms]
        return _Parts(values, term_scores, liked, like_cosines, closest, labels)

    def _excluded(self, rows: np.ndarray, profile: Profile) -> np.ndarray:
        excluded = np.zeros(len(rows), dtype=bool)
        for term in profile.excludes:
            excluded |= self.corpus.index.hits(term).counts[rows].sum(axis=1) > 0
        return excluded

    def _scored(
        self,
        i: int,
        papers: list[Paper],
        rows: np.ndarray,
        parts: _Parts,
        score: np.ndarray,
        removed: np.ndarray,
        marks: dict[str, str],
        authors: dict[int, list[str]],
    ) -> Scored:
        values = {name: float(v[i]) for name, v in parts.values.items()}
        by_keyword = values.get("keyword", 0.0) >= MEANING_EVIDENCE
        close = parts.like_cosines[i] if len(parts.liked) else np.zeros(0)
        nearest = [int(k) for k in np.argsort(-close, kind="stable")[:2] if close[k] >= LIKE_REASON]
        return Scored(
            paper=papers[i],
            row=int(rows[i]),
            score=float(score[i]),
            parts=values,
            excluded=bool(removed[i]),
            marked=marks.get(papers[i].id, ""),
            authors=authors.get(i, []),
            liked=[parts.liked[k] for k in nearest],
            meaning=values.get("meaning", 0.0) >= MEANING_EVIDENCE or by_keyword,
            keyword=parts.labels[int(parts.closest[i])] if by_keyword else "",
            terms=sorted(
                ((float(ts[i]), k) for k, ts in enumerate(parts.term_scores) if ts[i] > 0),
                key=lambda c: (-c[0], c[1]),
            ),
        )

    def _profile_vector(self, text: str) -> np.ndarray | None:
        """The profile text's vector (see profile_vectors); None without the model."""
        model = self.corpus.model
        if model is None or not text:
            return None
        if self._profile_vectors is None:
            self._profile_vectors = ProfileVectors(model, self.corpus.store)
        try:
            return self._profile_vectors.get(text)
        except Exception as exc:  # onnxruntime raises its own types
            self.corpus.model_failed(exc)
            return None

    def _standardiser(self, text: str, query: np.ndarray) -> tuple[float, float]:
        """(mean, sd) of the profile's cosines to every embedded paper of the run (calibrate.py:
        `meaning`), once per profile."""
        found = self._standardisers.get(text)
        papers = self.corpus.embedded
        if found is None or found[2] != papers:
            if len(self._standardisers) >= PROFILE_CACHE:
                self._standardisers.clear()
            background = self.corpus.matrix[self.corpus.embedded_rows] @ query
            found = self._standardisers[text] = (*calibrate.standardiser(background), papers)
        return found[0], found[1]

    def _usual(self, marked: np.ndarray) -> float:
        """How close the usual paper of the run is to its closest of these (liked) papers: a
        sample of USUAL_SAMPLE embedded papers' mean."""
        rows = self.corpus.embedded_rows[:: max(1, len(self.corpus.embedded_rows) // USUAL_SAMPLE)]
        if not len(rows):
            return 0.0
        return float((self.corpus.matrix[rows] @ marked.T).max(axis=1).mean())

    def _usual_logit(self, model: ReaderModel) -> float:
        """The reader's model's mean logit over a sample of the run's papers: its logits count
        above this (a model trained mostly on dislikes says no to nearly everything; what
        matters is which papers it says no to least)."""
        rows = self.corpus.embedded_rows[:: max(1, len(self.corpus.embedded_rows) // USUAL_SAMPLE)]
        if not len(rows):
            return 0.0
        return float(model.logits(self.corpus.matrix[rows]).mean())

    def _term_score(self, term: Term) -> np.ndarray:
        """The term's score in every indexed paper; cached (subscribers share terms)."""
        score = self._term_scores.get(term)
        if score is None or len(score) != len(self.corpus.index):
            score = self._term_scores[term] = self.corpus.index.term_score(term)
        return score

    def _followed(self, rows: np.ndarray, profile: Profile) -> dict[int, list[str]]:
        """Candidate position -> the followed authors among its authors, as spelled there."""
        out: dict[int, list[str]] = {}
        for i, row in enumerate(rows):
            keys = self._author_keys.get(int(row))
            if keys is None:
                paper = self.corpus.index.docs[int(row)].paper
                keys = self._author_keys[int(row)] = [(author_key(a), a) for a in paper.authors]
            names = [name for key, name in keys if key in profile.authors]
            if names:
                out[i] = names
        return out

    # --- the result -------------------------------------------------------------------------

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
        index = self.corpus.index
        matched = [t.label for t in terms if index.hits(t).spans.get(x.row)]
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
        out += why.term_reasons(self.corpus.index, x.row, terms)
        out += why.like_reason(x.liked)
        if x.meaning:
            out += why.meaning_reason(x.keyword)
        if scoring.by_upvotes or scoring.subscriber.upvote_boost:
            out += why.upvote_reason(x.paper.upvotes)
        return out


def evidence(values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Something in the paper speaks for it: a keyword, or closeness in meaning (to the
    profile, to its keywords one by one, to a liked paper) or in the reader's own model.
    Nothing else is ever sent, even with min_score = 0."""
    found = values["words"] > 0
    if "meaning" in values:
        found = found | (values["meaning"] >= MEANING_EVIDENCE)
    if "keyword" in values:
        found = found | (values["keyword"] >= MEANING_EVIDENCE)
    if "likes" in values:
        found = found | (values["likes"] > LIKE_EVIDENCE)
    if "reader" in values:
        found = found | (values["reader"] > READER_EVIDENCE)
    out: np.ndarray = found
    return out


def texts_to_embed(subscribers: Sequence[Subscriber]) -> list[str]:
    """The texts a run's readers need embedded, in the order they come up: each profile (its
    keywords together), then each of its keywords alone."""
    out: list[str] = []
    for sub in subscribers:
        out.append(profile_text(sub.keywords))
        out += list(sub.keywords)
    return out


def _recent_papers(store: Store, limit: int) -> list[Paper]:
    return store.recent_papers(limit)


def run_papers(store: Store, *, lookback_days: int, now: datetime) -> list[Paper]:
    """The papers a run's subscribers may get: first seen within lookback_days (and a day),
    so they are indexed and embedded before the first subscriber. An older candidate (a
    digest that kept failing) is prepared when it comes up."""
    return store.papers_first_seen_since(now - timedelta(days=lookback_days + 1))
