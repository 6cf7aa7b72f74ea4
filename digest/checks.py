"""`digest check --connect`: reach every source and the mail server, change nothing."""

from __future__ import annotations

import asyncio

from digest.config import Config
from digest.deliver import SmtpMailer, one_line
from digest.errors import DigestError
from digest.sources import fetch_all, make_client


def check_connections(config: Config) -> tuple[list[str], list[str]]:
    """(what answered, what failed): one line each. No failures means all is reachable."""
    return asyncio.run(_check(config))


async def _check(config: Config) -> tuple[list[str], list[str]]:
    good: list[str] = []
    problems: list[str] = []
    async with make_client() as client:
        results = await fetch_all(config.sources, client, {}, retries=1, backoff=0)
    for result in results:
        if result.error is not None:
            problems.append(f"source {result.source.name}: {result.error}")
        else:
            good.append(f"source {result.source.name}: ok, {len(result.papers)} papers")
    delivery = config.delivery
    if delivery.method == "smtp":
        where = f"smtp {delivery.host}:{delivery.port}"
        try:
            await SmtpMailer(delivery).check()
        except DigestError as exc:
            problems.append(f"{where}: {exc}")
        except Exception as exc:  # refused, timed out, dropped: the transport's own words
            problems.append(
                f"{where}: {one_line(f'{type(exc).__name__}: {exc}')} "
                "(fix: check host, port and security in [delivery])"
            )
        else:
            good.append(f"{where}: ok")
    return good, problems
