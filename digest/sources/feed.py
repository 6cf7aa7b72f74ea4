"""type = "feed": any RSS or Atom feed, read with feedparser from the bytes already fetched.

Knows the quirks of the feeds papers come in: arXiv RSS (``oai:arXiv.org:IDvN`` guids, one
comma-separated dc:creator, "arXiv:ID Announce Type: new Abstract: ..." descriptions), the arXiv
API's Atom (``http://arxiv.org/abs/IDvN`` ids, hard-wrapped text, primary category), and
third-party feeds of HF Daily Papers (HTML descriptions with "Authors:", "Upvotes:" and
"Summary:" paragraphs; takara links ``tldr.takara.ai/p/ID``).
"""

from __future__ import annotations

import codecs
import io
import re
import time
from typing import Any

import feedparser
from selectolax.lexbor import LexborHTMLParser

from digest.config import SourceConfig
from digest.errors import ParseError
from digest.ids import (
    arxiv_abs_url,
    arxiv_pdf_url,
    normalise_arxiv_id,
    normalise_link,
)
from digest.models import Paper
from digest.sources.result import skipped_warnings
from digest.sources.text import (
    collapse,
    detail_text,
    html_to_text,
    is_binary,
    not_text_reason,
)
from digest.sources.valid import UnusableEntry, valid_paper
from digest.text import replace_surrogates

FEED_FIX = "check the url points at an RSS or Atom feed"
_ARXIV_DESCRIPTION = re.compile(
    r"^arXiv:\S+\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:\s*)?(?P<abstract>.*)$",
    re.DOTALL | re.IGNORECASE,
)
_LABEL = re.compile(r"^\s*(authors?|upvotes?|summary|abstract|tl;?dr)\s*:\s*", re.IGNORECASE)
_CLOSE_ROOT = re.compile(rb"</(?:[\w-]+:)?(?:rss|feed|rdf)\s*>\s*$", re.IGNORECASE)
_CLOSE_ENTRY = re.compile(rb"</(?:[\w-]+:)?(?:item|entry)\s*>", re.IGNORECASE)
_BARE_AMPERSAND = re.compile(rb"&(?!(?:[a-zA-Z][a-zA-Z0-9]*|#[0-9]+|#x[0-9a-fA-F]+);)")
_HTML_START = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL
)
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_XML_ENCODING = re.compile(
    rb"""^(?:\xef\xbb\xbf)?\s*<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']"""
)
_UTF8_NAMES = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")
# Characters XML 1.0 forbids (raw); a feed holding one is not well-formed.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def parse_feed(body: bytes, source: SourceConfig) -> tuple[list[Paper], list[str]]:
    """Papers and warnings from an RSS/Atom document. A feed without items is an empty day.

    A document that is not a feed (empty, an HTML page, JSON, binary) is a ParseError. A feed
    cut short keeps its complete entries and warns; items without an id or a title are skipped
    with a warning, and a ParseError is raised when no item is usable.
    """
    name, url = source.name, source.url
    if not body.strip():
        raise ParseError(f"{name}: {url} is empty, not a feed", source=name, fix=FEED_FIX)
    if is_binary(body):
        raise ParseError(
            f"{name}: {url} is not a readable feed ({not_text_reason(body)}, not text)",
            source=name,
            fix=FEED_FIX,
        )
    body, repairs = repair_xml(body)
    if _HTML_START.match(body[:4096]):
        raise ParseError(
            f"{name}: {url} returned an HTML page{_html_title(body)}, not an RSS/Atom feed",
            source=name,
            fix=FEED_FIX,
        )
    parsed = _parse(body)
    entries: list[Any] = list(parsed.get("entries") or [])
    version = parsed.get("version") or ""
    bozo = bool(parsed.get("bozo"))
    problem = _reason(parsed.get("bozo_exception")) if bozo else ""
    warnings: list[str] = []
    if repairs:
        warnings.append(
            f"{name}: the feed from {url} holds {repairs}; read with them replaced by U+FFFD "
            "or removed"
        )
    if bozo and _BARE_AMPERSAND.search(body):
        # The commonest feed bug: "R&D" unescaped. Escaped, the document may be well-formed,
        # which reads better than feedparser's lenient parser ("R&D;").
        repaired = _parse(_BARE_AMPERSAND.sub(b"&amp;", body))
        if not repaired.get("bozo") and repaired.get("entries"):
            return _papers(
                list(repaired["entries"]),
                source,
                [
                    *warnings,
                    f"{name}: the feed from {url} is not well-formed ({problem}); "
                    "read it with its bare '&' escaped",
                ],
            )

    if not entries:
        if bozo or not version:
            what = "not well-formed XML" if bozo else "not RSS or Atom"
            detail = f": {problem}" if problem else ""
            raise ParseError(
                f"{name}: {url} is not a readable feed ({what}{detail})",
                source=name,
                fix=FEED_FIX,
            )
        return [], []  # a feed with no items: an empty day (weekends)

    if bozo and not _CLOSE_ROOT.search(body[-256:].rstrip()):
        # Cut short: only entries whose closing tag arrived are complete.
        complete = len(_CLOSE_ENTRY.findall(body))
        if complete == 0:
            raise ParseError(
                f"{name}: {url} is cut short before its first complete entry ({problem})",
                source=name,
                fix="the download was incomplete; the next run will try again",
            )
        if complete < len(entries):
            dropped = len(entries) - complete
            entries = entries[:complete]
            warnings.append(
                f"{name}: the feed from {url} is cut short ({problem}); read its {complete} "
                f"complete entries and dropped {dropped} cut one(s)"
            )
        else:
            warnings.append(f"{name}: the feed from {url} is cut short after its last entry")
    elif bozo:
        warnings.append(
            f"{name}: the feed from {url} is not well-formed ({problem}); read leniently"
        )
    return _papers(entries, source, warnings)


