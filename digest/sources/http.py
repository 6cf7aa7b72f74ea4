"""Fetching a source's bytes: HTTP(S) with retries and conditional GET, or a local file.

Only this module talks to the network. It raises FetchError (never an httpx exception) with a
one-line message naming the source and what went wrong.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx

from digest import __version__
from digest.config import SourceConfig
from digest.errors import FetchError
from digest.sources.redirects import MAX_REDIRECTS, redirect_refusal
from digest.sources.result import Validators

USER_AGENT = f"paper-digest/{__version__} (+https://github.com/paper-digest/paper-digest)"
DEFAULT_TIMEOUT = 30.0
# Longest Retry-After we wait for; a server asking for more gets no retry in this run.
RETRY_AFTER_CAP = 120.0
# A whole attempt (connect, headers, body) may take this many times the source's timeout:
# httpx timeouts are per network operation, so a server trickling bytes would never time out.
ATTEMPT_DEADLINE_FACTOR = 4
MAX_BODY_BYTES = 32 * 1024 * 1024
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

ACCEPT = {
    "hf-papers": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
    "hf-api": "application/json,*/*;q=0.5",
    "feed": (
        "application/rss+xml,application/atom+xml,application/xml;q=0.9,text/xml;q=0.9,*/*;q=0.5"
    ),
}


@dataclass
class Fetched:
    """The body of a successful fetch (or a 304, with an empty body)."""

    body: bytes
    url: str  # after redirects; the path for a local file
    content_type: str = ""
    not_modified: bool = False
    validators: Validators | None = None


def make_client(user_agent: str | None = None) -> httpx.AsyncClient:
    """The HTTP client every source fetch shares: timeouts set, and a User-Agent naming this
    service. Close it (``async with make_client() as client``). fetch_bytes follows redirects
    itself, under the policy of digest.sources.redirects, whatever the client's setting."""
    return httpx.AsyncClient(
        follow_redirects=False,
        timeout=httpx.Timeout(DEFAULT_TIMEOUT),
        headers={"User-Agent": user_agent or USER_AGENT},
    )


def is_local(url: str) -> bool:
    """A url that is not http(s) names a local file (a path or a file:// URL)."""
    return urlsplit(url).scheme.lower() not in ("http", "https")


