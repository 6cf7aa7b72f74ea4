"""The embedding model in the ranking: its files checked, the lexical fallback, embeddings
stored once, likes (config and feedback), meaning, and `digest explain`."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import Subscriber, load_config
from digest.models import Paper
from digest.rank import Ranker, explain_paper
from digest.rank.corpus import stored_name
from digest.rank.embed import MODEL_DIR, Embedder, ModelUnavailable
from digest.rank.embed_store import load_embeddings
from digest.run import RunOptions, send_now
from digest.store import Store
from tests.support.helpers import hf_items, hf_page, write_config
from tests.support.ranking import HashModel
from tests.support.run import deps
from tests.test_rank_matching import DAYS, load

DAY = datetime(2026, 6, 12, 6, 0, tzinfo=UTC)


class CountingEmbedder:
    """The real model, recording every text it embeds (an EmbeddingModel)."""

    def __init__(self, real: Embedder) -> None:
        self.real = real
        self.name = real.name
        self.texts: list[str] = []

    def ready(self) -> None:
        pass

    def prefetch(self, texts: Sequence[str]) -> None:
        pass

    def close(self) -> None:
        pass

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += texts
        return self.real.embed(texts)


def config_for(tmp_path: Path, items_file: str, **sub: object) -> Path:
    (tmp_path / "papers.html").write_text(hf_page(hf_items(items_file)), encoding="utf-8")
    subscriber = {"email": "ada@example.org", "keywords": {"LLM agent": 2, "benchmark": 1}}
    subscriber.update(sub)
    return write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=[subscriber],
    )


# --- the model files -------------------------------------------------------------------------


def test_model_files_are_checked_at_load(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="cannot read"):
        Embedder(tmp_path)
    shutil.copy(MODEL_DIR / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "model.onnx").write_bytes(b"not the model")
    with pytest.raises(ModelUnavailable, match="sha256"):
        Embedder(tmp_path)


def test_a_run_without_the_model_ranks_by_keywords_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(config_for(tmp_path, "hf_api_daily_papers_2026-06-12_sotawhat.json"))
    with caplog.at_level(logging.WARNING):
        missing = lambda: Embedder(tmp_path / "none")  # noqa: E731
        report = send_now(config, RunOptions(keep_papers=True), deps(DAY, model=missing))
    assert report.exit_code == 0
    [sub] = report.subscribers
    assert sub.status == "sent" and sub.papers
    assert all("LLM agent" in r.matched or "benchmark" in r.matched for r in sub.papers)
    assert all("semantic" not in r.score_parts for r in sub.papers)
    warnings = [r for r in caplog.records if "keywords only" in r.getMessage()]
    assert len(warnings) == 1


# --- embeddings stored once ------------------------------------------------------------------


def test_each_paper_is_embedded_once_across_runs(tmp_path: Path, real_model: Embedder) -> None:
    counting = CountingEmbedder(real_model)
    first_day = "hf_api_daily_papers_2026-06-12_sotawhat.json"
    config = load_config(config_for(tmp_path, first_day))
    day1 = {p.id for p in load(first_day)}

    assert send_now(config, RunOptions(), deps(DAY, model=lambda: counting)).exit_code == 0
    with Store.open(config.digest.state) as store:
        stored = load_embeddings(store, day1, stored_name(real_model))
    assert stored.keys() == day1
    papers_embedded = [t for t in counting.texts if len(t) > 200]  # abstracts, not profiles
    assert len(papers_embedded) == len(day1)

    # A second run over the same page: nothing new, nothing embedded again.
    counting.texts.clear()
    report = send_now(
        config, RunOptions(keep_papers=True), deps(DAY + timedelta(days=1), model=lambda: counting)
    )
    assert report.exit_code == 0
    assert [t for t in counting.texts if len(t) > 200] == []

    # A third with another day's page: only its papers are embedded.
    second_day = "hf_api_daily_papers_2026-07-31_allnewsai.json"
    (tmp_path / "papers.html").write_text(hf_page(hf_items(second_day)), encoding="utf-8")
    counting.texts.clear()
    later = deps(DAY + timedelta(days=2), model=lambda: counting)
    assert send_now(config, RunOptions(), later).exit_code == 0
    day2 = {p.id for p in load(second_day)} - day1
    assert len([t for t in counting.texts if len(t) > 200]) == len(day2)


# --- fusion, likes and meaning ---------------------------------------------------------------


@pytest.fixture(scope="module")
def day_ranker(real_model: Embedder) -> tuple[Ranker, list[Paper]]:
    papers = [p for day in DAYS for p in load(day)]
    return Ranker.for_run(None, papers, model=real_model), papers


def sub(**kw: object) -> Subscriber:
    base: dict[str, object] = {"email": "ada@example.org", "max_papers": 10}
    base.update(kw)
    return Subscriber(**base)  # type: ignore[arg-type]


def test_meaning_finds_a_relevant_paper_that_names_no_keyword(
    day_ranker: tuple[Ranker, list[Paper]],
) -> None:
    ranker, papers = day_ranker
    day = load(DAYS[0])
    reader = sub(keywords={"LoRA": 2, "quantization": 2, "efficient LLM": 2, "KV cache": 1})
    ranked = ranker.rank(day, reader)
    # 2606.13392 "MiniMax Sparse Attention" (efficient long-context attention for LLMs)
    # names none of the keywords: only "efficient" of "efficient LLM", in passing.
    sparse = next(r for r in ranked if r.paper.id == "2606.13392")
    assert not sparse.matched
    assert "meaning" in [r.kind for r in sparse.reasons]
    assert {"lexical", "semantic", "meaning", "score"} <= sparse.score_parts.keys()
    lexical_only = Ranker.for_run(None, papers, model=None)
    by_words = [r.paper.id for r in lexical_only.rank(day, reader)]
    position = [r.paper.id for r in ranked].index("2606.13392")
    assert "2606.13392" not in by_words or by_words.index("2606.13392") > position


def test_likes_from_the_config_and_from_feedback_pull_similar_papers_up(
    day_ranker: tuple[Ranker, list[Paper]],
) -> None:
    ranker, _ = day_ranker
    day = load(DAYS[0])
    liked = "2606.10423"  # WebChallenger, a web agent; close to EvoBrowseComp (search agents)
    rest = [p for p in day if p.id != liked]
    reader = sub(keywords={"LLM": 1}, min_score=0.0, max_papers=30)
    plain = {x.paper.id: x for x in ranker.score(rest, reader).ranked}  # every candidate
    from_config = ranker.rank(
        rest, sub(keywords={"LLM": 1}, min_score=0.0, max_papers=30, like=(liked,))
    )
    from_feedback = ranker.rank(rest, reader, {liked: "like"})
    assert [r.paper.id for r in from_config] == [r.paper.id for r in from_feedback]
    closest = max(from_config, key=lambda r: r.score_parts["likes"])
    assert closest.score_parts["likes"] > 0.25  # its cosine to the liked paper, above the usual
    assert closest.score > plain[closest.paper.id].score  # it moved up
    sent_before = [r.paper.id for r in ranker.rank(rest, reader)]
    assert closest.paper.id not in sent_before  # nothing spoke for it: now the like does
    assert closest.paper.id == "2606.13120"
    assert any(r.kind == "like" and "WebChallenger" in r.text for r in closest.reasons)

    disliked = {x.paper.id: x for x in ranker.score(rest, reader, {liked: "dislike"}).ranked}
    moved = closest.paper.id
    assert disliked[moved].score < plain[moved].score


def test_a_liked_paper_not_in_the_state_is_ignored_with_one_warning(
    day_ranker: tuple[Ranker, list[Paper]], caplog: pytest.LogCaptureFixture
) -> None:
    ranker, _ = day_ranker
    day = load(DAYS[0])
    reader = sub(keywords={"LLM": 1}, like=("2001.00001",))
    with caplog.at_level(logging.WARNING):
        first = ranker.rank(day, reader)
        ranker.rank(day, reader)
    assert [r.paper.id for r in first] == [
        r.paper.id for r in ranker.rank(day, sub(keywords={"LLM": 1}))
    ]
    assert len([r for r in caplog.records if "2001.00001" in r.getMessage()]) == 1


# --- explain ---------------------------------------------------------------------------------


def test_explain_prints_parts_reasons_and_the_cut(tmp_path: Path, real_model: Embedder) -> None:
    path = config_for(tmp_path, "hf_api_daily_papers_2026-06-12_sotawhat.json", max_papers=3)
    config = load_config(path)
    # The state now holds the day, ranked by the model as `explain` ranks it.
    send_now(config, RunOptions(), deps(DAY, model=lambda: real_model))
    sent = Store.open(config.digest.state)
    [record] = sent.digests("ada@example.org")
    sent.close()

    runner = CliRunner()
    result = runner.invoke(
        cli, ["explain", record.paper_ids[0], "--subscriber", "ada@example.org", "-c", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert "rank 1 of 30" in result.output  # among the papers first seen that day
    assert "in: #1 of max_papers 3" in result.output
    assert "lexical" in result.output and "why:" in result.output
    assert "not new for this reader" in result.output  # it was sent already

    # A paper below the cut says so; one not in the state is a usage error.
    last = explain_paper(config, "2606.12488", "ada@example.org", model=None, now=DAY)
    assert not last.in_digest and last.verdict.startswith("out:")
    missing = runner.invoke(
        cli, ["explain", "2001.00001", "--subscriber", "ada@example.org", "-c", str(path)]
    )
    assert missing.exit_code == 2
    assert "not in the state" in missing.output


def test_a_model_that_fails_mid_run_falls_back_to_keywords(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        name = "broken"

        def ready(self) -> None:
            pass

        def prefetch(self, texts: Sequence[str]) -> None:
            raise RuntimeError("onnxruntime fell over")

        def close(self) -> None:
            pass

        def embed(self, texts: Sequence[str]) -> np.ndarray:
            raise RuntimeError("onnxruntime fell over")

    config = load_config(config_for(tmp_path, "hf_api_daily_papers_2026-06-12_sotawhat.json"))
    with caplog.at_level(logging.WARNING):
        report = send_now(config, RunOptions(keep_papers=True), deps(DAY, model=Broken))
    assert report.exit_code == 0 and report.subscribers[0].papers
    assert len([r for r in caplog.records if "model failed" in r.getMessage()]) == 1


def test_profile_vectors_are_embedded_ahead_and_kept_for_the_next_run(tmp_path, real_model):
    from digest.rank.profile_vectors import ProfileVectors
    from digest.store import Store

    counting = CountingEmbedder(real_model)
    with Store.open(tmp_path / "s.sqlite3") as store:
        vectors = ProfileVectors(counting, store)
        texts = [f"LLM agents, topic {i}" for i in range(70)]
        vectors.start(texts)
        first = vectors.get(texts[-1])  # waits for the background thread
        assert first is not None and first.shape == (384,)
        vectors.close()
        before = len(counting.texts)
        again = ProfileVectors(counting, store)
        again.start(texts)  # all read back from the state: nothing embedded
        assert (again.get(texts[-1]) == first).all()
        assert len(counting.texts) == before
        again.close()


def test_profile_vectors_hold_a_window_not_the_whole_list(
    tmp_path: Path,
) -> None:
    from digest.rank.profile_vectors import ProfileVectors
    from digest.store import Store

    sizes = {"chunk": 4, "save_every": 8, "window": 16, "ahead": 32}
    bound = 16 + 32 + 8 + 4  # a window, the thread's lead, a save's worth, a chunk
    model = HashModel()
    # 300 readers, some sharing a profile (the second time it comes up far down the list).
    texts = [f"topic {i % 250}" for i in range(300)]
    expected = {t: v for t, v in zip(texts, model.embed(texts), strict=True)}
    model.calls = 0
    with Store.open(tmp_path / "s.sqlite3") as store:
        for run in ("fresh", "again"):
            vectors = ProfileVectors(model, store, **sizes)
            vectors.start(texts)
            held = 0
            for text in texts:
                np.testing.assert_allclose(vectors.get(text), expected[text], atol=1e-6)
                held = max(held, vectors.in_memory)
            vectors.close()
            assert held <= bound, run
            # Each profile embedded once, in the first run; the second reads them all back.
            assert model.calls == 250, run
