"""Papers a reader brings along: pasted arXiv ids or URLs, a BibTeX file, a Zotero CSV export.

    read_pasted(text) -> Found
    read_upload(filename, data) -> Found           (raises Refused for a file we do not read)

Pure functions over bounded input: at most MAX_UPLOAD_BYTES and MAX_PAPERS papers, text that
is UTF-8 (a BOM is fine) with no NUL or other binary bytes, BibTeX braces nested at most
MAX_DEPTH deep, CSV rows of at most MAX_COLUMNS fields. No regular expression here can
backtrack: the scanners walk the text once. Unknown or malformed entries are listed, never
fatal; a file that is not what it says is refused with one sentence the page shows.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from digest.ids import normalise_arxiv_id as _normalise

MAX_UPLOAD_BYTES = 1024 * 1024
MAX_PASTE_CHARS = 64 * 1024
MAX_PAPERS = 500  # per import
MAX_DEPTH = 8  # BibTeX braces: real titles nest two or three deep
MAX_COLUMNS = 100  # a Zotero export has about 90
MAX_FIELD_CHARS = 20_000  # one CSV field or BibTeX value (an abstract is ~2,000)
MAX_LISTED = 50  # unknown entries shown back
TITLE_CHARS = 500
LONGEST_WORD = 300  # an id, or a URL naming one
ABSTRACT_CHARS = 5_000


class Refused(Exception):
    """The file is not one we read; str(exc) says why, for the page."""


@dataclass(frozen=True)
class FoundPaper:
    id: str  # a normalised arXiv id
    title: str = ""
    abstract: str = ""


@dataclass
class Found:
    papers: list[FoundPaper] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # entries with no arXiv id (shortened)
    more_unknown: int = 0  # beyond MAX_LISTED
    cut: bool = False  # more than MAX_PAPERS papers: the rest were left out

    def add(self, paper_id: str | None, entry: str, title: str = "", abstract: str = "") -> None:
        if paper_id is None:
            if len(self.unknown) < MAX_LISTED:
                self.unknown.append(_short(entry))
            else:
                self.more_unknown += 1
            return
        if any(p.id == paper_id for p in self.papers):
            return
        if len(self.papers) >= MAX_PAPERS:
            self.cut = True
            return
        self.papers.append(FoundPaper(paper_id, _plain(title, TITLE_CHARS), _plain(abstract)))


def read_pasted(text: str) -> Found:
    """arXiv ids or URLs, one per line (or separated by spaces or commas)."""
    if len(text) > MAX_PASTE_CHARS:
        raise Refused(f"That is more text than we read at once ({MAX_PASTE_CHARS:,} characters).")
    found = Found()
    for entry in text.replace(",", " ").split():
        found.add(normalise_arxiv_id(entry), entry)
    return found


def read_upload(filename: str, data: bytes) -> Found:
    """A .bib file or a Zotero .csv export, by its name (and checked by its content)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise Refused(f"The file is larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MiB.")
    text = _text(data)
    name = filename.lower()
    if name.endswith(".bib") or name.endswith(".bibtex"):
        return read_bibtex(text)
    if name.endswith(".csv"):
        return read_zotero_csv(text)
    raise Refused("Please upload a BibTeX file (.bib) or a Zotero CSV export (.csv).")


