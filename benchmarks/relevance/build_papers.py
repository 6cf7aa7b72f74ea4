"""Regenerate papers.jsonl and days.json from the real fixtures, with the project's own parsers.

    python benchmarks/relevance/build_papers.py [FIXTURES_DIR]

FIXTURES_DIR defaults to ../shared/fixtures/real next to the repository (/work/shared/...).
A "day" is one fixture file: the papers that file lists (only files with >= MIN_DAY papers).
Papers are keyed as the project keys them (arXiv id without version) and merged across files
with digest.sources.merge_papers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from digest.config import SourceConfig
from digest.models import Paper
from digest.sources import merge_papers
from digest.sources.feed import parse_feed
from digest.sources.hf_api import parse_hf_api

HERE = Path(__file__).resolve().parent
DEFAULT_FIXTURES = HERE.parents[2] / "shared" / "fixtures" / "real"
MIN_DAY = 10


def parse_file(path: Path) -> list[Paper]:
    """The papers one fixture file lists, in its order (duplicates inside it merged)."""
    if path.suffix == ".json":
        source = SourceConfig(type="hf-api", url=str(path), name=path.stem)
        papers, _ = parse_hf_api(path.read_bytes(), source)
    else:
        source = SourceConfig(type="feed", url=str(path), name=path.stem)
        papers, _ = parse_feed(path.read_bytes(), source)
    return merge_papers(papers)


def build(fixtures: Path) -> tuple[list[Paper], dict[str, list[str]]]:
    everything: list[Paper] = []
    days: dict[str, list[str]] = {}
    for path in sorted(fixtures.iterdir()):
        if path.suffix not in (".json", ".xml"):
            continue
        papers = parse_file(path)
        everything.extend(papers)
        print(f"{len(papers):4d}  {path.name}", file=sys.stderr)
        if len(papers) >= MIN_DAY:
            days[path.stem] = [p.id for p in papers]
    return merge_papers(everything), days


def main() -> None:
    fixtures = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FIXTURES
    papers, days = build(fixtures)
    with open(HERE / "papers.jsonl", "w", encoding="utf-8") as out:
        for paper in sorted(papers, key=lambda p: p.id):
            record = {
                "id": paper.id,
                "title": paper.title,
                "abstract": paper.abstract,
                "authors": paper.authors,
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    (HERE / "days.json").write_text(json.dumps(days, indent=1) + "\n", encoding="utf-8")
    total = sum(len(ids) for ids in days.values())
    print(
        f"{len(papers)} unique papers; {len(days)} days with >= {MIN_DAY} papers "
        f"({total} listings)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
