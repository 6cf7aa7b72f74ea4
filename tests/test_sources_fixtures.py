"""Every real captured file in tests/fixtures parses into the right, clean Paper records."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from digest.config import SourceConfig
from digest.models import Paper
from digest.sources import SourceResult, fetch_source, make_client

FIXTURES = Path(__file__).parent / "fixtures"
PAGES = FIXTURES / "hf-pages"

# (file, source type, papers) from tests/fixtures/SOURCES.md
REAL = [
    ("hf_api_daily_papers_2026-06-12_sotawhat.json", "hf-api", 30),
    ("hf_api_daily_papers_date-2026-08-19_newsletter-chinese.json", "hf-api", 26),
    ("hf_api_daily_papers_date-2024-05-27_newsletter-chinese.json", "hf-api", 13),
    ("hf_api_daily_papers_2026-07-31_allnewsai.json", "hf-api", 5),
    ("hf_api_daily_papers_2026-08-03_newsassistant.json", "hf-api", 3),
    ("arxiv_rss_cs_AI_2026-04-27_distill.xml", "feed", 3),
    ("arxiv_rss_cs_CL_2026-04-27_distill.xml", "feed", 3),
    ("arxiv_rss_cs_LG_2026-04-27_distill.xml", "feed", 3),
    ("arxiv_api_query_atom_2026-06-14_sotawhat.xml", "feed", 5),
    ("arxiv_api_query_atom_2026-04-30_brevio.xml", "feed", 20),
    ("thirdparty_rss_huangboming_hf_daily_feed_2026-08-08.xml", "feed", 30),
    ("thirdparty_rss_huangboming_hf_weekly_feed_2026-08-08.xml", "feed", 6),
    ("thirdparty_rss_takara_tldr_hf_daily_2026-04-30_brevio.xml", "feed", 50),
]
PAGE_FOR_API = {
    "papers_2026-06-12_sotawhat.html": "hf_api_daily_papers_2026-06-12_sotawhat.json",
    "papers_date-2026-08-19_newsletter-chinese.html": (
        "hf_api_daily_papers_date-2026-08-19_newsletter-chinese.json"
    ),
    "papers_date-2024-05-27_newsletter-chinese.html": (
        "hf_api_daily_papers_date-2024-05-27_newsletter-chinese.json"
    ),
    "papers_2026-07-31_allnewsai.html": "hf_api_daily_papers_2026-07-31_allnewsai.json",
    "papers_2026-08-03_newsassistant.html": "hf_api_daily_papers_2026-08-03_newsassistant.json",
}
NEW_STYLE_ID = re.compile(r"^\d{4}\.\d{4,5}$")
HTML_TAG = re.compile(
    r"</?(?:p|b|i|a|br|div|span|img|em|strong|sub|sup|ul|li|h\d|code)\b[^>]*>", re.IGNORECASE
)


def load(path: Path, kind: str, name: str = "test-source") -> SourceResult:
    async def go() -> SourceResult:
        async with make_client() as client:
            return await fetch_source(SourceConfig(kind, str(path), name), client, backoff=0)

    return asyncio.run(go())


def papers_of(filename: str, kind: str) -> dict[str, Paper]:
    result = load(FIXTURES / filename, kind)
    assert result.error is None, result.error
    return {p.id: p for p in result.papers}


def assert_clean(text: str) -> None:
    assert text == text.strip()
    assert "\n" not in text and "\t" not in text and "  " not in text
    # HTML tags are gone; text like "emits <swi> to enter" (an abstract's own words) stays.
    assert not HTML_TAG.search(text), text
    assert not re.search(r"&(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);", text), text


@pytest.mark.parametrize(("filename", "kind", "count"), REAL, ids=[r[0] for r in REAL])
def test_every_real_file_parses_cleanly(filename: str, kind: str, count: int) -> None:
    result = load(FIXTURES / filename, kind, name="src")
    assert result.error is None, result.error
    assert result.warnings == []
    assert not result.not_modified
    assert result.validators is None  # a local file has no validators
    assert len(result.papers) == count
    assert len({p.id for p in result.papers}) == count
    for paper in result.papers:
        assert NEW_STYLE_ID.match(paper.id), paper.id  # arXiv id, no version
        assert paper.sources == ["src"]
        assert paper.title and paper.abstract
        assert_clean(paper.title)
        assert_clean(paper.abstract)
        for name in paper.authors:
            assert_clean(name)
            assert "," not in name
        assert paper.arxiv_url == f"https://arxiv.org/abs/{paper.id}"
        assert paper.pdf_url == f"https://arxiv.org/pdf/{paper.id}"
        assert paper.published


@pytest.mark.parametrize("page", sorted(PAGE_FOR_API))
def test_hf_page_parses_to_the_same_papers_as_the_api(page: str) -> None:
    from_page = load(PAGES / page, "hf-papers", name="hf")
    from_api = load(FIXTURES / PAGE_FOR_API[page], "hf-api", name="hf")
    assert from_page.error is None and from_page.warnings == []
    assert from_page.papers == from_api.papers
    assert from_page.papers


def test_hf_api_2026_schema_fields() -> None:
    papers = papers_of("hf_api_daily_papers_date-2026-08-19_newsletter-chinese.json", "hf-api")
    p = papers["2608.17271"]
    assert p.title == "ASI-Bench: At the Dawn of Artificial Superintelligence"
    assert p.url == "https://huggingface.co/papers/2608.17271"
    assert p.code_url == "https://github.com/apexin-ai/ASI-Bench"
    assert p.upvotes == 38
    assert p.published == "2026-08-18T00:00:00.000Z"  # paper.publishedAt
    assert p.categories == [] and p.announce_type == ""
    assert p.authors and all(isinstance(a, str) for a in p.authors)


def test_hf_api_2024_schema_collapses_hard_wrapped_text() -> None:
    papers = papers_of("hf_api_daily_papers_date-2024-05-27_newsletter-chinese.json", "hf-api")
    p = papers["2405.15738"]
    assert p.title == (
        "ConvLLaVA: Hierarchical Backbones as Visual Encoder for Large Multimodal Models"
    )
    assert p.abstract.startswith(
        "High-resolution Large Multimodal Models (LMMs) encounter the challenges of excessive "
        "visual tokens"
    )
    assert p.abstract.endswith("publicly available at https://github.com/alibaba/conv-llava.")
    assert p.authors[:3] == ["Chunjiang Ge", "Sijie Cheng", "Ziming Wang"]
    assert p.upvotes == 32
    assert p.code_url == ""  # no githubRepo in the 2024 schema
    assert p.published == "2024-05-24T17:34:15.000Z"


def test_hf_api_keeps_the_responses_order() -> None:
    result = load(
        FIXTURES / "hf_api_daily_papers_date-2024-05-27_newsletter-chinese.json", "hf-api"
    )
    assert [p.upvotes for p in result.papers] == sorted(
        (p.upvotes or 0 for p in result.papers), reverse=True
    )
    assert result.papers[0].id == "2405.15738"


def test_arxiv_rss_fields() -> None:
    papers = papers_of("arxiv_rss_cs_AI_2026-04-27_distill.xml", "feed")
    assert list(papers) == ["2604.21935", "2604.21936", "2604.21937"]
    p = papers["2604.21935"]
    assert p.title == (
        "Math Takes Two: A test for emergent mathematical reasoning in communication"
    )
    assert p.authors == ["Michael Cooper", "Samuel Cooper"]
    assert p.abstract.startswith("Although language models demonstrate remarkable proficiency")
    assert "Announce Type" not in p.abstract and "arXiv:" not in p.abstract
    assert p.announce_type == "new"
    assert p.categories == ["cs.AI", "cs.LG"]
    assert p.url == "https://arxiv.org/abs/2604.21935"
    assert p.upvotes is None
    assert p.published == "2026-04-27T04:00:00Z"  # Mon, 27 Apr 2026 00:00:00 -0400
    big = papers["2604.21936"]
    assert len(big.authors) == 18
    assert big.authors[0] == "Lianrui Zuo" and big.authors[-1] == "Bennett A. Landman"
    assert "Aravind R. Krishnan" in big.authors
    assert r"\textbf{adaptability}" in big.abstract  # TeX stays as arXiv wrote it


def test_arxiv_api_atom_fields() -> None:
    papers = papers_of("arxiv_api_query_atom_2026-06-14_sotawhat.xml", "feed")
    p = papers["2606.13677"]
    assert p.title == "Mana: Dexterous Manipulation of Articulated Tools"
    assert p.authors == ["Zhao-Heng Yin", "Guanya Shi", "Pieter Abbeel", "C. Karen Liu"]
    assert p.categories == ["cs.RO", "cs.AI", "cs.CV", "cs.LG"]  # primary first
    assert p.pdf_url == "https://arxiv.org/pdf/2606.13677"
    assert p.url == "https://arxiv.org/abs/2606.13677"
    assert p.published == "2026-06-11T17:59:49Z"
    assert "(<1 minute per tool)" in p.abstract  # &lt; decoded, not taken for a tag


def test_arxiv_api_atom_primary_category_leads() -> None:
    papers = papers_of("arxiv_api_query_atom_2026-04-30_brevio.xml", "feed")
    assert papers["2604.26932"].categories == ["math.OC", "cs.LG"]
    assert papers["2604.26932"].authors[:2] == ["Junan Lin", "Paul J. Goulart"]


def test_huangboming_feed_extracts_summary_authors_upvotes() -> None:
    papers = papers_of("thirdparty_rss_huangboming_hf_daily_feed_2026-08-08.xml", "feed")
    p = papers["2607.28609"]
    assert p.title == (
        "OSReward: Instituting Standardized Evaluation for Cross-Platform Computer-Use "
        "Reward Models"
    )
    assert p.abstract.startswith("Computer-using agents (CUAs) are advancing rapidly")
    assert p.abstract.endswith("available at https://os-copilot.github.io/OSReward-Home/.")
    for boilerplate in ("Authors:", "Upvotes:", "Summary:", "thumbnail"):
        assert boilerplate not in p.abstract
    assert p.authors[:3] == ["Qiushi Sun", "Kanzhi Cheng", "Yian Wang"]
    assert p.authors[-1] == "Lingpeng Kong" and len(p.authors) == 23
    assert p.upvotes == 52
    assert papers["2608.01049"].upvotes == 0
    assert p.url == "https://arxiv.org/abs/2607.28609"


def test_huangboming_weekly_feed() -> None:
    papers = papers_of("thirdparty_rss_huangboming_hf_weekly_feed_2026-08-08.xml", "feed")
    p = papers["2607.23802"]
    assert p.title.startswith("From RLVR to RLSVR")
    assert p.upvotes == 3
    assert p.authors[0] == "Qinsi Wang"
    assert p.abstract.startswith("Reinforcement Learning with Verifiable Rewards (RLVR)")


def test_takara_feed_ids_from_links_and_entities_decoded() -> None:
    papers = papers_of("thirdparty_rss_takara_tldr_hf_daily_2026-04-30_brevio.xml", "feed")
    p = papers["2604.26238"]
    assert p.title == "EnerGS: Energy-Based Gaussian Splatting with Partial Geometric Priors"
    assert p.url == "https://tldr.takara.ai/p/2604.26238"
    assert p.arxiv_url == "https://arxiv.org/abs/2604.26238"
    assert p.abstract.startswith("3D Gaussian Splatting (3DGS) has been widely adopted")
    assert p.authors == [] and p.upvotes is None
    titles = [q.title for q in papers.values()]
    assert (
        "Electricity price forecasting across Norway's five bidding zones in the post-crisis era"
        in titles
    )
