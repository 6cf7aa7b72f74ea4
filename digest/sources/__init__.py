"""Fetch and parse the configured sources into Paper records.

Public API used by the pipeline:

    Validators(etag=None, last_modified=None)
    SourceResult(source, papers, error=None, not_modified=False, validators=None, warnings=[])
    make_client(user_agent=None) -> httpx.AsyncClient
    await fetch_source(source, client, validators=None, *, retries=3, backoff=1.0) -> SourceResult
    await fetch_all(sources, client, validators_by_name, *, retries=3, backoff=1.0)
        -> list[SourceResult]                       # concurrent, in the order of `sources`
    merge_papers(papers) -> list[Paper]             # one record per Paper.id
    normalise_arxiv_id(text) -> str | None          # "oai:arXiv.org:2604.21935v1" -> "2604.21935"

fetch_source and fetch_all never raise SourceError: a failed source has ``.error`` set (a
FetchError, ParseError or PageChangedError naming the source) and no papers. Every Paper they
give is valid (digest.sources.valid.valid_paper over digest.text.valid_text: no surrogate,
control, bidi or zero-width character, NFC, every field bounded); one bad entry is skipped with
a warning, never the rest of its page or feed. Errors and warnings are valid text too.

Modules: http (fetching, retries, conditional GET, local files), redirects (which redirects
are followed), text (bodies that are text; plain text from HTML), valid (a Paper made valid),
hf_items/hf_api/hf_page (Hugging Face), feed (RSS/Atom), merge.
"""

from digest.ids import is_arxiv_id, normalise_arxiv_id, normalise_link
from digest.sources.fetch import fetch_all, fetch_source
from digest.sources.http import USER_AGENT, make_client
from digest.sources.merge import merge_papers
from digest.sources.result import SourceResult, Validators

__all__ = [
    "USER_AGENT",
    "SourceResult",
    "Validators",
    "fetch_all",
    "fetch_source",
    "is_arxiv_id",
    "make_client",
    "merge_papers",
    "normalise_arxiv_id",
    "normalise_link",
]