def repair_xml(body: bytes) -> tuple[bytes, str]:
    """The feed as XML a strict parser reads, and what was repaired ("" for nothing).

    In any document but UTF-16/32 ones: a character reference to what XML forbids (a
    surrogate, NUL or another control, past U+10FFFF) becomes U+FFFD (a control: nothing). In a
    UTF-8 document (declared so, or by default): invalid UTF-8 becomes U+FFFD and raw control
    characters are removed. Otherwise feedparser would read the whole feed leniently (a
    document declared UTF-8 as windows-1252) or fail on it (``&#xD800;``), good entries too.
    """
    if body.startswith(_WIDE_BOMS):
        return body, ""
    refs = 0

    def legal(match: re.Match[bytes]) -> bytes:
        nonlocal refs
        hex_digits, digits = match.groups()
        code = -1
        if len((hex_digits or digits).lstrip(b"0")) <= 8:
            code = int(hex_digits, 16) if hex_digits else int(digits)
        if code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD:
            return match.group()
        if 0x10000 <= code <= 0x10FFFF:
            return match.group()
        refs += 1
        return b"" if 0 <= code < 0x20 else b"&#xFFFD;"

    if b"&#" in body:
        body = _CHAR_REF.sub(legal, body)
    declared = _XML_ENCODING.match(body)
    invalid = controls = 0
    if declared is None or declared.group(1).lower() in _UTF8_NAMES:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body.decode("utf-8", errors="replace")
            invalid = text.count("\ufffd") - body.count("\ufffd".encode())
        text, controls = _XML_FORBIDDEN.subn("", text)
        if invalid or controls:
            body = text.encode("utf-8")
    found = [
        f"{count} {what}"
        for count, what in (
            (invalid, "invalid UTF-8 sequence(s)"),
            (controls, "control character(s)"),
            (refs, "reference(s) to characters XML forbids"),
        )
        if count
    ]
    return body, ", ".join(found)


def _parse(body: bytes) -> Any:
    # A stream, so feedparser never treats the bytes as a URL or a file name to open.
    return feedparser.parse(io.BytesIO(body))


def _papers(
    entries: list[Any], source: SourceConfig, warnings: list[str]
) -> tuple[list[Paper], list[str]]:
    name, url = source.name, source.url
    papers: list[Paper] = []
    skipped: list[str] = []
    for index, entry in enumerate(entries):
        try:
            papers.append(_paper(entry, name))
        except UnusableEntry as exc:
            skipped.append(f"entry {index + 1}: {exc}")
        except Exception as exc:  # an unforeseen value in one entry must not sink the others
            skipped.append(f"entry {index + 1}: {UnusableEntry(f'{type(exc).__name__}: {exc}')}")
    if not papers:
        raise ParseError(
            f"{name}: none of the {len(entries)} entries of {url} has an id and a title "
            f"({skipped[0]})",
            source=name,
            fix=FEED_FIX,
        )
    return papers, warnings + skipped_warnings(name, skipped, len(entries), "entries")


def _paper(entry: Any, source_name: str) -> Paper:
    """The valid Paper of one entry (digest.sources.valid); UnusableEntry says why it has
    none."""
    link = (entry.get("link") or "").strip()
    guid = (entry.get("id") or "").strip()
    hrefs = [(lnk.get("href") or "").strip() for lnk in entry.get("links") or []]
    arxiv_id = next((aid for aid in map(normalise_arxiv_id, [guid, link, *hrefs]) if aid), None)
    title = detail_text(entry.get("title"), _type(entry, "title_detail"))
    summary_html, summary_type = _summary(entry)
    fields = _labelled_paragraphs(summary_html) if "html" in summary_type else {}
    abstract = fields.get("summary") or fields.get("abstract") or fields.get("tldr")
    if abstract is None:
        abstract = detail_text(summary_html, summary_type)
    announce_type = collapse(entry.get("arxiv_announce_type")).lower()
    match = _ARXIV_DESCRIPTION.match(abstract)
    if match:  # arXiv RSS: "arXiv:2604.21935v1 Announce Type: new Abstract: ..."
        abstract = match.group("abstract").strip()
        announce_type = announce_type or match.group("type").lower()
    if not arxiv_id and match:
        arxiv_id = normalise_arxiv_id(abstract.split(maxsplit=1)[0] if abstract else "")

    if arxiv_id:
        key = arxiv_id
    elif link:
        key = normalise_link(link)
    elif guid:
        key = normalise_link(guid)
    else:
        raise UnusableEntry("no id, guid or link")

    authors = _authors(entry)
    if not authors and fields.get("authors"):
        authors = _split_names(fields["authors"])
    return valid_paper(
        Paper(
            id=key,
            title=title,
            abstract=abstract,
            authors=authors,
            url=_page_url(link, arxiv_id),
            arxiv_url=arxiv_abs_url(arxiv_id) if arxiv_id else "",
            pdf_url=arxiv_pdf_url(arxiv_id) if arxiv_id else _pdf_link(entry),
            upvotes=_int(fields.get("upvotes")),
            published=_published(entry),
            categories=_categories(entry),
            sources=[source_name],
            announce_type=announce_type,
        )
    )


