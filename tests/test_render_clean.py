"""Text clean-up and highlighting: control and bidi characters, LaTeX, cutting, <mark>."""

from __future__ import annotations

import pytest

from digest.render.clean import (
    TITLE_CHARS,
    clean,
    cut_at_sentence,
    readable_latex,
    safe_url,
    trim,
)
from digest.render.highlight import mark_terms
from tests.support.digests import BIDI, CONTROL, FORBIDDEN


def test_control_and_bidi_characters_are_removed() -> None:
    # Whitespace controls (tab, LF, CR, VT, FF) become one space; the rest is dropped.
    assert clean(f"A{CONTROL}B{BIDI}C\tD\nE\r\nF") == "A BC D E F"
    assert clean("a\x00b\u202ec\x1bd") == "abcd"
    assert not FORBIDDEN & set(clean("x" + CONTROL * 50 + BIDI * 50 + "y"))


def test_hostile_sizes_are_capped_first() -> None:
    title = clean("word " * 2000, TITLE_CHARS)  # 10 KB
    assert len(title) <= TITLE_CHARS and title.endswith("…")
    assert len(clean("y" * 100_000)) <= 4000


@pytest.mark.parametrize(
    ("latex", "readable"),
    [
        (r"Attention in $\mathcal{O}(n^2)$ time", "Attention in 𝒪(n²) time"),
        (r"\alpha-divergence and $\beta$-VAE", "α-divergence and β-VAE"),
        (r"$x_i^{2}$ over $\mathbb{R}^d$", "xᵢ² over ℝᵈ"),
        (r"error $\leq 10^{-3}$", "error ≤ 10⁻³"),
        (r"$k=3$ neighbours", "k=3 neighbours"),
        ("costs $5 and $10", "costs $5 and $10"),  # money, not math
        (r"$\frac{a}{b}$ ratio", r"$\frac{a}{b}$ ratio"),  # unsure: left as written
        (r"$\mathcal{L}_{\text{CE}}$ loss", r"$\mathcal{L}_{\text{CE}}$ loss"),
        (r"the \unknown macro", r"the \unknown macro"),
    ],
)
def test_simple_latex_becomes_readable(latex: str, readable: str) -> None:
    assert readable_latex(latex) == readable
    assert clean(latex) == readable


def test_trim_and_cut_at_sentence() -> None:
    assert trim("alpha beta gamma delta", 12) == "alpha beta…"
    assert len(trim("x" * 1000, 300)) == 300  # no space: a hard cut
    text = "First sentence here. " * 30
    cut, was_cut = cut_at_sentence(text.strip(), 300)
    assert was_cut and cut.endswith("here.") and len(cut) <= 300
    assert cut_at_sentence("Short. Text.", 300) == ("Short. Text.", False)
    one, cut2 = cut_at_sentence("no sentence end " * 40, 300)
    assert cut2 and one.endswith("…") and len(one) <= 300


def test_safe_url() -> None:
    assert safe_url(" https://example.org/a b ") == "https://example.org/a%20b"
    for bad in ("javascript:alert(1)", "data:text/html,x", "https://ex\u202eample.org", "ftp://x"):
        assert safe_url(bad) == ""


def test_mark_terms_escapes_and_never_marks_inside_an_entity() -> None:
    assert mark_terms("Tom & Jerry <b>", ["amp", "b"]) == "Tom &amp; Jerry &lt;b&gt;".replace(
        "&lt;b&gt;", '&lt;<mark class="hl" style="background:#fef08a;color:inherit">b</mark>&gt;'
    )
    marked = mark_terms("LLM agents in a URL, RL and rl", ["RL", "LLM agents"])
    assert marked.count("<mark") == 3  # "URL" is not "RL"
    assert ">LLM agents</mark>" in marked and ">rl</mark>" in marked


def test_mark_terms_marks_the_whole_word_it_starts() -> None:
    assert ">agents</mark>" in mark_terms("agents", ["agent"])
    assert ">Language Models</mark> (LLMs)" in mark_terms(
        "Language Models (LLMs)", ["language model"]
    )
    assert "<mark" not in mark_terms("reagents", ["agent"])


def test_mark_terms_overlapping_terms_mark_the_longest_once() -> None:
    marked = mark_terms("large language model agents", ["language model", "model", "agents"])
    assert marked.count("<mark") == 2
    assert ">language model</mark>" in marked and ">agents</mark>" in marked


def test_mark_terms_keeps_its_own_marker_characters_out() -> None:
    marked = mark_terms("a \x0eb\x0f agent", ["agent"])
    assert marked.count("<mark") == 1 and marked.count("</mark>") == 1
    assert "\x0e" not in marked and "\x0f" not in marked
