"""`digest explain` on any paper: one the state holds, or one the sources list today.

    exp, fetched = explain_any(config, "2606.13681", "ada@example.org", model=model)

A paper the state has never seen is looked for in the sources: they are fetched into a copy of
the state (as a preview does; the state itself is never written), where the paper is first
seen now, so it is explained as the reader's next digest would rank it. A paper in neither is
an error that says what to run.
"""

from __future__ import annotations

import asyncio
import contextlib

from digest.config import Config
from digest.errors import UsageError
from digest.ids import normalise_arxiv_id
from digest.rank.embed import EmbeddingModel
from digest.rank.explain import Explanation, explain_paper
from digest.run import Deps
from digest.run.gather import Gathered, gather_papers
from digest.sources import make_client
from digest.store import Store


def explain_any(
    config: Config,
    paper_id: str,
    email: str,
    *,
    model: EmbeddingModel | None,
    deps: Deps | None = None,
) -> tuple[Explanation, bool]:
    """The explanation, and whether the paper came from the sources fetched just now (False:
    the state had it)."""
    deps = deps or Deps()
    config.subscriber(email)  # an unknown reader is said before anything is fetched
    key = normalise_arxiv_id(paper_id) or paper_id.strip()
    store = Store.open_copy(config.digest.state)
    try:
        fetched = key not in store.get_papers([key])
        if fetched:
            gathered = asyncio.run(_gather(config, store, deps))
            if key not in store.get_papers([key]):
                raise _not_found(key, gathered)
        explanation = explain_paper(config, key, email, model=model, now=deps.clock(), store=store)
    finally:
        store.close()
    return explanation, fetched


async def _gather(config: Config, store: Store, deps: Deps) -> Gathered:
    async with contextlib.AsyncExitStack() as stack:
        client = deps.http
        if client is None:
            client = await stack.enter_async_context(make_client())
        return await gather_papers(
            config,
            store,
            client,
            deps.clock(),
            deps.clock,
            worker="explain",
            backoff=1.0,
            retries=1,
        )


def _not_found(key: str, gathered: Gathered) -> UsageError:
    failed = [s for s in gathered.sources if s.status == "failed"]
    if failed:
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in failed)
        return UsageError(
            f"paper {key!r} is not in the state, and a source failed: {reasons}",
            fix="try again once the source answers (`digest check --connect` tests it)",
        )
    listed = ", ".join(
        f"{s.name} ({s.papers} paper{'' if s.papers == 1 else 's'})" for s in gathered.sources
    )
    return UsageError(
        f"paper {key!r} is not in the state, nor in today's sources: {listed}",
        fix="check the id; `digest preview` lists the papers of today's digests",
    )
