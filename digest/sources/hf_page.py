"""type = "hf-papers": the Hugging Face Daily Papers HTML page.

The data is the JSON in the ``data-props`` attribute of ``div[data-target="DailyPapers"]``
(lexbor decodes the entities). When that JSON is missing or broken but the rendered cards are
there, the cards give ids, titles and upvotes, with a loud warning. A page with neither is an
error (PageChangedError), never an empty day.
"""

from __future__ import annotations

import json
import re
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from digest.config import SourceConfig
from digest.errors import PageChangedError, ParseError
from digest.ids import arxiv_abs_url, arxiv_pdf_url, hf_paper_url, normalise_arxiv_id
from digest.models import Paper
from digest.sources.hf_items import load_json, papers_from_items
from digest.sources.result import skipped_warnings
from digest.sources.text import collapse, is_binary, not_text_reason
from digest.sources.valid import UnusableEntry, valid_paper

DATA_SELECTOR = 'div[data-target="DailyPapers"]'
CARD_SELECTOR = 'article h3 > a[href^="/papers/"]'
UPVOTES_SELECTOR = "div.leading-none"
PAGE_CHANGED_FIX = "the page structure changed; check the url or report it"
_COUNT = re.compile(r"^[0-9]{1,15}$")
EMPTY_LIST = "its dailyPapers list is empty"


def parse_hf_page(body: bytes, source: SourceConfig) -> tuple[list[Paper], list[str]]:
    """Papers and warnings from the page. Raises PageChangedError when it holds no papers."""
    name, url = source.name, source.url
    if not body.strip():
        raise ParseError(
            f"{name}: {url} is empty, not a Daily Papers page",
            source=name,
            fix="check the url; the next run will try again",
        )
    if is_binary(body):
        raise ParseError(
            f"{name}: {url} returned {not_text_reason(body)}, not a Daily Papers page",
            source=name,
            fix="check the url",
        )
    # Lexbor decodes the bytes as UTF-8, each invalid sequence as U+FFFD (as browsers do).
    tree = LexborHTMLParser(body)
    problem = ""
    props_node = tree.css_first(DATA_SELECTOR)
    if props_node is None:
        problem = f"no {DATA_SELECTOR} element"
    else:
        items, problem = _items(props_node)
        if problem == EMPTY_LIST and not tree.css_first(CARD_SELECTOR):
            return [], []  # a well-formed page with no papers today: an empty day
        if items:
            papers, skipped = papers_from_items(items, name)
            if papers:
                return papers, skipped_warnings(name, skipped, len(items), "papers in the page")
            problem = f"none of its {len(items)} dailyPapers items is a paper ({skipped[0]})"

    papers, skipped_cards = _cards(tree, name)
    if papers:
        warning = (
            f"{name}: the Daily Papers page changed ({problem}); read {len(papers)} papers "
            f"from the cards only: ids, titles and upvotes, no abstracts or authors. "
            f"Check {url} or report it"
        )
        return papers, [warning]
    raise PageChangedError(
        f"{name}: no papers on {url}: {problem} and no paper cards"
        + (f" ({skipped_cards} cards without an arXiv id)" if skipped_cards else ""),
        source=name,
        fix=PAGE_CHANGED_FIX,
    )


def _items(node: LexborNode) -> tuple[list[Any], str]:
    """The dailyPapers items of the data-props JSON, or [] and what is wrong with it."""
    raw = node.attrs.get("data-props")
    if not raw or not raw.strip():
        return [], "its data-props attribute is missing or empty"
    try:
        props = load_json(raw)
    except json.JSONDecodeError as exc:
        return [], f"its data-props is not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(props, dict):
        return [], f"its data-props is a JSON {type(props).__name__}, not an object"
    items = props.get("dailyPapers")
    if not isinstance(items, list):
        return [], "its data-props has no dailyPapers list"
    if not items:
        return [], EMPTY_LIST
    return items, ""


def _cards(tree: LexborHTMLParser, source_name: str) -> tuple[list[Paper], int]:
    """Papers from the rendered cards, and how many cards had no usable id."""
    papers: list[Paper] = []
    seen: set[str] = set()
    skipped = 0
    for link in tree.css(CARD_SELECTOR):
        href = link.attrs.get("href") or ""
        raw_id = href.removeprefix("/papers/").split("?", 1)[0].split("#", 1)[0].strip("/")
        arxiv_id = normalise_arxiv_id(raw_id)
        if not arxiv_id or arxiv_id in seen:
            skipped += not arxiv_id
            continue
        try:
            paper = valid_paper(
                Paper(
                    id=arxiv_id,
                    title=collapse(link.text()),
                    url=hf_paper_url(arxiv_id),
                    arxiv_url=arxiv_abs_url(arxiv_id),
                    pdf_url=arxiv_pdf_url(arxiv_id),
                    upvotes=_upvotes(_article_of(link)),
                    sources=[source_name],
                )
            )
        except UnusableEntry:  # no title left
            skipped += 1
            continue
        seen.add(arxiv_id)
        papers.append(paper)
    return papers, skipped


def _article_of(node: LexborNode) -> LexborNode | None:
    parent = node.parent
    while parent is not None and parent.tag != "article":
        parent = parent.parent
    return parent


def _upvotes(article: LexborNode | None) -> int | None:
    if article is None:
        return None
    # The "Submitted by" badge is also div.leading-none: the count is the one that is a number.
    for node in article.css(UPVOTES_SELECTOR):
        text = collapse(node.text(), 40).replace(",", "")
        if _COUNT.match(text):
            return int(text)
    return None
