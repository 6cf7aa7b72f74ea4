"""What the HF data adds for readers (AI summary, organisation, comments, stars): read from the
real JSON, carried through the page's data-props, kept through merges and the store."""

from __future__ import annotations

from datetime import UTC, datetime

from digest.models import Paper
from digest.sources.hf_items import paper_from_item, papers_from_items
from digest.sources.merge import merge_papers
from digest.store import Store
from tests.support.helpers import hf_items


def test_2026_item_gives_summary_organisation_and_comments() -> None:
    items = hf_items()
    paper = paper_from_item(items[0], "hf-api")
    assert paper.ai_summary == " ".join(items[0]["paper"]["ai_summary"].split())
    assert paper.ai_summary.startswith("Large language models exhibit limited ability")
    assert paper.organization == "California institute of technology"  # fullname over name
    assert paper.comments == items[0]["numComments"] == 2
    assert paper.stars is None  # no githubStars in that file


def test_stars_and_organisation_of_other_days() -> None:
    papers, _ = papers_from_items(hf_items("hf_api_daily_papers_2026-07-31_allnewsai.json"), "hf")
    assert papers[0].stars == 3 and papers[0].comments == 2
    assert papers[0].organization == ""  # neither the item nor the paper names one
    orgs = [p.organization for p in papers if p.organization]
    assert "Nanyang Technological University" in orgs


def test_old_schema_has_none_of_them() -> None:
    old = hf_items("hf_api_daily_papers_date-2024-05-27_newsletter-chinese.json")
    papers, problems = papers_from_items(old, "hf")
    assert not problems
    assert all(p.ai_summary == "" and p.organization == "" and p.stars is None for p in papers)
    assert papers[0].comments == old[0]["numComments"]


def test_organisation_falls_back_to_the_short_name_and_bad_values_are_ignored() -> None:
    item = {
        "paper": {"id": "2606.00001", "title": "T", "summary": "S", "githubStars": "many",
                  "organization": {"name": "caltech"}, "ai_summary": 42},
        "numComments": True,
    }  # fmt: skip
    paper = paper_from_item(item, "hf")
    assert paper.organization == "caltech"
    assert paper.stars is None and paper.comments is None and paper.ai_summary == ""


def test_merge_keeps_the_extras_from_either_side() -> None:
    feed = Paper(id="2606.00001", title="T", abstract="A longer abstract from the feed")
    hf = Paper(id="2606.00001", title="T", ai_summary="One line.", organization="Oxford",
               comments=3, stars=10)  # fmt: skip
    later = Paper(id="2606.00001", title="T", comments=5, stars=None)
    [merged] = merge_papers([feed, hf, later])
    assert (merged.ai_summary, merged.organization) == ("One line.", "Oxford")
    assert (merged.comments, merged.stars) == (5, 10)
    assert merged.abstract == "A longer abstract from the feed"


def test_store_round_trips_the_extras(tmp_path) -> None:  # type: ignore[no-untyped-def]
    papers, _ = papers_from_items(hf_items(), "hf-api")
    store = Store.open(tmp_path / "s.sqlite3")
    try:
        store.record_papers(papers[:3], now=datetime(2026, 6, 12, tzinfo=UTC))
        back = store.get_papers(p.id for p in papers[:3])
        assert back[papers[0].id].ai_summary == papers[0].ai_summary
        assert back[papers[0].id].organization == papers[0].organization
        assert back[papers[0].id].comments == papers[0].comments
    finally:
        store.close()