def _summary(entry: Any) -> tuple[str, str]:
    """The entry's description (or Atom content) and its content type."""
    summary = entry.get("summary")
    if summary:
        return summary, _type(entry, "summary_detail")
    for content in entry.get("content") or []:
        if content.get("value"):
            return content["value"], content.get("type") or "text/html"
    return "", "text/plain"


def _labelled_paragraphs(fragment: str) -> dict[str, str]:
    """{"authors": ..., "upvotes": ..., "summary": ...} from HTML paragraphs that start with a
    bold label, as the HF daily feeds write them. Empty when the HTML has no such labels."""
    if not fragment or ":" not in fragment:
        return {}
    tree = LexborHTMLParser(replace_surrogates(fragment), is_fragment=True)
    root = tree.root
    if root is None:
        return {}
    fields: dict[str, str] = {}
    for node in root.css("p, li"):
        text = html_to_text(node.html or "")
        match = _LABEL.match(text)
        if match:
            label = match.group(1).lower().rstrip("s").replace(";", "")
            label = {"author": "authors", "upvote": "upvotes", "tldr": "tldr"}.get(label, label)
            fields.setdefault(label, text[match.end() :].strip())
    return fields


def _authors(entry: Any) -> list[str]:
    names: list[str] = []
    for author in entry.get("authors") or []:
        name = author.get("name") if isinstance(author, dict) else None
        if name:
            names.append(html_to_text(name))
    if not names and entry.get("author"):
        names = [html_to_text(entry["author"])]
    if len(names) == 1 and "," in names[0]:
        # arXiv RSS: one dc:creator "Ann Lee, Bo Chen, Cy Diaz".
        return _split_names(names[0])
    return [n for n in names if n]


def _split_names(text: str) -> list[str]:
    parts = re.split(r",\s*|\s+and\s+", text)
    return [collapse(p) for p in parts if collapse(p) and collapse(p).lower() != "et al."]


def _categories(entry: Any) -> list[str]:
    terms: list[str] = []
    primary = entry.get("arxiv_primary_category")
    if isinstance(primary, dict) and primary.get("term"):
        terms.append(primary["term"].strip())
    for tag in entry.get("tags") or []:
        term = collapse(tag.get("term") or tag.get("label") or "")
        if term and term not in terms:
            terms.append(term)
    return terms


def _published(entry: Any) -> str:
    for key in ("published", "updated"):
        parsed = entry.get(f"{key}_parsed")
        if parsed:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", parsed)
        if entry.get(key):
            return collapse(entry[key])
    return ""


def _page_url(link: str, arxiv_id: str | None) -> str:
    if arxiv_id and (not link or normalise_arxiv_id(link) == arxiv_id and "arxiv.org" in link):
        return arxiv_abs_url(arxiv_id)
    return link


def _pdf_link(entry: Any) -> str:
    for lnk in entry.get("links") or []:
        if lnk.get("type") == "application/pdf" or lnk.get("title") == "pdf":
            return (lnk.get("href") or "").strip()
    return ""


def _type(entry: Any, key: str) -> str:
    detail = entry.get(key)
    return (detail.get("type") if isinstance(detail, dict) else None) or "text/plain"


def _int(value: str | None) -> int | None:
    if not value:
        return None
    digits = value.replace(",", "").strip()
    return int(digits) if digits.isdecimal() and len(digits) <= 15 else None


def _reason(exc: Any) -> str:
    if exc is None:
        return ""
    text = collapse(str(exc)) or type(exc).__name__
    line = getattr(exc, "getLineNumber", None)
    if callable(line):
        try:
            return f"{text} at line {line()}"
        except Exception:  # pragma: no cover - defensive: SAX locator gone
            return text
    return text


def _html_title(body: bytes) -> str:
    tree = LexborHTMLParser(body[:65536])
    node = tree.css_first("title")
    title = collapse(node.text()) if node is not None else ""
    return f" ({collapse(title, 80)!r})" if title else ""
