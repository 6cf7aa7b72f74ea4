"""The plain data the sources package hands to the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.models import Paper


@dataclass
class Validators:
    """HTTP cache validators of a response, sent back as a conditional GET next time."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass
class SourceResult:
    """What one source gave in one run. `error` set means: nothing from it counts as seen."""

    source: SourceConfig
    papers: list[Paper]  # [] for an empty day, a 304 or an error
    error: SourceError | None = None  # set when fetch or parse failed; error.source = source.name
    not_modified: bool = False  # a 304 for the validators sent: the store already has the papers
    validators: Validators | None = None  # from this response, for the next conditional GET
    warnings: list[str] = field(default_factory=list)  # e.g. the page changed, read the cards


def skipped_warnings(source_name: str, skipped: list[str], total: int, what: str) -> list[str]:
    """The one warning for records a parser skipped (none when it skipped none)."""
    if not skipped:
        return []
    return [
        f"{source_name}: skipped {len(skipped)} of {total} {what} without an id or a title "
        f"({'; '.join(skipped[:3])})"
    ]
