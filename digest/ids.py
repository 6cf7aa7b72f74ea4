"""Paper keys: arXiv ids without version, and normalised links for papers not on arXiv."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# New-style ids (April 2007 on): YYMM.NNNN (to 2014) or YYMM.NNNNN (2015 on), optional version.
_NEW = r"(?P<new>\d{2}(?:0[1-9]|1[0-2])\.\d{4,5})"
# Old-style ids (to March 2007): archive(.CLASS)/YYMMNNN: hep-th/9901001, math.GT/0309136.
_OLD = r"(?P<old>[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{2}(?:0[1-9]|1[0-2])\d{3})"
_VERSION = r"(?:v\d+)?"

# The whole text is an id, maybe prefixed: "2604.21935v1", "arXiv:hep-th/9901001", OAI ids.
_BARE = re.compile(rf"^(?:arxiv:|oai:arxiv\.org:)?(?:{_NEW}|{_OLD}){_VERSION}$", re.IGNORECASE)
# arXiv's own pages: arxiv.org/abs/ID, /pdf/ID(.pdf), export.arxiv.org/abs/ID, ...
_ARXIV_URL = re.compile(
    rf"^https?://(?:[a-z]+\.)?arxiv\.org/(?:abs|pdf|html|format)/(?:{_NEW}|{_OLD}){_VERSION}"
    r"(?:\.pdf)?/?(?:[?#].*)?$",
    re.IGNORECASE,
)
# Any other URL whose last path segment is a new-style id: huggingface.co/papers/ID,
# tldr.takara.ai/p/ID, alphaxiv.org/abs/ID, ... Old-style ids only count on arXiv itself.
_ANY_URL_TAIL = re.compile(
    rf"^https?://[^/?#]+/(?:[^?#]*/)?{_NEW}{_VERSION}(?:\.pdf)?/?(?:[?#].*)?$"
)

HF_PAPER_URL = "https://huggingface.co/papers/{id}"
ARXIV_ABS_URL = "https://arxiv.org/abs/{id}"
ARXIV_PDF_URL = "https://arxiv.org/pdf/{id}"


def normalise_arxiv_id(text: str | None) -> str | None:
    """The arXiv id (without version) named by `text`, or None when it names none.

    Accepts a bare id ("2604.21935v1", "hep-th/9901001"), "arXiv:ID", an OAI identifier
    ("oai:arXiv.org:2604.21935v1"), an arXiv URL (abs, pdf, export.arxiv.org) and any other
    URL that ends in a new-style id (huggingface.co/papers/ID, tldr.takara.ai/p/ID).
    """
    if not text:
        return None
    text = text.strip()
    for pattern in (_BARE, _ARXIV_URL, _ANY_URL_TAIL):
        match = pattern.match(text)
        if match:
            groups = match.groupdict()
            if groups.get("new"):
                return groups["new"]
            if groups.get("old"):
                return groups["old"]
    return None


def is_arxiv_id(key: str) -> bool:
    """True when `key` is an arXiv id as normalise_arxiv_id returns it (not a link)."""
    return normalise_arxiv_id(key) == key


def normalise_link(url: str) -> str:
    """A stable key for a paper that is not on arXiv: its link with the scheme and host
    lowercased, without the fragment and without a trailing slash. The query is kept."""
    url = url.strip()
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url.rstrip("/")
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def arxiv_abs_url(arxiv_id: str) -> str:
    return ARXIV_ABS_URL.format(id=arxiv_id)


def arxiv_pdf_url(arxiv_id: str) -> str:
    return ARXIV_PDF_URL.format(id=arxiv_id)


def hf_paper_url(arxiv_id: str) -> str:
    return HF_PAPER_URL.format(id=arxiv_id)
