"""Read the small form bodies the web side accepts, with hard limits, without python-multipart.

A POST here is a button on one of our pages (application/x-www-form-urlencoded) or a mail
provider's RFC 8058 one-click unsubscribe, which SHOULD be multipart/form-data and MAY be
urlencoded. Both are a few dozen bytes; anything over MAX_BODY_BYTES is refused unread.
"""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from email.parser import BytesParser
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request

MAX_BODY_BYTES = 4096
MAX_FIELDS = 20


class FormError(Exception):
    """The request body is not a small form we accept (or never arrived whole: a malformed
    chunked body, a client gone, a body past the server's deadline). `status`: 400, 413 or
    415."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_form(request: Request, *, max_bytes: int = MAX_BODY_BYTES) -> dict[str, str]:
    """The form fields of a POST (first value of each name), within the limits above
    (`max_bytes`: a larger cap for a form that holds text, the sign-up form)."""
    content_type = request.headers.get("content-type", "")
    mime, boundary = _content_type(content_type)
    if mime not in ("", "application/x-www-form-urlencoded", "multipart/form-data"):
        raise FormError(415, f"content type {mime!r} is not a form")
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise FormError(400, "bad Content-Length")
        if int(length) > max_bytes:
            raise FormError(413, "body too large")
    body = bytearray()
    try:
        async for chunk in request.stream():  # also bounds a chunked body without a length
            body += chunk
            if len(body) > max_bytes:
                raise FormError(413, "body too large")
    except ClientDisconnect:
        raise FormError(400, "the body did not arrive whole") from None
    if mime == "multipart/form-data":
        if not boundary:
            raise FormError(400, "multipart body without a boundary")
        return _multipart(content_type, bytes(body))
    return _urlencoded(bytes(body))


def _content_type(value: str) -> tuple[str, str]:
    if not value.strip():
        return "", ""
    header = EmailMessage(policy=email.policy.HTTP)
    try:
        header["Content-Type"] = value
    except (ValueError, TypeError):
        raise FormError(400, "bad Content-Type") from None
    boundary = header.get_param("boundary")
    return header.get_content_type(), boundary if isinstance(boundary, str) else ""


def _urlencoded(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise FormError(400, "not a urlencoded form") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def _multipart(content_type: str, body: bytes) -> dict[str, str]:
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        raise FormError(400, "not a multipart form")
    fields: dict[str, str] = {}
    parts = message.get_payload()
    if not isinstance(parts, list) or len(parts) > MAX_FIELDS:
        raise FormError(400, "not a multipart form")
    for part in parts:
        if not isinstance(part, EmailMessage):
            raise FormError(400, "bad multipart field")
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            raise FormError(400, "bad multipart field")
        fields.setdefault(name, payload.decode("utf-8", "replace"))
    return fields
