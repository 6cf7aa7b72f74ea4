"""What a run is asked to do (RunOptions, with its Mode) and what it works with (Deps).

    report = send_now(config, RunOptions(mode=Mode.DRY_RUN), Deps(clock=fixed(now)))

Everything a run depends on comes in through Deps, from the CLI, the daemon or a test: the
clock, the HTTP client, the mailer and the embedding model. Nothing is patched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from digest.clock import Clock, utc_now

if TYPE_CHECKING:
    import httpx

    from digest.deliver import Mailer
    from digest.location import StateLocation
    from digest.rank.embed import EmbeddingModel
    from digest.store import Store


class Mode(StrEnum):
    SEND = "send"  # mail each digest and record it
    # On a copy of the state (never written): each digest written to a folder, nothing mailed.
    DRY_RUN = "dry-run"
    # As a dry run, but when today's digest is done the coming one is shown. Files are
    # written only with an output folder.
    PREVIEW = "preview"


@dataclass(frozen=True)
class RunOptions:
    mode: Mode = Mode.SEND
    command: str = "send-now"  # how the state's list of runs names this one
    digest_date: date | None = None  # the digest's label and key (default: the one due now)
    only: tuple[str, ...] = ()  # subscriber emails; empty = everyone
    force: bool = False  # send again a digest already sent for that date
    output_dir: Path | None = None  # a dry run's or preview's folder (default: a new temp one)
    catch_up: timedelta | None = None  # the daemon: a send time older than this is missed
    # The daemon: a failed source holds the digests back (retried within catch_up) instead of
    # sending without that source's papers.
    defer_on_source_failure: bool = False
    fetch_retries: int = 3
    fetch_backoff: float = 1.0  # seconds before the first retry of a source; doubles
    # A fetch of a source younger than this is used as it is (the daemon's send groups share
    # one); 0: fetch now (a conditional GET), unless another worker is fetching it right now.
    fetch_reuse: timedelta = timedelta(0)
    # False (send-now --no-fetch): no source is asked; each is used as last fetched, and a
    # run with nothing due embeds nothing either.
    fetch: bool = True
    # The daemon's worker (its runs are its own); "": a send-now is a worker of its own.
    worker_id: str = ""
    # A send-now waits for readers another worker holds (until it is done with them, or its
    # claim expired); the daemon leaves them to its takeover watch.
    wait_for_others: bool = True
    # The config's readers are synced into the state before the run (the daemon syncs them
    # when it starts and on SIGHUP instead, not before each send group).
    sync_readers: bool = True
    state_id: str = ""  # the daemon: the state it started with (a replaced one stops the run)
    keep_papers: bool = False  # keep each digest's ranked papers in the report (preview)

    @property
    def dry_run(self) -> bool:
        """Works on a copy of the state and mails nothing."""
        return self.mode is not Mode.SEND

    @property
    def writes_files(self) -> bool:
        """Digests are built and written to a folder (not mailed)."""
        return self.mode is Mode.DRY_RUN or (
            self.mode is Mode.PREVIEW and self.output_dir is not None
        )

    @property
    def shows_coming(self) -> bool:
        """A preview: when today's digest is done, the coming one is shown."""
        return self.mode is Mode.PREVIEW

    @property
    def builds_mail(self) -> bool:
        return self.mode is Mode.SEND or self.writes_files


class StateOpener(Protocol):
    """How a run opens the state (digest.store.Store is one)."""

    def open(self, location: StateLocation, *, create: bool = True) -> Store: ...

    def open_copy(self, location: StateLocation) -> Store: ...


class _Shipped(Enum):
    MODEL = "the shipped model"


# The embedding model digest ships, started in its own process for the run (the default).
SHIPPED_MODEL = _Shipped.MODEL
ModelFactory = Callable[[], "EmbeddingModel | None"]


@dataclass(frozen=True)
class Deps:
    """What a run works with. The defaults are the real ones."""

    clock: Clock = utc_now
    http: httpx.AsyncClient | None = None  # None: the run opens its own client
    mailer: Mailer | None = None  # None: the one [delivery] configures
    # A function that starts the model (None when it cannot: keywords only, with a warning);
    # None ranks by keywords only, without a warning.
    model: ModelFactory | None | Literal[_Shipped.MODEL] = SHIPPED_MODEL
    state: StateOpener | None = None  # None: digest.store.Store
