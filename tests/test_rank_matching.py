"""Each lexical matching rule, on real abstracts from the fixtures (digest/rank/lexical.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from digest.config import Subscriber
from digest.models import Paper
from digest.rank.lexical import Index, compile_term
from tests.support.ranking import rank_papers

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DAYS = [
    "hf_api_daily_papers_2026-06-12_sotawhat.json",
    "hf_api_daily_papers_2026-07-31_allnewsai.json",
    "hf_api_daily_papers_2026-08-03_newsassistant.json",
    "hf_api_daily_papers_date-2024-05-27_newsletter-chinese.json",
    "hf_api_daily_papers_date-2026-08-19_newsletter-chinese.json",
]


def load(name: str) -> list[Paper]:
    items = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return [
        Paper(
            id=i["paper"]["id"],
            title=i["paper"]["title"],
            abstract=i["paper"]["summary"],
            authors=[a["name"] for a in i["paper"].get("authors", []) if a.get("name")],
            upvotes=i["paper"].get("upvotes"),
        )
        for i in items
    ]


@pytest.fixture(scope="module")
def index() -> Index:
    built = Index()
    for day in DAYS:
        built.add(load(day))
    return built


def found(index: Index, term: str, paper_id: str) -> list[str]:
    """The spellings `term` matched in that paper (title and abstract)."""
    compiled = compile_term(term)
    assert compiled is not None
    row = index.by_id[paper_id]
    doc = index.docs[row]
    texts = (doc.paper.title, doc.paper.abstract)
    return [texts[f][s:e] for f, s, e in index.hits(compiled).spans.get(row, [])]


def test_stemming_matches_word_forms(index: Index) -> None:
    # 2405.15319 "Stacking Your Transformers ... Efficient LLM Pre-Training": "LLMs are
    # computationally expensive to pre-train", "efficient LLM pre-training", "pre-trained".
    spellings = found(index, "pre-training", "2405.15319")
    assert {"pre-train", "pre-training", "pre-trained"} <= set(spellings)
    assert found(index, "pretrained", "2405.15319")  # written as one word in the profile


def test_hyphen_and_space_do_not_matter(index: Index) -> None:
    # 2606.12303 writes "pretrained" as one word: a profile's "pre-trained" finds it.
    assert "pretrained" in found(index, "pre-trained", "2606.12303")
    assert "pretrained" in found(index, "pre trained", "2606.12303")


def test_short_acronyms_match_by_case(index: Index) -> None:
    # 2606.13594's abstract says "it"; the acronym "IT" is not that word, the word "it" is.
    text_says_it = "2606.13594"
    assert not found(index, "IT", text_says_it)
    assert found(index, "it", text_says_it)
    # "LLMs" in the text is the acronym "LLM" with a plural s.
    assert "LLMs" in found(index, "LLM", "2606.00467")


def test_defined_acronym_matches_its_long_form_both_ways(index: Index) -> None:
    # 2608.17402: "Mixture-of-Experts (MoE) architectures ..." and later "MoE" alone.
    moe = found(index, "MoE", "2608.17402")
    assert "Mixture-of-Experts" in moe and moe.count("MoE") >= 2
    long_form = found(index, "mixture of experts", "2608.17402")
    assert "MoE" in long_form and "Mixture-of-Experts" in long_form
    # 2608.17310: "Reinforcement Learning (RL) has ...": the long form finds "RL" too.
    assert "RL" in found(index, "reinforcement learning", "2608.17310")
    # A paper that does not define it: the acronym stays just an acronym.
    assert not found(index, "MoE", "2606.00467")


def test_whole_tokens_only(index: Index) -> None:
    # 2606.11409 mentions "LLMs" and "FLOPs": "LOP" is not inside "FLOPs".
    assert not found(index, "LOP", "2606.11409")
    assert found(index, "FLOPs", "2606.11409")


def test_a_phrase_matches_as_a_phrase_never_through_its_words(index: Index) -> None:
    """Changed on purpose: a phrase's words alone used to get partial credit."""
    phrase = compile_term("efficient LLM pre-training")
    assert phrase is not None
    scores = index.term_score(phrase)
    # 2405.15319 has the phrase; 2606.12243 (speculative decoding) has "efficient" and
    # LLMs apart: nothing (its meaning is the model's to judge).
    whole, part = scores[index.by_id["2405.15319"]], scores[index.by_id["2606.12243"]]
    assert whole > 0 and part == 0
    assert not index.hits(phrase).spans.get(index.by_id["2606.12243"])


