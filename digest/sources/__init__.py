"""Fetch and parse the configured sources into Paper records. (owned by the sources helper)

Public API used by the pipeline (keep these names and shapes):

    @dataclass class Validators: etag: str | None = None; last_modified: str | None = None
    @dataclass class SourceResult:
        source: SourceConfig
        papers: list[Paper]            # [] for an empty day or a 304
        error: SourceError | None      # set when the fetch/parse failed; papers is then []
        not_modified: bool             # a 304: nothing changed since `validators`
        validators: Validators | None  # what to send next time (store only if no error)
        warnings: list[str]            # e.g. "hf-papers: page changed, read the cards only"
    def make_client(user_agent: str | None = None) -> httpx.AsyncClient
    async def fetch_source(source, client, validators=None) -> SourceResult   # never raises SourceError
    async def fetch_all(sources, client, validators: Mapping[str, Validators]) -> list[SourceResult]
    def merge_papers(papers: Iterable[Paper]) -> list[Paper]   # one record per Paper.id
"""