def _check_scheme(source: SourceConfig, url: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("", "file", "http", "https") or len(scheme) == 1:  # 1 letter: a drive
        return
    raise FetchError(
        f"{source.name}: unsupported url scheme {scheme!r} in {url}",
        source=source.name,
        fix="use an http(s):// URL or a local file path",
    )


def local_path(url: str) -> Path:
    if url.lower().startswith("file:"):
        parts = urlsplit(url)
        return Path(url2pathname(unquote(parts.path)))
    return Path(url)


async def fetch_bytes(
    source: SourceConfig,
    client: httpx.AsyncClient,
    url: str,
    validators: Validators | None = None,
    *,
    retries: int = 3,
    backoff: float = 1.0,
) -> Fetched:
    """GET `url` for `source`, retrying transient failures; or read it from disk.

    `retries` is how many times a failed attempt is repeated (so up to 1 + retries requests).
    Timeouts, connection errors, dropped connections, 408/425/429 and 5xx are retried after
    ``backoff * 2**n`` seconds, or after the server's Retry-After (seconds or an HTTP date)
    when it sent one; a Retry-After above RETRY_AFTER_CAP ends the retries at once.
    """
    _check_scheme(source, url)
    if is_local(url):
        return await _read_local(source, url)
    headers = {"Accept": ACCEPT.get(source.type, "*/*")}
    if validators is not None:
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
    attempts = 1 + max(0, retries)
    for attempt in range(attempts):
        last = attempt == attempts - 1
        try:
            return await _attempt(source, client, url, headers, sent_validators=validators)
        except _Retryable as exc:
            if last:
                raise exc.error from None
            wait = backoff * 2**attempt
            if exc.retry_after is not None:
                if exc.retry_after > RETRY_AFTER_CAP:
                    raise FetchError(
                        f"{exc.error.message}; the server asks to retry after "
                        f"{exc.retry_after:.0f} s",
                        source=source.name,
                        fix="the next run will try again",
                    ) from None
                wait = max(wait, exc.retry_after)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


class _Retryable(Exception):
    def __init__(self, error: FetchError, retry_after: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after


async def _attempt(
    source: SourceConfig,
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    sent_validators: Validators | None,
) -> Fetched:
    name = source.name
    try:
        async with asyncio.timeout(source.timeout * ATTEMPT_DEADLINE_FACTOR):
            return await _follow(source, client, url, headers, sent_validators=sent_validators)
    except TimeoutError:
        raise _Retryable(
            FetchError(
                f"{name}: timed out fetching {url} (no complete response within "
                f"{source.timeout * ATTEMPT_DEADLINE_FACTOR:g} s)",
                source=name,
                fix="the server is slow or down; raise the source's timeout if this persists",
            )
        ) from None
    except httpx.TimeoutException as exc:
        raise _Retryable(
            FetchError(
                f"{name}: timed out after {source.timeout:g} s fetching {url} ({_phase(exc)})",
                source=name,
                fix="the server is slow or down; raise the source's timeout if this persists",
            )
        ) from None
    except httpx.ConnectError as exc:
        raise _Retryable(
            FetchError(
                f"{name}: cannot connect to {_host(url)} for {url}: {_reason(exc)}",
                source=name,
                fix="check the url and your network connection",
            )
        ) from None
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        if "location header" in str(exc).lower():  # httpx: "Invalid URL in location header"
            raise FetchError(
                f"{name}: {url} redirects to an invalid URL: {_reason(exc)}",
                source=name,
                fix="check the url; the server sends a broken redirect",
            ) from None
        raise _Retryable(
            FetchError(
                f"{name}: the connection broke while fetching {url}: {_reason(exc)}",
                source=name,
                fix="a network or server hiccup; the next run will try again",
            )
        ) from None
    except httpx.HTTPError as exc:  # unsupported protocol, proxy, decoding, invalid URL, ...
        raise FetchError(
            f"{name}: cannot fetch {url}: {type(exc).__name__}: {_reason(exc)}",
            source=name,
            fix="check the url",
        ) from None
    except httpx.InvalidURL as exc:
        if _parses(url):  # the configured url is fine: it was a redirect's Location
            raise FetchError(
                f"{name}: {url} redirects to an invalid URL: {exc}",
                source=name,
                fix="check the url; the server sends a broken redirect",
            ) from None
        raise FetchError(
            f"{name}: invalid url {url!r}: {exc}", source=name, fix="check the url"
        ) from None


async def _follow(
    source: SourceConfig,
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    sent_validators: Validators | None,
) -> Fetched:
    """GET `url`, following redirects the policy allows (digest.sources.redirects)."""
    name = source.name
    timeout = httpx.Timeout(source.timeout)
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        async with client.stream(
            "GET", current, headers=headers, timeout=timeout, follow_redirects=False
        ) as response:
            if response.next_request is not None:  # a 3xx with a Location
                target = str(response.next_request.url)
                refusal = redirect_refusal(url, current, target)
                if refusal is not None:
                    raise FetchError(
                        f"{name}: refused to follow the redirect from {current} to "
                        f"{target}: {refusal}",
                        source=name,
                        fix="set the source's url to where it should lead, if you trust it",
                    )
                current = target
                continue
            where = url if current == url else f"{url} (redirected to {current})"
            if response.status_code == 304:
                if sent_validators is None:
                    raise FetchError(
                        f"{name}: HTTP 304 Not Modified for {where} without a conditional GET",
                        source=name,
                        fix="the server misbehaves; report it or use another url",
                    )
                return Fetched(
                    b"",
                    str(response.url),
                    not_modified=True,
                    validators=_validators(response) or sent_validators,
                )
            if response.status_code >= 400:
                raise _status_error(source, where, response)
            body = await _read_body(source, where, response)
            return Fetched(
                body,
                str(response.url),
                content_type=response.headers.get("Content-Type", ""),
                validators=_validators(response),
            )
    raise FetchError(
        f"{name}: too many redirects fetching {url} (more than {MAX_REDIRECTS})",
        source=name,
        fix="check the url; it redirects in a loop or too deep",
    )


async def _read_body(source: SourceConfig, url: str, response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise FetchError(
                f"{source.name}: the response from {url} is larger than "
                f"{MAX_BODY_BYTES // (1024 * 1024)} MB",
                source=source.name,
                fix="check the url points at a feed or page, not a download",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _status_error(source: SourceConfig, url: str, response: httpx.Response) -> Exception:
    code = response.status_code
    reason = f" {response.reason_phrase}" if response.reason_phrase else ""
    message = f"{source.name}: HTTP {code}{reason} for {url}"
    if code in RETRY_STATUSES or code >= 500:
        fix = (
            "the server is rate-limiting; the next run will try again"
            if code == 429
            else "the server has a problem; the next run will try again"
        )
        error = FetchError(message, source=source.name, fix=fix)
        return _Retryable(error, _retry_after(response.headers.get("Retry-After")))
    if code in (401, 403):
        fix = "the server refuses access; check the url (a public page or feed is needed)"
    else:
        fix = "check the url"
    return FetchError(message, source=source.name, fix=fix)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # pragma: no cover - HTTP dates are GMT
        return None
    return max(0.0, when.timestamp() - time.time())


def _validators(response: httpx.Response) -> Validators | None:
    etag = response.headers.get("ETag")
    last_modified = response.headers.get("Last-Modified")
    if not etag and not last_modified:
        return None
    return Validators(etag=etag, last_modified=last_modified)


async def _read_local(source: SourceConfig, url: str) -> Fetched:
    path = local_path(url)
    try:
        body = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise FetchError(
            f"{source.name}: file {str(path)!r} not found",
            source=source.name,
            fix="check the source's url (a local path is read from disk)",
        ) from None
    except IsADirectoryError:
        raise FetchError(
            f"{source.name}: {str(path)!r} is a directory, not a file",
            source=source.name,
            fix="point the url at a file",
        ) from None
    except OSError as exc:
        raise FetchError(
            f"{source.name}: cannot read {str(path)!r}: {exc.strerror or exc}",
            source=source.name,
            fix="check the file's permissions",
        ) from None
    return Fetched(body, str(path))


def _parses(url: str) -> bool:
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return True


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _phase(exc: httpx.TimeoutException) -> str:
    return {
        httpx.ConnectTimeout: "connecting",
        httpx.ReadTimeout: "waiting for data",
        httpx.WriteTimeout: "sending the request",
        httpx.PoolTimeout: "waiting for a free connection",
    }.get(type(exc), "timeout")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
