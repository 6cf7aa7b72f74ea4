"""Embed ahead of the send time: the recent papers and the readers' profiles the state has no
vector for yet, so the send that follows only ranks, renders and mails.

    embedded = await embed_ahead(config, deps, model, readers, now)

Each paper is embedded once, ever, and each profile text once (a changed profile is a new
text): what the state holds is never embedded again, and a model is not even started when
nothing is missing (digest.run.model.LazyModel). The same texts and stored vectors as the
ranking's (digest.rank.embed.paper_text, digest.rank.profile.profile_text, the store's vector
tables), so the ranking finds them as if it had made them.

The work runs in a thread with a connection of its own, so the daemon's event loop (its web
side, its heartbeat) goes on meanwhile; `stop` ends it between chunks, keeping what is done.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from datetime import datetime

from digest.config import Config, Subscriber
from digest.deliver import Stop
from digest.models import Paper
from digest.rank import run_papers
from digest.rank.corpus import Corpus
from digest.rank.embed import EmbeddingModel
from digest.rank.embed_store import save_profile_vectors
from digest.rank.profile_vectors import CHUNK
from digest.rank.ranker import texts_to_embed
from digest.run.options import Deps
from digest.run.report import Embedded
from digest.store import Store

log = logging.getLogger(__name__)


async def embed_ahead(
    config: Config,
    deps: Deps,
    model: EmbeddingModel | None,
    readers: Sequence[Subscriber],
    now: datetime,
    stop: Stop | None = None,
) -> Embedded:
    """Embed what the state lacks of the run's recent papers and these readers' profiles."""
    if model is None:
        return Embedded()
    texts = list(dict.fromkeys(t for t in texts_to_embed(readers) if t))
    opener = deps.state or Store
    stopped = threading.Event()  # `stop`, as the thread can see it

    def work() -> Embedded:
        with opener.open(config.digest.state, create=False) as store:
            papers = run_papers(store, lookback_days=config.digest.lookback_days, now=now)
            return embed_missing(store, model, papers, texts, stopped)

    async def relay() -> None:
        if stop is not None:
            await stop.requested.wait()
            stopped.set()

    relaying = asyncio.ensure_future(relay())
    try:
        return await asyncio.to_thread(work)
    finally:
        relaying.cancel()
        stopped.set()  # a cancelled wait leaves the thread to stop at its next chunk


def embed_missing(
    store: Store,
    model: EmbeddingModel,
    papers: Sequence[Paper],
    texts: Sequence[str],
    stop: threading.Event,
) -> Embedded:
    """Embed and store the vectors of these papers and profile texts that have none, a chunk
    at a time. A model that fails is reported, not raised: the send embeds what is left."""
    done = Embedded()
    unique = list({p.id: p for p in papers}.values())
    # The ranking's own corpus embeds and stores them, as the send's ranking would.
    corpus = Corpus(store, model, None)
    stored = corpus.prefetch(unique) or {}
    todo_papers = [p for p in unique if p.id not in stored]
    del stored
    todo_texts: list[str] = []
    if texts:
        have = store.stored_profile_texts(texts, model.name)
        todo_texts = [t for t in texts if t not in have]
    try:
        for start in range(0, len(todo_papers), CHUNK):
            if stop.is_set():
                return done
            chunk = todo_papers[start : start + CHUNK]
            corpus.add(chunk, stored={})
            if corpus.model is None:
                done.problem = "the embedding model failed"
                return done
            done.papers += len(chunk)
        for start in range(0, len(todo_texts), CHUNK):
            if stop.is_set():
                return done
            chunk_texts = todo_texts[start : start + CHUNK]
            save_profile_vectors(store, chunk_texts, model.embed(chunk_texts), model.name)
            done.profiles += len(chunk_texts)
    except Exception as exc:  # the model raises its own types; the send will try again
        done.problem = f"the embedding model failed: {exc}"
        log.warning("embedding ahead stopped: %s", done.problem)
    return done
