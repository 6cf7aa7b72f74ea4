"""Each keyword's own meaning against the paper's title (the `keyword` part), how a paper's two
vectors are stored, and the reader's model's logit centred on the usual paper's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from digest.config import Subscriber
from digest.models import Paper
from digest.rank import Ranker
from digest.rank.calibrate import PART_SCALES
from digest.rank.corpus import stored_name
from digest.rank.embed import DIMENSION, Embedder
from digest.rank.embed_store import load_embeddings, save_embeddings
from digest.rank.ranker import MEANING_EVIDENCE
from digest.store import Store
from tests.support.ranking import DictModelStore, HashModel
from tests.test_rank_matching import DAYS, load


def unit(i: int) -> np.ndarray:
    vector = np.zeros(DIMENSION, dtype=np.float32)
    vector[i] = 1.0
    return vector


def papers(count: int = 40) -> list[Paper]:
    """Papers whose words match no keyword below: only meaning can speak for them."""
    return [
        Paper(
            id=f"2601.{i:05d}",
            title=f"Study number {i} of ordinary things",
            abstract=f"We look at ordinary thing {i} in some detail and report what we saw.",
        )
        for i in range(count)
    ]


KEYWORDS = {"protein folding": 2.0, "weather forecasting": 1.0}


def reader(**kw: object) -> Subscriber:
    base: dict[str, object] = {"email": "ada@example.org", "keywords": KEYWORDS, "min_score": 0}
    base.update(kw)
    return Subscriber(**base)  # type: ignore[arg-type]


def test_a_title_on_one_keyword_counts_though_the_profile_is_about_more() -> None:
    day = papers()
    on_folding, on_weather = day[0], day[1]
    model = HashModel(
        fixed={
            "protein folding": unit(0),
            "weather forecasting": unit(1),
            on_folding.title: unit(0),
            on_weather.title: unit(1),
        }
    )
    ranker = Ranker.for_run(None, day, model=model, subscribers=[reader()])
    scoring = ranker.score(day, reader())
    by_id = {x.paper.id: x for x in scoring.ranked}
    folding, weather = by_id[on_folding.id], by_id[on_weather.id]
    rest = [x.parts["keyword"] for x in scoring.ranked if x not in (folding, weather)]
    assert folding.parts["keyword"] >= MEANING_EVIDENCE
    # The stronger keyword (weight 2 of 3) counts for more than the weaker one (1 of 3).
    assert folding.parts["keyword"] > weather.parts["keyword"] > max(rest)
    assert folding.score > weather.score > np.median([x.score for x in scoring.ranked])
    # It is why the paper is there, and the reason names the keyword.
    [meaning] = [r for r in ranker.reasons(scoring, folding) if r.kind == "meaning"]
    assert meaning.terms == ("protein folding",) and "protein folding" in meaning.text
    assert "keyword" in PART_SCALES


def test_each_keyword_is_embedded_once_and_kept_with_the_profiles(tmp_path: Path) -> None:
    day = papers(10)
    model = HashModel()
    with Store.open(tmp_path / "state.sqlite3") as store:
        first = Ranker.for_run(store, day, model=model, subscribers=[reader()])
        first.score(day, reader())  # waits for the profile's texts
        first.close()
        assert store.stored_profile_texts(list(KEYWORDS), model.name) == set(KEYWORDS)
        calls = model.calls
        ranker = Ranker.for_run(store, day, model=model, subscribers=[reader()])
        ranker.score(day, reader())
        ranker.close()
        assert model.calls == calls  # nothing embedded again: papers, titles, keywords


def test_a_papers_two_vectors_are_one_record_and_an_older_record_is_embedded_again(
    tmp_path: Path,
) -> None:
    day = papers(6)
    model = HashModel()
    with Store.open(tmp_path / "state.sqlite3") as store:
        store.record_papers(day, now=datetime(2026, 1, 5, tzinfo=UTC))
        Ranker.for_run(store, day, model=model)
        assert model.calls == 2 * len(day)  # each paper, then each title
        stored = load_embeddings(store, [p.id for p in day], stored_name(model))
        assert stored.keys() == {p.id for p in day}
        expected = model.embed([day[0].title])[0]
        assert all(len(v) == 2 * DIMENSION for v in stored.values())
        np.testing.assert_allclose(stored[day[0].id][DIMENSION:], expected, atol=1e-6)

        # A record made before titles were embedded (one vector, the model's name alone).
        save_embeddings(store, [day[0].id], model.embed([day[0].title]), model.name)
        calls = model.calls
        Ranker.for_run(store, day, model=model)
        assert model.calls == calls + 2  # that paper's two texts, nothing else
        assert len(load_embeddings(store, [day[0].id], stored_name(model))[day[0].id]) == 768


# --- the reader's model, centred -------------------------------------------------------------


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with Store.open(tmp_path_factory.mktemp("state") / "state.sqlite3") as store:
        yield store


@pytest.fixture
def ranker_for(real_model: Embedder, state: Store) -> Callable[[list[Paper]], Ranker]:
    def make(day: list[Paper]) -> Ranker:
        return Ranker.for_run(state, day, model=real_model, models=DictModelStore(), background=0)

    return make


def test_a_model_trained_mostly_on_dislikes_moves_papers_against_each_other_not_all_down(
    ranker_for: Callable[[list[Paper]], Ranker],
) -> None:
    history, today = load(DAYS[4]), load(DAYS[0])
    likes = [p.id for p in history if "agent" in p.title.lower()][:2]
    dislikes = [p.id for p in history if p.id not in likes][:12]
    feedback = {**dict.fromkeys(likes, "like"), **dict.fromkeys(dislikes, "dislike")}
    ada = Subscriber(email="ada@example.org", keywords={"LLM agents": 2, "benchmark": 1})
    ranker = ranker_for(history + today)
    with_thumbs = ranker.score(today, ada, feedback).ranked
    reader = np.array([x.parts["reader"] for x in with_thumbs])
    # Centred on the usual paper: some above it, some below, about as many.
    assert reader.min() < 0 < reader.max()
    assert abs(float(np.median(reader))) < 1.0
    # The papers it says no to least come up; the digest is not emptied by the dislikes.
    kept = ranker.score(today, ada, feedback, everything=False).ranked
    assert len(kept) >= len(ranker.score(today, ada, {}, everything=False).ranked) // 2
