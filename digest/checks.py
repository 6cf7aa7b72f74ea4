"""`digest check --connect`: reach every source and the mail server, change nothing."""

from __future__ import annotations

import asyncio

import aiosmtplib

from digest.config import Config, DeliveryConfig
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
    if config.delivery.method == "smtp":
        problem = await _check_smtp(config.delivery)
        if problem:
            problems.append(problem)
        else:
            good.append(f"smtp {config.delivery.host}:{config.delivery.port}: ok")
    return good, problems


async def _check_smtp(delivery: DeliveryConfig) -> str | None:
    smtp = aiosmtplib.SMTP(
        hostname=delivery.host,
        port=delivery.port,
        timeout=delivery.timeout,
        use_tls=delivery.security == "tls",
        start_tls=delivery.security == "starttls",
    )
    where = f"smtp {delivery.host}:{delivery.port}"
    try:
        await smtp.connect()
        if delivery.username:
            password = delivery.password()
            if not password:
                return f"{where}: ${delivery.password_env} is not set (fix: export it)"
            await smtp.login(delivery.username, password)
        await smtp.noop()
        await smtp.quit()
    except aiosmtplib.SMTPAuthenticationError as exc:
        return (
            f"{where}: login refused: {exc.code} {exc.message} (fix: check username / password_env)"
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        return f"{where}: {type(exc).__name__}: {exc} (fix: check host, port and security)"
    finally:
        if smtp.is_connected:
            smtp.close()
    return None