def _text(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data:
        raise Refused("The file is not text (it holds binary data).")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("The file is not UTF-8 text: export it again as UTF-8.") from None
    if any(ord(c) < 32 and c not in "\t\r\n\f" for c in text):
        raise Refused("The file is not text (it holds control characters).")
    return text


# --- BibTeX ----------------------------------------------------------------------------------


def read_bibtex(text: str) -> Found:
    """Each @entry's arXiv id (eprint with archivePrefix arXiv, an arxiv.org url or doi
    10.48550/arXiv.ID, or an arXiv journal field), title and abstract."""
    found = Found()
    for fields in _bib_entries(text):
        found.add(_bib_id(fields), fields.get("title") or fields.get("@key", "?"), **_texts(fields))
    return found


def _texts(fields: dict[str, str]) -> dict[str, str]:
    return {"title": fields.get("title", ""), "abstract": fields.get("abstract", "")}


def _bib_id(fields: dict[str, str]) -> str | None:
    for name in ("eprint", "arxivid", "arxiv"):
        if name in fields and (pid := normalise_arxiv_id(fields[name].strip())):
            return pid
    for name in ("url", "doi", "journal", "note", "howpublished"):
        value = fields.get(name, "")
        if "arxiv" in value.lower() and (pid := _id_in(value)):
            return pid
    return None


def _id_in(value: str) -> str | None:
    """The first arXiv id among the words of a text (an arXiv URL, a DataCite DOI
    10.48550/arXiv.ID, "arXiv:ID")."""
    for word in value.replace("arXiv:", " ").replace("arxiv:", " ").split():
        lowered = word.lower()
        if lowered.startswith("10.48550/arxiv."):
            word = word[len("10.48550/arxiv.") :]
        if pid := normalise_arxiv_id(word.strip(".,;{}()")):
            return pid
    return None


def _bib_entries(text: str) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = []
    i, n = 0, len(text)
    while (at := text.find("@", i)) != -1:
        i = at + 1
        j = i
        while j < n and (text[j].isalnum() or text[j] in "_-"):
            j += 1
        kind = text[i:j].lower()
        k = j
        while k < n and text[k].isspace():
            k += 1
        if not kind or k >= n or text[k] not in "{(":
            continue
        close = "}" if text[k] == "{" else ")"
        end = _balanced_end(text, k, close)
        if kind in ("comment", "preamble", "string"):
            i = end
            continue
        entries.append(_bib_fields(text[k + 1 : end - 1]))
        i = end
    return entries


def _balanced_end(text: str, start: int, close: str) -> int:
    """The index after the bracket that closes the one at `start` ("{" or "("); braces
    inside may nest MAX_DEPTH deep (Refused beyond, and for a bracket never closed)."""
    depth = 0  # of braces inside
    for i in range(start + 1, len(text)):
        c = text[i]
        if c == "{":
            depth += 1
            if depth > MAX_DEPTH:
                raise Refused(f"The BibTeX file nests braces more than {MAX_DEPTH} deep.")
        elif c == "}":
            if depth == 0 and close == "}":
                return i + 1
            depth = max(depth - 1, 0)
        elif c == ")" and close == ")" and depth == 0:
            return i + 1
    raise Refused("The BibTeX file ends inside an entry (a brace is not closed).")


def _bib_fields(body: str) -> dict[str, str]:
    """key, name = {value} | "value" | bare, ... -> {name: value} (and "@key")."""
    fields: dict[str, str] = {}
    key, _, rest = body.partition(",")
    fields["@key"] = key.strip()
    i, n = 0, len(rest)
    while i < n:
        eq = rest.find("=", i)
        if eq == -1:
            break
        name = rest[i:eq].strip(" \t\r\n,").lower()
        j = eq + 1
        while j < n and rest[j].isspace():
            j += 1
        value, i = _bib_value(rest, j)
        if name:
            fields.setdefault(name, _plain(value[:MAX_FIELD_CHARS], MAX_FIELD_CHARS))
        if len(fields) > MAX_COLUMNS:
            break  # no real entry has this many fields
    return fields


def _bib_value(text: str, i: int) -> tuple[str, int]:
    """The value starting at i (braced, quoted, or bare up to the next comma) and the index
    after it and its comma."""
    n = len(text)
    if i < n and text[i] == "{":
        end = _balanced_end(text, i, "}")
        value = text[i + 1 : end - 1]
    elif i < n and text[i] == '"':
        end = text.find('"', i + 1)
        end = n if end == -1 else end + 1
        value = text[i + 1 : end - 1]
    else:
        end = text.find(",", i)
        end = n if end == -1 else end
        value = text[i:end]
    comma = text.find(",", end)
    next_eq = text.find("=", end)
    after = n if comma == -1 or (next_eq != -1 and next_eq < comma) else comma + 1
    return value.replace("{", "").replace("}", ""), after


# --- Zotero CSV -----------------------------------------------------------------------------


def read_zotero_csv(text: str) -> Found:
    """Zotero's "Export Collection... > CSV": columns Title, Abstract Note, Url, DOI, Extra
    ("arXiv: 2606.00467"), Archive Location; an arXiv id in any of them counts."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        header = next(reader, None)
        if header is None:
            return Found()
        if len(header) > MAX_COLUMNS:
            raise Refused(f"The CSV file has more than {MAX_COLUMNS} columns: not a Zotero export.")
        names = [h.strip().lower() for h in header]
        if "title" not in names:
            raise Refused("The CSV file has no Title column: not a Zotero export.")
        found = Found()
        for row in reader:
            if len(row) > MAX_COLUMNS:
                raise Refused(f"A row of the CSV file has more than {MAX_COLUMNS} fields.")
            cells = dict(zip(names, row, strict=False))
            found.add(_csv_id(cells), cells.get("title") or ",".join(row)[:80], **_csv_texts(cells))
        return found
    except csv.Error as exc:
        raise Refused(f"The CSV file could not be read ({exc}).") from None


def _csv_texts(cells: dict[str, str]) -> dict[str, str]:
    return {"title": cells.get("title", ""), "abstract": cells.get("abstract note", "")}


def _csv_id(cells: dict[str, str]) -> str | None:
    for name in ("url", "doi", "extra", "archive location", "publication title", "report number"):
        value = cells.get(name, "")
        if "arxiv" in value.lower() and (pid := _id_in(value)):
            return pid
    return None


def normalise_arxiv_id(word: str) -> str | None:
    """The arXiv id a word names; None for a word longer than any id or link to one (so that
    no pattern ever runs over a megabyte-long word)."""
    return _normalise(word) if len(word) <= LONGEST_WORD else None


def _plain(text: str, longest: int = ABSTRACT_CHARS) -> str:
    """One line of plain text (whitespace runs squeezed), cut to `longest`."""
    return " ".join(text.split())[:longest]


def _short(entry: str) -> str:
    text = _plain(entry, 80)
    return text if len(text) < 80 else text[:79] + "…"
