"""Fetch, record and embed ahead of the send time; send nothing.

    report = fetch_now(config, RunOptions(command="fetch"), Deps())      # `digest fetch`
    report = await fetch_ahead(config, options, deps, stop=stop)           # the daemon

What is new for a reader is still decided by first sight and their watermark: fetching earlier
only records papers earlier, and a send takes every paper recorded before it starts. A source
fetched within `options.fetch_reuse` is not asked again (a conditional GET otherwise), and what
the state has embedded is never embedded again (digest.run.prepare).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field

from digest.config import Config
from digest.deliver import Stop
from digest.errors import EXIT_FAILED, EXIT_OK, DigestError
from digest.run.claims import new_worker_id
from digest.run.gather import gather_papers, will_fetch
from digest.run.model import run_model, start_soon
from digest.run.options import Deps, RunOptions
from digest.run.prepare import embed_ahead
from digest.run.report import Embedded, SourceReport
from digest.run.run import open_state


@dataclass
class AheadReport:
    command: str
    sources: list[SourceReport] = field(default_factory=list)
    new_papers: int = 0
    embedded: Embedded = field(default_factory=Embedded)

    @property
    def failed(self) -> list[str]:
        return [s.name for s in self.sources if s.status == "failed"]

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.failed else EXIT_OK

    def summary(self) -> str:
        parts = [f"{self.new_papers} new papers", self.embedded.describe()]
        if self.failed:
            parts.append(f"failed sources: {', '.join(self.failed)}")
        return ", ".join(parts)


def fetch_now(config: Config, options: RunOptions, deps: Deps | None = None) -> AheadReport:
    """`digest fetch`: the config's readers synced in, then fetch_ahead, recorded as a run."""
    return asyncio.run(fetch_ahead(config, options, deps or Deps(), sync_readers=True))


async def fetch_ahead(
    config: Config,
    options: RunOptions,
    deps: Deps,
    *,
    stop: Stop | None = None,
    sync_readers: bool = False,
    record_run: bool = True,
) -> AheadReport:
    """Fetch every source not fetched within `options.fetch_reuse`, record what is new, and
    embed what the state lacks (the recent papers, the active readers' profiles). Raises
    DigestError only for a state that cannot be used."""
    now = deps.clock()
    report = AheadReport(command=options.command)
    async with AsyncExitStack() as stack:
        store = open_state(stack, config, options, deps)
        if sync_readers:
            store.sync_config_readers(
                config.subscribers,
                now=now,
                lookback_days=config.digest.lookback_days,
                page_edits=config.web is not None and config.web.profile_edit,
            )
        worker = options.worker_id or new_worker_id()
        run_id = store.start_run(options.command, now=now, worker=worker) if record_run else 0
        model = run_model(config, deps)
        if model is not None:
            stack.callback(model.close)
        try:
            fresh = store.max_seq() == 0
            if fresh and will_fetch(config, store, now, reuse=options.fetch_reuse):
                start_soon(model)  # a new state: its first papers are all to embed
            gathered = await gather_papers(
                config,
                store,
                deps.http,
                now,
                deps.clock,
                worker=worker,
                backoff=options.fetch_backoff,
                retries=options.fetch_retries,
                reuse=options.fetch_reuse,
            )
            report.sources, report.new_papers = gathered.sources, gathered.new
            readers = store.active_readers()
            report.embedded = await embed_ahead(config, deps, model, readers, now, stop)
        except BaseException as exc:
            if record_run:
                summary = f"stopped by {type(exc).__name__}: {exc}"
                with suppress(DigestError):
                    store.finish_run(run_id, exit_code=EXIT_FAILED, summary=summary, now=now)
            raise
        if record_run:
            store.finish_run(
                run_id, exit_code=report.exit_code, summary=report.summary(), now=deps.clock()
            )
    return report
