"""Fetch one source and parse it into a SourceResult; fetch many at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

import httpx

from digest.config import SourceConfig
from digest.errors import FetchError, ParseError, SourceError
from digest.models import Paper
from digest.sources.feed import parse_feed
from digest.sources.hf_api import api_url, parse_hf_api
from digest.sources.hf_page import parse_hf_page
from digest.sources.http import fetch_bytes
from digest.sources.merge import merge_papers
from digest.sources.result import SourceResult, Validators
from digest.text import valid_text

MESSAGE_CHARS = 2_000  # an error or a warning is one line of at most this many characters

Parser = Callable[[bytes, SourceConfig], tuple[list[Paper], list[str]]]

PARSERS: dict[str, Parser] = {
    "hf-papers": parse_hf_page,
    "hf-api": parse_hf_api,
    "feed": parse_feed,
}


async def fetch_source(
    source: SourceConfig,
    client: httpx.AsyncClient,
    validators: Validators | None = None,
    *,
    retries: int = 3,
    backoff: float = 1.0,
) -> SourceResult:
    """Fetch and parse one source. Never raises a SourceError: it is returned in ``.error``.

    With `validators` the request is conditional; a 304 gives ``not_modified=True`` and no
    papers. `retries` repeats a failed attempt that many times, waiting ``backoff * 2**n`` s.
    """
    error: SourceError
    parser = PARSERS[source.type]  # config.SOURCE_TYPES: validated on load
    url = api_url(source.url) if source.type == "hf-api" else source.url
    try:
        fetched = await fetch_bytes(
            source, client, url, validators, retries=retries, backoff=backoff
        )
    except SourceError as exc:
        return SourceResult(source, [], error=_named(exc, source))
    except Exception as exc:  # a bug or an unforeseen failure must not sink the other sources
        error = FetchError(
            f"{source.name}: unexpected error fetching {url}: {type(exc).__name__}: {exc}",
            source=source.name,
            fix="report it",
        )
        error.__cause__ = exc  # `digest -v` shows its traceback
        return SourceResult(source, [], error=_named(error, source))
    if fetched.not_modified:
        return SourceResult(source, [], not_modified=True, validators=fetched.validators)
    try:
        papers, warnings = parser(fetched.body, source)
    except SourceError as exc:
        return SourceResult(source, [], error=_named(exc, source), validators=None)
    except Exception as exc:  # same: one broken source must not stop the run
        error = ParseError(
            f"{source.name}: unexpected error parsing {url}: {type(exc).__name__}: {exc}",
            source=source.name,
            fix="report it",
        )
        error.__cause__ = exc
        return SourceResult(source, [], error=_named(error, source))
    return SourceResult(
        source,
        merge_papers(papers),
        validators=fetched.validators,
        warnings=[valid_text(w, MESSAGE_CHARS) for w in warnings],
    )


async def fetch_all(
    sources: Sequence[SourceConfig],
    client: httpx.AsyncClient,
    validators: Mapping[str, Validators] | None = None,
    *,
    retries: int = 3,
    backoff: float = 1.0,
) -> list[SourceResult]:
    """Fetch every source concurrently; one SourceResult per source, in the given order.
    `validators` is keyed by source name."""
    known = validators or {}
    return list(
        await asyncio.gather(
            *(
                fetch_source(
                    source, client, known.get(source.name), retries=retries, backoff=backoff
                )
                for source in sources
            )
        )
    )


def _named(error: SourceError, source: SourceConfig) -> SourceError:
    """The error naming its source, its message valid text: it may quote what the server
    sent (a reason phrase, a page title, an entry's id)."""
    if not error.source:
        error.source = source.name
    error.message = valid_text(error.message, MESSAGE_CHARS)
    if error.fix:
        error.fix = valid_text(error.fix, MESSAGE_CHARS)
    return error
