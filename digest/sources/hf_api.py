"""type = "hf-api": the JSON array of https://huggingface.co/api/daily_papers."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from digest.config import SourceConfig
from digest.errors import ParseError
from digest.models import Paper
from digest.sources.hf_items import load_json, papers_from_items
from digest.sources.result import skipped_warnings
from digest.sources.text import collapse, is_binary, not_text_reason

HF_HOSTS = ("huggingface.co", "www.huggingface.co")
API_PATH = "/api/daily_papers"
DEFAULT_LIMIT = "100"  # without it, a date= response is cut at 50 papers


def api_url(url: str) -> str:
    """The url to fetch: the HF API gets ``limit=100`` unless it already names a limit."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in HF_HOSTS:
        return url
    if parts.path.rstrip("/") != API_PATH:
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "limit" for key, _ in query):
        return url
    query.append(("limit", DEFAULT_LIMIT))
    return urlunsplit(parts._replace(query=urlencode(query)))


def parse_hf_api(body: bytes, source: SourceConfig) -> tuple[list[Paper], list[str]]:
    """Papers and warnings from an API response. ``[]`` is an empty day (weekends)."""
    name, url = source.name, source.url
    if is_binary(body):
        raise ParseError(
            f"{name}: {url} returned {not_text_reason(body)}, not JSON",
            source=name,
            fix="check the url; it should be https://huggingface.co/api/daily_papers",
        )
    # Invalid UTF-8 is read with U+FFFD: a bad byte in one paper must not fail the others.
    text = body.decode("utf-8", errors="replace").lstrip("\ufeff")
    if not text.strip():
        raise ParseError(
            f"{name}: {url} returned an empty response, not JSON",
            source=name,
            fix="check the url; it should be the daily_papers API",
        )
    try:
        data = load_json(text)
    except json.JSONDecodeError as exc:
        looks = "an HTML page" if text.lstrip()[:1] == "<" else "broken JSON"
        raise ParseError(
            f"{name}: {url} returned {looks}, not JSON ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno})",
            source=name,
            fix="check the url; it should be https://huggingface.co/api/daily_papers",
        ) from None
    if isinstance(data, dict) and "dailyPapers" in data and isinstance(data["dailyPapers"], list):
        data = data["dailyPapers"]  # tolerate the page's props shape
    if not isinstance(data, list):
        detail = ""
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            detail = f": {collapse(data['error'], 200)}"
        raise ParseError(
            f"{name}: {url} returned a JSON {type(data).__name__}, not a list of papers{detail}",
            source=name,
            fix="check the url; it should be https://huggingface.co/api/daily_papers",
        )
    if not data:
        return [], []
    papers, problems = papers_from_items(data, name)
    if not papers:
        raise ParseError(
            f"{name}: {url}: none of the {len(data)} items is a paper ({problems[0]})",
            source=name,
            fix="the API format changed; report it",
        )
    return papers, skipped_warnings(name, problems, len(data), "items")
