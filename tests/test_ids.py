"""Paper keys and text cleaning."""

from __future__ import annotations

import pytest

from digest.sources import normalise_arxiv_id, normalise_link
from digest.sources.text import collapse, html_to_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2606.00467", "2606.00467"),
        ("2604.21935v1", "2604.21935"),
        (" 2604.21935v12 ", "2604.21935"),
        ("oai:arXiv.org:2604.21935v1", "2604.21935"),
        ("arXiv:2604.21935", "2604.21935"),
        ("http://arxiv.org/abs/2606.13677v1", "2606.13677"),
        ("https://arxiv.org/abs/2604.21935", "2604.21935"),
        ("https://arxiv.org/pdf/2606.13677v1", "2606.13677"),
        ("https://arxiv.org/pdf/2606.13677v1.pdf", "2606.13677"),
        ("https://export.arxiv.org/abs/2606.13677", "2606.13677"),
        ("https://huggingface.co/papers/2606.00467", "2606.00467"),
        ("https://tldr.takara.ai/p/2604.26238", "2604.26238"),
        ("0704.0001", "0704.0001"),
        ("1412.6980v9", "1412.6980"),
        ("hep-th/9901001", "hep-th/9901001"),
        ("hep-th/9901001v2", "hep-th/9901001"),
        ("oai:arXiv.org:math/0211159", "math/0211159"),
        ("arXiv:math.GT/0309136", "math.GT/0309136"),
        ("http://arxiv.org/abs/cond-mat/0102536v1", "cond-mat/0102536"),
        # not arXiv ids
        ("", None),
        (None, None),
        ("hello", None),
        ("2613.00001", None),  # month 13
        ("12345.6789", None),
        ("https://example.org/blog/2024/post", None),
        ("https://example.org/hep-th/9901001", None),  # old style only on arXiv itself
        ("tag:example.org,2026:2604.21935x", None),
    ],
)
def test_normalise_arxiv_id(text: str | None, expected: str | None) -> None:
    assert normalise_arxiv_id(text) == expected


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("HTTPS://Example.ORG/Papers/One/", "https://example.org/Papers/One"),
        ("https://example.org/p?id=3#abstract", "https://example.org/p?id=3"),
        ("https://example.org/", "https://example.org"),
        ("  https://example.org/x  ", "https://example.org/x"),
        ("urn:uuid:1234", "urn:uuid:1234"),
    ],
)
def test_normalise_link(link: str, expected: str) -> None:
    assert normalise_link(link) == expected


def test_collapse_and_html_to_text() -> None:
    assert collapse("  a\n   b\t c\xa0d ") == "a b c d"
    assert collapse(None) == ""
    assert (
        html_to_text("<p>One &amp; <i>two</i></p><p>three&nbsp;&lt;4</p>") == "One & two three <4"
    )
    assert html_to_text("x<br>y") == "x y"
    assert html_to_text("plain, no markup") == "plain, no markup"
    assert html_to_text("a < b and c > d") == "a < b and c > d"
