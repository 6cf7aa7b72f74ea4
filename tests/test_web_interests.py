"""digest.web.interests: pasted ids, BibTeX and Zotero CSV, with hostile input refused in one
clear sentence and unknown entries listed, never fatal."""

from __future__ import annotations

import pytest

from digest.web.interests import (
    MAX_DEPTH,
    MAX_LISTED,
    MAX_PAPERS,
    MAX_UPLOAD_BYTES,
    Refused,
    read_bibtex,
    read_pasted,
    read_upload,
    read_zotero_csv,
)


def ids(found) -> list[str]:
    return [p.id for p in found.papers]


def test_pasted_ids_and_urls_of_every_kind_are_read_once():
    found = read_pasted(
        "2606.00467, arXiv:2606.13681v2\nhttps://arxiv.org/pdf/2606.00001v1\n"
        "https://huggingface.co/papers/2606.00002 hep-th/9901001 2606.00467 nonsense"
    )
    assert ids(found) == ["2606.00467", "2606.13681", "2606.00001", "2606.00002", "hep-th/9901001"]
    assert found.unknown == ["nonsense"]


def test_pasting_is_bounded():
    with pytest.raises(Refused, match="more text than we read"):
        read_pasted("2606.00467 " * 10_000)
    many = read_pasted(" ".join(f"2606.{i:05d}" for i in range(MAX_PAPERS + 10)))
    assert len(many.papers) == MAX_PAPERS and many.cut
    junk = read_pasted(" ".join(f"x{i}" for i in range(MAX_LISTED + 7)))
    assert len(junk.unknown) == MAX_LISTED and junk.more_unknown == 7


def test_bibtex_entries_of_the_usual_shapes():
    text = r"""
    @comment{ignored @article{no, eprint={2606.99999}} }
    @article{vaswani2017,
      title     = {Attention {Is} {{All}} You Need},
      author    = {Vaswani, Ashish and others},
      journal   = {arXiv preprint arXiv:1706.03762},
      abstract  = "The dominant sequence transduction models
                   are based on recurrent networks.",
    }
    @misc(paren, title = {Parenthesised}, eprint = 2606.00467, archiveprefix = {arXiv})
    @inproceedings{doi, title={By DOI}, doi={10.48550/arXiv.2606.13681}}
    @book{nothing, title={A Book Without An Id}}
    @string{foo = "bar"}
    """
    found = read_bibtex(text)
    assert ids(found) == ["1706.03762", "2606.00467", "2606.13681"]
    first = found.papers[0]
    assert first.title == "Attention Is All You Need"
    assert (
        first.abstract
        == "The dominant sequence transduction models are based on recurrent networks."
    )
    assert found.unknown == ["A Book Without An Id"]


def test_bibtex_nesting_beyond_the_limit_is_refused_not_recursed():
    nested = "@misc{a, title=" + "{" * (MAX_DEPTH + 1) + "x" + "}" * (MAX_DEPTH + 1) + "}"
    with pytest.raises(Refused, match="nests braces"):
        read_bibtex(nested)
    fine = "@misc{a, eprint={2606.00467}, title=" + "{" * MAX_DEPTH + "x" + "}" * MAX_DEPTH + "}"
    assert ids(read_bibtex(fine)) == ["2606.00467"]
    with pytest.raises(Refused, match="nests braces"):  # 100,000 deep: no RecursionError
        read_bibtex("@misc{a, title=" + "{" * 100_000)


def test_bibtex_that_never_closes_or_is_only_at_signs_ends_quickly():
    with pytest.raises(Refused, match="not closed"):
        read_bibtex("@misc(a, title = x" + " y" * 100_000)
    assert read_bibtex("@" * 500_000).papers == []
    assert read_bibtex("@a{x," + "k=v," * 50_000 + "}").papers == []


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("big.bib", b" " * (MAX_UPLOAD_BYTES + 1), "larger than 1 MiB"),
        ("img.bib", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("ctl.csv", b"Title\n\x1b[31mred\n", "control characters"),
        ("latin.bib", "@misc{a, title={Caf\xe9}}".encode("latin-1"), "not UTF-8"),
        ("utf16.csv", "Title\nx\n".encode("utf-16"), "not"),
        ("x.pdf", b"%PDF-1.7", ".bib"),
    ],
)
def test_hostile_files_are_refused_in_one_sentence(name, data, words):
    with pytest.raises(Refused, match=words):
        read_upload(name, data)


def test_a_bom_is_fine():
    found = read_upload("z.csv", b"\xef\xbb\xbfTitle,Url\nX,https://arxiv.org/abs/2606.00467\n")
    assert ids(found) == ["2606.00467"]


def test_zotero_csv_with_quoted_fields_newlines_and_formulas():
    text = (
        '"Key","Item Type","Publication Year","Title","Abstract Note","Url","DOI","Extra"\n'
        '"A","preprint","2026","Graphs, ""really""\nacross lines","Abs","","","arXiv: 2606.00467"\n'
        '"B","journalArticle","2025","=HYPERLINK(""http://evil"")","","","10.48550/arXiv.2606.13681",""\n'
        '"C","book","2020","No id","","https://example.org/x","",""\n'
    )
    found = read_zotero_csv(text)
    assert ids(found) == ["2606.00467", "2606.13681"]
    assert found.papers[0].title == 'Graphs, "really" across lines'
    assert found.papers[1].title == '=HYPERLINK("http://evil")'  # kept as text, never evaluated
    assert found.unknown == ["No id"]


def test_csv_with_a_million_columns_or_no_title_is_refused():
    with pytest.raises(Refused, match="columns"):
        read_upload("wide.csv", b"Title" + b"," * 10**6 + b"\n")
    with pytest.raises(Refused, match="fields"):
        read_zotero_csv("Title,Url\n" + "," * 10**5 + "\n")
    with pytest.raises(Refused, match="no Title column"):
        read_zotero_csv("Name,Link\nx,y\n")
    with pytest.raises(Refused, match="could not be read"):
        read_zotero_csv('Title,Url\n"' + "x" * 30_000 + '",y\n')


def test_a_megabyte_long_word_is_no_id_and_costs_nothing():
    found = read_pasted("a" * 60_000)
    assert found.papers == [] and found.unknown[0].endswith("…")
    bib = read_bibtex("@misc{k, title={t}, eprint={" + "1" * 900_000 + "}}")
    assert bib.papers == []
