"""The embedding model in its own process: the same vectors as in this process, a clear reason
when it cannot load, the keyword fallback when it dies mid-run, and no process left behind."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from digest.config import load_config
from digest.rank.embed import DIMENSION, Embedder, ModelUnavailable
from digest.rank.embed_process import EmbedderProcess
from digest.run import RunOptions, send_now
from tests.support.run import deps
from tests.test_rank_model import DAY, config_for

DAY_FILE = "hf_api_daily_papers_2026-06-12_sotawhat.json"


def test_the_model_process_gives_the_models_vectors_and_ends_on_close(
    real_model: Embedder,
) -> None:
    texts = ["LoRA fine-tuning of large language models", "Gaussian splatting for 3D scenes"]
    model = EmbedderProcess()
    try:
        model.ready()
        np.testing.assert_allclose(model.embed(texts), real_model.embed(texts), atol=1e-6)
        assert model.embed([]).shape == (0, DIMENSION)
        assert model.name == real_model.name
    finally:
        model.close()
    assert model.pid not in {p.pid for p in multiprocessing.active_children()}
    with pytest.raises(ModelUnavailable, match="closed"):
        model.embed(["after the run"])


def test_a_prefetch_is_collected_by_the_embed_of_the_same_texts(real_model: Embedder) -> None:
    first = ["speculative decoding for faster inference", "a benchmark for web agents"]
    other = ["protein structure prediction"]
    model = EmbedderProcess()
    try:
        model.prefetch(first)
        np.testing.assert_allclose(model.embed(first), real_model.embed(first), atol=1e-6)
        assert model.requests == 1  # the prefetch's own reply, not a second request
        model.prefetch(first)
        np.testing.assert_allclose(model.embed(other), real_model.embed(other), atol=1e-6)
        assert model.requests == 3  # a prefetch nobody collected is read and dropped
    finally:
        model.close()


def test_a_model_that_cannot_load_says_why(tmp_path: Path) -> None:
    model = EmbedderProcess(tmp_path)  # no model files here
    try:
        with pytest.raises(ModelUnavailable, match=r"cannot read .*model\.onnx"):
            model.ready()
        with pytest.raises(ModelUnavailable, match="cannot read"):
            model.embed(["a paper"])
    finally:
        model.close()


def test_a_run_uses_the_model_process_and_leaves_none_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_model: Embedder
) -> None:
    started: list[EmbedderProcess] = []

    def start() -> EmbedderProcess:
        started.append(EmbedderProcess())
        return started[-1]

    config = load_config(config_for(tmp_path, DAY_FILE))
    report = send_now(config, RunOptions(keep_papers=True), deps(DAY, model=start))
    assert report.exit_code == 0
    [sub] = report.subscribers
    assert sub.status == "sent" and sub.papers
    assert all("semantic" in r.score_parts for r in sub.papers)
    # One model for the run: the day's papers in one request (sent ahead while the run
    # indexed, then collected), the reader's profile in another.
    [model] = started
    assert model.requests == 2
    assert multiprocessing.active_children() == []


def test_a_model_process_that_dies_mid_run_falls_back_to_keywords(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    real_model: Embedder,
) -> None:
    class DiesOnceLoaded(EmbedderProcess):
        def ready(self) -> None:
            super().ready()
            os.kill(self.pid, signal.SIGKILL)  # as the OOM killer would

    config = load_config(config_for(tmp_path, DAY_FILE))
    with caplog.at_level(logging.WARNING):
        report = send_now(config, RunOptions(keep_papers=True), deps(DAY, model=DiesOnceLoaded))
    assert report.exit_code == 0
    [sub] = report.subscribers
    assert sub.status == "sent" and sub.papers
    assert all("semantic" not in r.score_parts for r in sub.papers)
    warnings = [r.getMessage() for r in caplog.records if "keywords only" in r.getMessage()]
    assert len(warnings) == 1 and "the model process ended" in warnings[0]
    assert multiprocessing.active_children() == []
