"""The render pool: started ahead of the first digest, and a broken templates folder is reported
by the digest that needs it, not by the warm-up."""

from __future__ import annotations

import asyncio
import email
import zlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from digest.mailbuild import BuiltMail, MailBuilder, MailHeaders
from digest.models import DigestContent


def _headers(templates: Path | None = None) -> MailHeaders:
    return MailHeaders(
        from_addr="Digest <digest@example.org>",
        to_addr="ada@example.org",
        to_name="Ada",
        message_id="<m1@example.org>",
        date=datetime(2026, 11, 24, 7, 30, tzinfo=UTC),
        templates_dir=templates,
    )


def _content() -> DigestContent:
    return DigestContent(
        subscriber_name="Ada",
        subscriber_email="ada@example.org",
        digest_date=date(2026, 11, 24),
        papers=[],
        candidates_count=0,
    )


def test_a_started_pool_builds_the_same_bytes_as_inline() -> None:
    async def build(workers: int) -> BuiltMail:
        builder = MailBuilder(workers)
        try:
            builder.start(None)
            return await builder.submit(_content(), _headers())
        finally:
            builder.close()

    pooled = asyncio.run(build(1))
    assert pooled == asyncio.run(build(0))
    assert email.message_from_bytes(pooled.wire)["To"] == "Ada <ada@example.org>"
    # The worker packs the bytes as the send log keeps them.
    assert zlib.decompress(pooled.packed) == pooled.wire


def test_a_broken_templates_folder_fails_the_digest_not_the_warm_up(tmp_path: Path) -> None:
    (tmp_path / "digest.html.j2").write_text("{% if %}", encoding="utf-8")

    async def build() -> None:
        builder = MailBuilder(1)
        try:
            builder.start(tmp_path)  # the worker's warm-up meets the error and keeps it quiet
            with pytest.raises(Exception, match="digest.html.j2"):
                await builder.submit(_content(), _headers(tmp_path))
        finally:
            builder.close()

    asyncio.run(build())
