"""Signed link tokens: no accounts, the link itself says who and what, and only we can make one.

    make_token(secret, purpose, email, subject) -> str
    read_token(secret, token, purposes, known_emails) -> Claim     (raises InvalidToken)

A token is url-safe base64 (no padding) of

    version (1 byte) | purpose (1 byte) | subscriber ref (9 bytes) | MAC (16 bytes) | subject

- the MAC is HMAC-SHA256, cut to 128 bits, over (version, purpose, the subscriber's email
  lowercased, subject), checked with hmac.compare_digest;
- the subscriber ref is a keyed hash of the email, so the link names its reader without
  putting the address into URLs (which proxies and browsers keep in logs and history); it is
  resolved against the readers the web side knows (digest.web.readers: the config's and every
  reader a run has registered in the state), and a token whose MAC was made for one reader
  never checks out for another;
- the subject is the paper id ("more"/"less"), the digest date ("view"), the last day the
  link works ("profile": YYYY-MM-DD, checked by digest.web.profile), empty for "unsubscribe";
  for "confirm" (a sign-up's link) the sign-up's id and its expiry, which digest.web.signup
  checks.

Both keys are derived from the one secret, so rotating the secret voids every link ever sent
(old mails' unsubscribe links too: their one-click POST then gets a "link not valid" page, and
the reader can still unsubscribe by email). Tokens do not expire otherwise (an unsubscribe link
must keep working for as long as the mail is read), except a profile link, which can change the
reader's settings: it carries the last day it works.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from digest.config import WebConfig
from digest.errors import ConfigError

VERSION = 1
# "confirm": a sign-up's confirmation link; its subject names the sign-up and when it expires
PURPOSES = {"unsubscribe": 1, "more": 2, "less": 3, "view": 4, "profile": 5, "confirm": 6}
_PURPOSE_NAMES = {code: name for name, code in PURPOSES.items()}
REF_BYTES = 9
MAC_BYTES = 16
HEADER_BYTES = 2 + REF_BYTES + MAC_BYTES
MAX_SUBJECT_BYTES = 300  # a paper id that is a long normalised link gets no feedback links
MIN_SECRET_CHARS = 32
# What a token can look like at all: checked before any decoding.
MAX_TOKEN_CHARS = (HEADER_BYTES + MAX_SUBJECT_BYTES + 2) // 3 * 4
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]+$")


class InvalidToken(Exception):
    """The token is malformed, forged, tampered with, for another purpose, or its reader is
    unknown. Deliberately one kind: the page says the same for all."""


class Readers(Protocol):
    """Who a subscriber ref stands for (SubscriberIndex, digest.web.readers.ReaderIndex)."""

    def lookup(self, ref: bytes) -> str | None: ...


@dataclass(frozen=True)
class Claim:
    """What a valid token says."""

    purpose: str
    email: str  # as the config spells it
    subject: str  # paper id, digest date, or ""


@functools.lru_cache(maxsize=8)
def _keys(secret: bytes) -> tuple[bytes, bytes]:
    """(ref key, MAC key), derived so that neither output can stand in for the other."""
    ref_key = hmac.new(secret, b"paper-digest/web/ref", hashlib.sha256).digest()
    mac_key = hmac.new(secret, b"paper-digest/web/mac", hashlib.sha256).digest()
    return ref_key, mac_key


def subscriber_ref(secret: bytes, email: str) -> bytes:
    ref_key, _ = _keys(secret)
    return hmac.new(ref_key, email.lower().encode("utf-8"), hashlib.sha256).digest()[:REF_BYTES]


def _mac(secret: bytes, purpose: str, email: str, subject: str) -> bytes:
    _, mac_key = _keys(secret)
    # NUL cannot occur in a validated email, purpose or subject: the fields cannot run together.
    message = b"\0".join(
        (
            str(VERSION).encode(),
            purpose.encode("ascii"),
            email.lower().encode("utf-8"),
            subject.encode("utf-8"),
        )
    )
    return hmac.new(mac_key, message, hashlib.sha256).digest()[:MAC_BYTES]


def make_token(secret: bytes, purpose: str, email: str, subject: str = "") -> str:
    """A url-safe token for (purpose, reader, subject). ValueError if the subject cannot go
    into a link (too long, control characters)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    raw_subject = subject.encode("utf-8")
    if len(raw_subject) > MAX_SUBJECT_BYTES or any(ord(c) < 32 or ord(c) == 127 for c in subject):
        raise ValueError(f"subject cannot go into a link: {subject[:80]!r}")
    raw = (
        bytes((VERSION, PURPOSES[purpose]))
        + subscriber_ref(secret, email)
        + _mac(secret, purpose, email, subject)
        + raw_subject
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def looks_like_token(token: str) -> bool:
    """Cheap shape check: the characters and length a token can have."""
    return 24 <= len(token) <= MAX_TOKEN_CHARS and bool(_TOKEN_SHAPE.match(token))


def read_token(secret: bytes, token: str, purposes: Iterable[str], known: Readers) -> Claim:
    """The claim of a valid token for one of `purposes`; InvalidToken for anything else."""
    purpose, ref, mac, subject = _parse(token, purposes)
    email = known.lookup(ref)
    # Always compute and compare a MAC, so an unknown reader costs the same as a bad MAC.
    expected = _mac(secret, purpose, email or "", subject)
    if not hmac.compare_digest(expected, mac) or email is None:
        raise InvalidToken("bad signature")
    return Claim(purpose=purpose, email=email, subject=subject)


def token_ref(token: str, purposes: Iterable[str]) -> bytes | None:
    """The subscriber ref of a well-formed token for one of `purposes` (not checked), or None:
    whether looking the reader up again could make the token valid."""
    try:
        return _parse(token, purposes)[1]
    except InvalidToken:
        return None


def token_subject(token: str, purposes: Iterable[str]) -> str | None:
    """The subject of a well-formed token for one of `purposes` (not checked), or None: for a
    token whose reader is found through its subject (a sign-up's confirmation link)."""
    try:
        return _parse(token, purposes)[3]
    except InvalidToken:
        return None


def _parse(token: str, purposes: Iterable[str]) -> tuple[str, bytes, bytes, str]:
    """(purpose, subscriber ref, MAC, subject) of a well-formed token, or InvalidToken."""
    if not looks_like_token(token):
        raise InvalidToken("malformed")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("not base64") from None
    if len(raw) < HEADER_BYTES or raw[0] != VERSION:
        raise InvalidToken("bad header")
    purpose = _PURPOSE_NAMES.get(raw[1], "")
    if purpose not in set(purposes):
        raise InvalidToken("wrong purpose")
    try:
        subject = raw[HEADER_BYTES:].decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidToken("bad subject") from None
    return purpose, raw[2 : 2 + REF_BYTES], raw[2 + REF_BYTES : HEADER_BYTES], subject


class SubscriberIndex:
    """Readers by their ref under one secret: a fixed list (digest.web.readers.ReaderIndex
    also learns the readers the state registers)."""

    def __init__(self, secret: bytes, emails: Iterable[str]) -> None:
        self._by_ref: dict[bytes, str] = {subscriber_ref(secret, e): e for e in emails}

    def lookup(self, ref: bytes) -> str | None:
        return self._by_ref.get(ref)


def require_secret(web: WebConfig) -> bytes:
    """The signing secret from the environment, or a ConfigError saying how to set one."""
    value = web.secret()
    make_one = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    if not value:
        raise ConfigError(
            f"[web] needs a signing secret, but ${web.secret_env} is not set",
            fix=f'export {web.secret_env}="$({make_one})" (keep it: changing it voids '
            "every link in mails already sent)",
        )
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"${web.secret_env} is too short ({len(value)} characters, at least "
            f"{MIN_SECRET_CHARS})",
            fix=f'export {web.secret_env}="$({make_one})"',
        )
    return value.encode("utf-8")
