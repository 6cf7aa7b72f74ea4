"""The calibrated cut and each reader's own model: a phrase's common word does not pass
min_score, a thin day is short, a reader's thumbs change their digest and no one else's, an
undone thumb is undone, and training is bounded."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from datetime import date

import numpy as np
import pytest

from digest.config import Subscriber
from digest.models import DigestContent, Paper
from digest.rank import Ranker
from digest.rank.embed import Embedder
from digest.rank.reader_model import (
    MAX_DISLIKED,
    MAX_LIKED,
    NEGATIVES,
    ReaderModel,
    Thumbs,
    example,
    train,
)
from digest.render.renderer import Renderer
from digest.store import Store
from tests.support.ranking import DictModelStore, HashModel, rank_papers
from tests.test_rank_matching import DAYS, load

AGENTS = {"LLM agents": 2, "benchmark": 1}


def reader(email: str = "ada@example.org", **kw: object) -> Subscriber:
    base: dict[str, object] = {"email": email, "keywords": AGENTS, "max_papers": 15}
    base.update(kw)
    return Subscriber(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def history() -> list[Paper]:
    """Papers the readers were shown before (the thumbs are on these)."""
    return load(DAYS[4])


@pytest.fixture(scope="module")
def today() -> list[Paper]:
    return load(DAYS[0])


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A state for the papers' vectors: each test's rankers embed nothing twice."""
    with Store.open(tmp_path_factory.mktemp("state") / "state.sqlite3") as store:
        yield store


@pytest.fixture
def ranker_for(real_model: Embedder, state: Store) -> Callable[..., Ranker]:
    def make(papers: list[Paper], models: DictModelStore | None = None) -> Ranker:
        return Ranker.for_run(state, papers, model=real_model, models=models, background=0)

    return make


def thumbs_on(history: list[Paper]) -> dict[str, str]:
    """Ada likes agent benchmarks and dislikes generation and vision papers."""
    likes = [p.id for p in history if "agent" in p.title.lower()][:4]
    dislikes = [
        p.id for p in history if any(w in p.title.lower() for w in ("image", "video", "3d"))
    ][:4]
    assert len(likes) >= 2 and len(dislikes) >= 3
    return {**dict.fromkeys(likes, "like"), **dict.fromkeys(dislikes, "dislike")}


def scores(
    ranker: Ranker, papers: list[Paper], sub: Subscriber, fb: dict[str, str]
) -> dict[str, float]:
    return {x.paper.id: x.score for x in ranker.score(papers, sub, fb).ranked}


# --- the cut ---------------------------------------------------------------------------------


def test_a_phrases_common_word_alone_does_not_pass_min_score(
    ranker_for: Callable[..., Ranker], today: list[Paper]
) -> None:
    sub = reader(keywords={"text-to-image": 1})  # the default min_score
    # These four say "text" (and not "image"): the word alone gives nothing (it used to be
    # "abstract: text (of “text-to-image”)", and passed).
    texts = ("2606.00467", "2606.13594", "2606.11662", "2606.09446")
    assert not {r.paper.id for r in rank_papers(today, sub)} & set(texts)  # keywords only
    ranker = ranker_for(today)
    for x in ranker.score(today, sub).ranked:
        if x.paper.id in texts:
            assert x.parts["lexical"] == 0 and x.terms == []
    for r in ranker.rank(today, sub):  # what is sent matched the phrase, or its meaning
        assert r.matched == ["text-to-image"] or [w.kind for w in r.reasons] == ["meaning"]


def test_a_thin_day_is_short_and_says_so(
    ranker_for: Callable[..., Ranker], today: list[Paper]
) -> None:
    sub = reader(keywords={"video generation": 2, "text-to-image": 2, "diffusion": 1})
    ranked = ranker_for(today).rank(today, sub)
    # A 30-paper day of mostly agents and LLMs: a few papers, no filler, no upvote padding.
    assert 1 <= len(ranked) <= 6
    assert all(r.score >= sub.min_score for r in ranked)
    assert all("upvotes" not in [why.kind for why in r.reasons] for r in ranked)
    content = DigestContent(
        subscriber_email=sub.email,
        subscriber_name="Ada",
        digest_date=date(2026, 6, 12),
        papers=ranked,
        candidates_count=len(today),
        profile=list(sub.keywords.items()),
    )
    rendered = Renderer().render(content)
    others = len(today) - len(ranked)
    line = f"{others} others did not match your interests"
    assert line in " ".join(rendered.text.split())
    assert line in rendered.html


def test_without_keywords_papers_come_by_upvotes_and_with_keywords_never() -> None:
    papers = [Paper(id=f"2601.0000{i}", title=f"Paper {i}", upvotes=10 * i) for i in range(1, 6)]
    assert [r.paper.id for r in rank_papers(papers, reader(keywords={}))][0] == "2601.00005"
    assert rank_papers(papers, reader(keywords={"GNN": 1})) == []


