#!/usr/bin/env python3
"""Measure the web side: the cost of signing a digest's links, and requests per second of the
app under real uvicorn on 127.0.0.1 (one client, sequential, keep-alive).

    .venv/bin/python benchmarks/bench_web.py [--requests 500]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from digest.clock import utc_now  # noqa: E402
from digest.config import WebConfig, load_config  # noqa: E402
from digest.models import Paper  # noqa: E402
from digest.store import Store  # noqa: E402
from digest.web.guard import RateLimiter  # noqa: E402
from digest.web.links import digest_links, unsubscribe_url  # noqa: E402
from digest.web.tokens import SubscriberIndex, read_token  # noqa: E402
from tests.support.helpers import write_config  # noqa: E402
from tests.support.webtools import SECRET, bound_socket, running_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    secret = SECRET.encode()
    web = WebConfig(base_url="https://digest.example.org")
    ids = [f"2606.{i:05d}" for i in range(15)]

    n = 2000
    start = time.perf_counter()
    for i in range(n):
        email = f"reader{i}@example.org"
        unsubscribe_url(web, secret, email)
        digest_links(web, secret, email, "2026-06-12", ids)
    per_digest = (time.perf_counter() - start) / n
    print(f"links for one digest (15 papers, 32 tokens): {per_digest * 1e6:.0f} us")

    index = SubscriberIndex(secret, [f"reader{i}@example.org" for i in range(5000)])
    token = digest_links(web, secret, "reader7@example.org", "2026-06-12", ids).papers[ids[0]]
    raw = token.more.rsplit("/", 1)[1]
    start = time.perf_counter()
    for _ in range(20000):
        read_token(secret, raw, ("more", "less"), index)
    print(f"checking one token: {(time.perf_counter() - start) / 20000 * 1e6:.1f} us")

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DIGEST_WEB_SECRET"] = SECRET
        sock = bound_socket()
        port = sock.getsockname()[1]
        path = write_config(
            Path(tmp) / "digest.toml",
            sources=[{"type": "hf-papers", "url": "papers.html"}],
            subscribers=[{"email": "ada@example.org"}],
        )
        with path.open("a") as f:
            f.write(f'[web]\nbase_url = "http://127.0.0.1:{port}"\nlisten = "127.0.0.1:{port}"\n')
        config = load_config(path)
        with Store.open(config.digest.state) as store:
            store.record_papers([Paper(id=ids[0], title="A paper")], now=utc_now())
        links = digest_links(config.web, secret, "ada@example.org", "2026-06-12", ids)  # type: ignore[arg-type]
        more = links.papers[ids[0]].more
        limiter = RateLimiter(burst=10**9, per_second=10**9)
        with running_server(config, sock, limiter=limiter), httpx.Client() as client:
            for label, call in (
                ("GET /healthz", lambda: client.get(f"http://127.0.0.1:{port}/healthz")),
                ("GET feedback confirm page (reads the state)", lambda: client.get(more)),
                (
                    "POST feedback (writes the state)",
                    lambda: client.post(more, data={"confirm": "yes"}),
                ),
            ):
                call()
                start = time.perf_counter()
                for _ in range(args.requests):
                    assert call().status_code == 200
                took = time.perf_counter() - start
                print(
                    f"{label}: {args.requests / took:.0f} req/s, "
                    f"{took / args.requests * 1000:.2f} ms each"
                )


if __name__ == "__main__":
    main()
