"""The first step of a run: fetch every source and record its papers in order of first sight.

A source that fails records nothing (its papers count as new on the next good run); a source
answering 304 keeps what the state has; the papers of the healthy ones are merged on their id
and recorded in one transaction with the sources' validators, so a conditional GET is only ever
answered 304 for content that is in the state.

One fetch per source at a time, whatever the number of workers: a worker takes a source before
fetching it (digest.store.runs.take_fetch); another that finds it taken waits for that fetch and
uses what it recorded. A fetch younger than `reuse` is used as it is, without asking the source
again (the daemon's send groups; see the README for how often each source is asked).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from digest.clock import Clock, iso
from digest.config import Config, SourceConfig
from digest.errors import FetchError
from digest.models import Paper
from digest.run.report import SourceReport
from digest.store import SourceState, Store

if TYPE_CHECKING:  # loaded when a source is asked: a send that reuses a fetch never needs them
    import httpx

    from digest.sources import SourceResult, Validators

WAIT_POLL = 0.2  # seconds between looks at a source another worker is fetching


@dataclass
class Gathered:
    sources: list[SourceReport]
    papers: list[Paper]  # what the healthy sources list now (fetched here or reused)
    new: int  # how many papers were first seen by this run

    @property
    def failed(self) -> list[str]:
        return [s.name for s in self.sources if s.status == "failed"]


async def gather_papers(
    config: Config,
    store: Store,
    client: httpx.AsyncClient | None,
    now: datetime,
    clock: Clock,
    *,
    worker: str,
    backoff: float,
    retries: int,
    reuse: timedelta = timedelta(0),
    fetch: bool = True,
) -> Gathered:
    """Fetch the sources this run must fetch, wait for those another worker is fetching, and
    use recent fetches as they are; then the papers every healthy source lists now. `now`
    is the run's moment (what it records), `clock` tells how long it waited for others.
    `client` None: one of its own, opened only when a source is asked.
    `fetch=False` (send-now --no-fetch) asks no source: every one is used as last fetched."""
    mine: list[SourceConfig] = []
    others: list[SourceConfig] = []
    reports: dict[str, SourceReport] = {}
    for source in config.sources:
        state = store.source_state(source.name)
        if not fetch:
            reports[source.name] = _reused(state, source.name)
        elif _recent(state, now, reuse):
            assert state is not None
            reports[source.name] = _reused(state, source.name)
        elif store.take_fetch(source.name, worker, now=now, until=now + _lease(source, retries)):
            mine.append(source)
        else:
            others.append(source)
    new = 0
    if mine:
        fetched, new = await _fetch(mine, store, client, now, backoff=backoff, retries=retries)
        reports.update(fetched)
    for source in others:  # fetched by another worker right now: use what it records
        state = await _wait_for(store, source, clock, _lease(source, retries))
        if state is None or not state.last_attempt or state.last_attempt < iso(now):
            more, more_new = await _fetch(
                [source], store, client, now, backoff=backoff, retries=retries
            )
            reports.update(more)
            new += more_new
        else:
            reports[source.name] = _reused(state, source.name)
    ordered = [reports[s.name] for s in config.sources]
    return Gathered(ordered, _listed(store, ordered), new)


async def _fetch(
    sources: list[SourceConfig],
    store: Store,
    client: httpx.AsyncClient | None,
    now: datetime,
    *,
    backoff: float,
    retries: int,
) -> tuple[dict[str, SourceReport], int]:
    """Fetch these sources at once and record what they gave. Returns their reports and how
    many papers were new."""
    from digest.sources import Validators, fetch_all, make_client, merge_papers

    known: dict[str, Validators] = {}
    for source in sources:
        state = store.source_state(source.name)
        if state and (state.etag or state.last_modified):
            known[source.name] = Validators(state.etag, state.last_modified)
    results: list[SourceResult]
    if client is None:
        async with make_client() as own:
            results = await fetch_all(sources, own, known, backoff=backoff, retries=retries)
    else:
        results = await fetch_all(sources, client, known, backoff=backoff, retries=retries)
    reports: dict[str, SourceReport] = {}
    healthy: list[SourceResult] = []
    for result in results:
        name = result.source.name
        if result.error is not None:
            reports[name] = SourceReport(name, "failed", error=result.error)
            store.record_source_error(name, str(result.error), now=now)
        elif result.not_modified:
            reports[name] = SourceReport(name, "not-modified", warnings=result.warnings)
            store.record_source_not_modified(name, now=now)
        else:
            healthy.append(result)
            count = len(result.papers)
            reports[name] = SourceReport(name, "ok", papers=count, warnings=result.warnings)
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
    listed = {r.source.name: list(dict.fromkeys(p.id for p in r.papers)) for r in healthy}
    new = store.record_papers(papers, now=now, validators=validators, listed=listed)
    return reports, new


async def _wait_for(
    store: Store, source: SourceConfig, clock: Clock, lease: timedelta
) -> SourceState | None:
    """Wait until the worker fetching `source` has recorded its outcome (or its hold ran out:
    it died). Returns the source's state then."""
    deadline = time.monotonic() + lease.total_seconds() + 1
    while time.monotonic() < deadline:
        state = store.source_state(source.name)
        if state is None or state.fetching_by is None:
            return state
        if state.fetching_until is not None and state.fetching_until < iso(clock()):
            return None  # it died holding the source: fetch it here
        await asyncio.sleep(WAIT_POLL)
    return None


def _recent(state: SourceState | None, now: datetime, reuse: timedelta) -> bool:
    """A fetch (good or failed) younger than `reuse`: used as it is."""
    if state is None or not state.last_attempt or reuse <= timedelta(0):
        return False
    return datetime.fromisoformat(state.last_attempt) > now - reuse


def _reused(state: SourceState | None, name: str) -> SourceReport:
    """A source used as last fetched (a source never fetched lists nothing)."""
    if state is None:
        return SourceReport(name, "reused")
    if state.last_error:
        error = FetchError(state.last_error, source=state.name)
        return SourceReport(state.name, "failed", error=error)
    return SourceReport(state.name, "reused", papers=len(state.listed))


def will_fetch(
    config: Config, store: Store, now: datetime, *, reuse: timedelta, fetch: bool = True
) -> bool:
    """Whether gather_papers asks some source now (one not fetched within `reuse`): the run
    may then record new papers."""
    if not fetch:
        return False
    return any(not _recent(store.source_state(s.name), now, reuse) for s in config.sources)


def _listed(store: Store, reports: list[SourceReport]) -> list[Paper]:
    """The papers the healthy sources list now, in their order (each once)."""
    ids: dict[str, None] = {}
    for report in reports:
        if report.status != "failed":
            state = store.source_state(report.name)
            ids.update(dict.fromkeys(state.listed if state else []))
    found = store.get_papers(ids)
    return [found[pid] for pid in ids if pid in found]


def _lease(source: SourceConfig, retries: int) -> timedelta:
    """How long a worker may hold a source it fetches: every attempt timing out, and the waits
    between them."""
    return timedelta(seconds=source.timeout * (retries + 1) + 2**retries + 10)