# --- each reader's model ---------------------------------------------------------------------


def test_a_readers_thumbs_change_their_digest_and_no_one_elses(
    ranker_for: Callable[..., Ranker], history: list[Paper], today: list[Paper]
) -> None:
    store = DictModelStore()
    ranker = ranker_for(history + today, store)
    ada, bob = reader("ada@example.org"), reader("bob@example.org")
    before = {s.email: scores(ranker, today, s, {}) for s in (ada, bob)}
    for pid, kind in thumbs_on(history).items():
        store.thumb(ada.email, pid, kind)
    after = {s.email: scores(ranker, today, s, store.feedback(s.email)) for s in (ada, bob)}
    assert after[bob.email] == before[bob.email]
    assert after[ada.email] != before[ada.email]
    assert ranker.reader_models.trained == 1
    [x] = [x for x in ranker.score(today, ada, store.feedback(ada.email)).ranked[:1]]
    assert "reader" in x.parts
    ranker.close()
    assert list(store.models) == [ada.email]  # kept for the next run
    # The next run reads it back: nothing trained again, the same scores.
    again = ranker_for(history + today, store)
    assert scores(again, today, ada, store.feedback(ada.email)) == after[ada.email]
    assert again.reader_models.trained == 0


def test_an_undone_thumb_is_undone_and_a_cleared_history_is_back_to_keywords(
    ranker_for: Callable[..., Ranker], history: list[Paper], today: list[Paper]
) -> None:
    store = DictModelStore()
    ada = reader()
    thumbs = thumbs_on(history)
    for pid, kind in thumbs.items():
        store.thumb(ada.email, pid, kind)
    ranker = ranker_for(history + today, store)
    keywords_only = scores(ranker, today, ada, {})
    scores(ranker, today, ada, store.feedback(ada.email))
    ranker.close()

    last = list(thumbs)[-1]
    store.undo(ada.email, last)
    undone = scores(ranker_for(history + today, store), today, ada, store.feedback(ada.email))
    fresh = scores(ranker_for(history + today), today, ada, store.feedback(ada.email))
    assert undone == fresh  # as if the thumb had never been given (the kept model not used)

    store.clear(ada.email)
    assert store.models == {}
    cleared = scores(ranker_for(history + today, store), today, ada, store.feedback(ada.email))
    assert cleared == keywords_only


def test_excluded_words_hold_whatever_the_readers_model_says(
    ranker_for: Callable[..., Ranker], history: list[Paper], today: list[Paper]
) -> None:
    ada = reader(exclude=("benchmark",))
    ranker = ranker_for(history + today)
    sent = ranker.rank(today, ada, thumbs_on(history))
    assert sent and all("benchmark" not in (r.paper.title + r.paper.abstract).lower() for r in sent)


def test_training_is_bounded_in_examples_and_memory() -> None:
    many = {f"2601.{i:05d}": "like" if i % 2 else "dislike" for i in range(5000)}
    thumbs = Thumbs.of((), many)
    assert len(thumbs.liked) == MAX_LIKED and len(thumbs.disliked) == MAX_DISLIKED
    assert thumbs.liked[-1] == "2601.04999"  # the latest are kept
    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        v = rng.standard_normal((n, 384)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    background = unit(1000)
    examples = [
        example(
            thumbs, unit(MAX_LIKED), unit(MAX_DISLIKED), background, fingerprint=b"f" * 16, seed=i
        )
        for i in range(300)
    ]
    assert {len(e.labels) for e in examples} == {MAX_LIKED + MAX_DISLIKED + NEGATIVES}
    tracemalloc.start()
    models = train(examples)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(models) == 300
    assert peak < 200 * 2**20  # a batch at a time, not all 300 readers' kernels at once
    again = ReaderModel.from_bytes(models[0].to_bytes(), 384)
    assert again is not None and np.array_equal(again.weights, models[0].weights)
    assert ReaderModel.from_bytes(b"not a model", 384) is None


def test_a_reader_with_too_few_thumbs_has_no_model() -> None:
    model = HashModel()
    papers = [Paper(id=f"2601.{i:05d}", title=f"GNN paper {i}", abstract="GNN") for i in range(20)]
    ranker = Ranker.for_run(None, papers, model=model)
    few = {papers[0].id: "like", papers[1].id: "dislike", papers[2].id: "dislike"}
    scoring = ranker.score(papers[3:], reader(keywords={"GNN": 1}), few)
    assert all("reader" not in x.parts for x in scoring.ranked)
    assert ranker.reader_models.trained == 0
