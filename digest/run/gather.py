"""The first step of a run: fetch every source and record its papers in order of first sight.

A source that fails records nothing (its papers count as new on the next good run); a source
answering 304 keeps what the state has; the papers of the healthy ones are merged on their id
and recorded in one transaction with the sources' validators, so a conditional GET is only ever
answered 304 for content that is in the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx

from digest.config import Config
from digest.models import Paper
from digest.run.report import SourceReport
from digest.sources import SourceResult, Validators, fetch_all, merge_papers
from digest.store import Store


@dataclass
class Gathered:
    sources: list[SourceReport]
    papers: list[Paper]  # the papers the healthy sources listed in this run
    new: int  # how many of them were first seen now

    @property
    def failed(self) -> list[str]:
        return [s.name for s in self.sources if s.status == "failed"]


async def gather_papers(
    config: Config,
    store: Store,
    client: httpx.AsyncClient,
    now: datetime,
    *,
    backoff: float,
    retries: int,
) -> Gathered:
    """Fetch every source and record its papers."""
    known: dict[str, Validators] = {}
    for source in config.sources:
        state = store.source_state(source.name)
        if state and (state.etag or state.last_modified):
            known[source.name] = Validators(state.etag, state.last_modified)
    results: list[SourceResult] = await fetch_all(
        config.sources, client, known, backoff=backoff, retries=retries
    )
    reports: list[SourceReport] = []
    healthy: list[SourceResult] = []
    for result in results:
        name = result.source.name
        if result.error is not None:
            reports.append(SourceReport(name, "failed", error=result.error))
            store.record_source_error(name, str(result.error), now=now)
        elif result.not_modified:
            reports.append(SourceReport(name, "not-modified", warnings=result.warnings))
            store.record_source_not_modified(name, now=now)
        else:
            healthy.append(result)
            reports.append(
                SourceReport(name, "ok", papers=len(result.papers), warnings=result.warnings)
            )

    fresh = merge_papers(p for r in healthy for p in r.papers)
    stored = store.get_papers(p.id for p in fresh)
    # A paper seen again keeps what earlier sources knew of it (HF upvotes, categories, ...).
    papers = [merge_papers([stored[p.id], p])[0] if p.id in stored else p for p in fresh]
    # Every healthy source is recorded as fetched; its validators (if any) with the papers.
    validators = {
        r.source.name: (r.validators.etag, r.validators.last_modified)
        if r.validators is not None
        else (None, None)
        for r in healthy
    }
    new = store.record_papers(papers, now=now, validators=validators)
    return Gathered(reports, papers, new)
