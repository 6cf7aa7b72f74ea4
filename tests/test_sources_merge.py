"""merge_papers: one record per paper id, keeping the best of each field."""

from __future__ import annotations

import copy
from pathlib import Path

from digest.config import SourceConfig
from digest.models import Paper
from digest.sources import merge_papers
from digest.sources.feed import parse_feed
from digest.sources.hf_api import parse_hf_api

FIXTURES = Path(__file__).parent / "fixtures"


def feed(filename: str, name: str) -> list[Paper]:
    papers, warnings = parse_feed(
        (FIXTURES / filename).read_bytes(), SourceConfig("feed", filename, name)
    )
    assert warnings == []
    return papers


def test_arxiv_api_and_takara_share_four_papers() -> None:
    atom = feed("arxiv_api_query_atom_2026-04-30_brevio.xml", "arxiv-api")
    takara = feed("thirdparty_rss_takara_tldr_hf_daily_2026-04-30_brevio.xml", "takara")
    assert (len(atom), len(takara)) == (20, 50)
    merged = merge_papers([*atom, *takara])
    assert len(merged) == 66
    # order of first appearance: the 20 atom papers, then takara's new ones
    assert [p.id for p in merged[:20]] == [p.id for p in atom]
    shared = [p for p in merged if len(p.sources) == 2]
    assert sorted(p.id for p in shared) == ["2604.26881", "2604.26904", "2604.26919", "2604.26932"]
    for p in shared:
        assert p.sources == ["arxiv-api", "takara"]
        assert p.authors and p.categories  # from the Atom feed; takara has neither
        assert p.url == f"https://arxiv.org/abs/{p.id}"


def test_best_of_each_field() -> None:
    rss = Paper(
        id="2604.21935",
        title="Math Takes Two",
        abstract="Short.",
        url="https://arxiv.org/abs/2604.21935",
        arxiv_url="https://arxiv.org/abs/2604.21935",
        published="2026-04-27T04:00:00Z",
        categories=["cs.AI", "cs.LG"],
        sources=["arxiv-ai"],
        announce_type="cross",
    )
    hf = Paper(
        id="2604.21935",
        title="Math Takes Two (HF)",
        abstract="A much longer abstract from Hugging Face.",
        authors=["Michael Cooper", "Samuel Cooper"],
        url="https://huggingface.co/papers/2604.21935",
        pdf_url="https://arxiv.org/pdf/2604.21935",
        code_url="https://github.com/x/y",
        upvotes=12,
        published="2026-04-24T00:00:00.000Z",
        sources=["hf"],
    )
    cards = Paper(id="2604.21935", title="T", upvotes=15, sources=["hf", "hf-page"])
    lg = Paper(
        id="2604.21935",
        title="T",
        categories=["cs.LG", "stat.ML"],
        sources=["arxiv-lg"],
        announce_type="new",
    )
    originals = copy.deepcopy([rss, hf, cards, lg])
    (merged,) = merge_papers([rss, hf, cards, lg])
    assert [rss, hf, cards, lg] == originals  # inputs untouched
    assert merged.title == "Math Takes Two"  # first
    assert merged.abstract == "A much longer abstract from Hugging Face."
    assert merged.authors == ["Michael Cooper", "Samuel Cooper"]
    assert merged.url == "https://huggingface.co/papers/2604.21935"
    assert merged.arxiv_url == "https://arxiv.org/abs/2604.21935"
    assert merged.pdf_url == "https://arxiv.org/pdf/2604.21935"
    assert merged.code_url == "https://github.com/x/y"
    assert merged.upvotes == 15
    assert merged.published == "2026-04-24T00:00:00.000Z"
    assert merged.categories == ["cs.AI", "cs.LG", "stat.ML"]
    assert merged.sources == ["arxiv-ai", "hf", "hf-page", "arxiv-lg"]
    assert merged.announce_type == "new"


def test_announce_type_new_is_kept_and_first_known_fills_in() -> None:
    a = Paper(id="1", title="t", announce_type="new")
    b = Paper(id="1", title="t", announce_type="replace")
    assert merge_papers([a, b])[0].announce_type == "new"
    assert merge_papers([Paper(id="1", title="t"), b])[0].announce_type == "replace"


def test_upvotes_none_does_not_override_and_order_is_kept() -> None:
    papers = [
        Paper(id="b", title="B", upvotes=3),
        Paper(id="a", title="A"),
        Paper(id="b", title="B"),
        Paper(id="a", title="A", upvotes=0),
    ]
    merged = merge_papers(papers)
    assert [(p.id, p.upvotes) for p in merged] == [("b", 3), ("a", 0)]


def test_hf_api_and_its_own_feed_merge() -> None:
    api, _ = parse_hf_api(
        (FIXTURES / "hf_api_daily_papers_2026-06-12_sotawhat.json").read_bytes(),
        SourceConfig("hf-api", "x", "hf"),
    )
    again = merge_papers([*api, *api])
    assert again == api
    assert merge_papers([]) == []