def test_idf_rare_terms_weigh_more(index: Index) -> None:
    common, rare = compile_term("model"), compile_term("splatting")
    assert common is not None and rare is not None
    n_common = np.count_nonzero(index.hits(common).counts.sum(axis=1))
    n_rare = np.count_nonzero(index.hits(rare).counts.sum(axis=1))
    assert n_common > 10 * n_rare > 0
    # "Gaussian Splatting" paper 2405.15125 says "splatting" in its title; compare with a
    # paper whose title says "model(s)": one title match of the rare word weighs more.
    splat = index.term_score(rare)[index.by_id["2405.15125"]]
    model_row = next(r for r, d in enumerate(index.docs) if "Model" in d.paper.title)
    assert splat > index.term_score(common)[model_row]


def test_title_weighs_more_than_abstract(index: Index) -> None:
    term = compile_term("GRPO")
    assert term is not None
    counts = index.hits(term).counts
    title_rows = [r for r in range(len(index)) if counts[r, 0] and counts[r, 1] <= 1]
    abstract_rows = [r for r in range(len(index)) if not counts[r, 0] and counts[r, 1] == 1]
    if title_rows and abstract_rows:
        scores = index.term_score(term)
        assert min(scores[title_rows]) > max(scores[abstract_rows])


def test_profile_weights_multiply() -> None:
    papers = load(DAYS[0])
    base = Subscriber(email="a@example.org", keywords={"agent": 1.0}, min_score=0.0)
    heavy = Subscriber(email="a@example.org", keywords={"agent": 3.0}, min_score=0.0)
    one = {r.paper.id: r.score_parts["lexical"] for r in rank_papers(papers, base)}
    three = {r.paper.id: r.score_parts["lexical"] for r in rank_papers(papers, heavy)}
    assert one and one.keys() == three.keys()
    assert all(three[k] == pytest.approx(3 * one[k]) for k in one)


def test_reasons_name_the_field_and_the_spellings_found() -> None:
    papers = load(DAYS[3])
    sub = Subscriber(email="a@example.org", keywords={"pre-training": 1, "LLM": 1}, min_score=0)
    ranked = {r.paper.id: r for r in rank_papers(papers, sub)}
    stacking = ranked["2405.15319"]
    assert stacking.matched[:2] == ["pre-training", "LLM"] or set(stacking.matched) >= {
        "pre-training",
        "LLM",
    }
    by_text = {r.text: r for r in stacking.reasons}
    title = by_text["title: pre-training"]
    assert title.kind == "term" and title.where == "title" and title.terms == ("Pre-Training",)
    abstract = by_text["abstract: pre-training"]
    assert "pre-train" in abstract.terms and "pre-training" in abstract.terms
    assert all(t in stacking.paper.abstract for t in abstract.terms)


def test_a_phrase_does_not_run_across_a_full_stop_or_comma(index: Index) -> None:
    import re

    paper = index.docs[index.by_id["2405.15319"]].paper
    # Each "word. Word" / "word, word" of that abstract, as a two-word phrase: no match,
    # unless the pair also stands side by side somewhere else in the abstract.
    pairs = re.findall(r"\b([A-Za-z]{3,})[.,;:] +([A-Za-z]{3,})\b", paper.abstract)
    assert len(pairs) >= 3
    for first, second in pairs:
        if not re.search(rf"\b{first}[\s-]+{second}\b", paper.title + " " + paper.abstract, re.I):
            assert not found(index, f"{first} {second}", "2405.15319"), (first, second)
    # Brackets do not break a phrase: "(LLM) agents" in 2606.13681's abstract.
    assert "LLM) agen" in " ".join(found(index, "LLM agents", "2606.13681"))
