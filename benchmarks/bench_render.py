#!/usr/bin/env python3
"""Measure rendering: milliseconds per digest of 15 papers, first render and cached.

    .venv/bin/python benchmarks/bench_render.py [--papers 15] [--digests 200]

"first" is a fresh Renderer rendering one digest (templates loaded, CSS inlined, nothing
cached); "cached" is the mean over --digests digests rendered by one Renderer for readers who
get overlapping papers in different orders (a run's steady state). "wire bytes" is build_wire
alone on those rendered digests; "build_mail" is what a render worker does per digest (render
with its cached Renderer, then build_wire). Each is the median of 3 rounds (the machine is
shared). Real HF fixture papers, with reasons. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.models import DigestContent, Paper, RankedPaper, Reason  # noqa: E402
from digest.sources.hf_items import papers_from_items  # noqa: E402
from tests.support.helpers import hf_items  # noqa: E402

TERMS = ["language model", "agents", "reasoning", "diffusion", "video", "benchmark"]


def day_papers() -> list[Paper]:
    items = hf_items() + hf_items("hf_api_daily_papers_date-2026-08-19_newsletter-chinese.json")
    papers, _ = papers_from_items(items, "hf-api")
    return papers


def content_for(papers: list[Paper], rng: random.Random, n: int) -> DigestContent:
    chosen = rng.sample(papers, n)
    ranked = []
    for i, p in enumerate(chosen):
        terms = [t for t in TERMS if t in (p.title + " " + p.abstract).lower()][:2]
        reasons = [Reason("term", f"abstract: {t}", terms=(t,), where="abstract") for t in terms]
        ranked.append(RankedPaper(p, 10.0 - i, matched=terms, reasons=reasons))
    return DigestContent(
        subscriber_email=f"reader{rng.randrange(10**6)}@example.org",
        subscriber_name="Ada",
        digest_date=date(2026, 6, 12),
        papers=ranked,
        candidates_count=len(papers),
        unsubscribe_mailto="digest@example.org",
        profile=[("language model", 3.0), ("agents", 2.0), ("reasoning", 1.0)],
        trending=papers[:3],
    )


def median_ms(work, count: int) -> float:  # type: ignore[no-untyped-def]
    """The median of 3 rounds of work(), in milliseconds per item."""
    rounds = []
    for _ in range(3):
        t0 = time.perf_counter()
        work()
        rounds.append((time.perf_counter() - t0) * 1000 / count)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=15)
    parser.add_argument("--digests", type=int, default=200)
    args = parser.parse_args()
    papers = day_papers()
    rng = random.Random(7)
    contents = [content_for(papers, rng, args.papers) for _ in range(args.digests)]

    try:  # the Renderer; before it existed, render_digest did everything per call
        from digest.render import Renderer

        def fresh():  # type: ignore[no-untyped-def]
            return Renderer().render
    except ImportError:
        from digest.render import render_digest

        def fresh():  # type: ignore[no-untyped-def]
            return render_digest

    firsts = []
    for c in contents[:5]:
        t0 = time.perf_counter()
        fresh()(c)
        firsts.append((time.perf_counter() - t0) * 1000)

    render = fresh()
    render(contents[0])
    rounds = []
    for _ in range(3):  # the machine is shared: the median of 3 rounds
        t0 = time.perf_counter()
        rendered = [render(c) for c in contents]
        rounds.append((time.perf_counter() - t0) * 1000 / len(contents))
    cached = statistics.median(rounds)

    wire = build = None
    try:
        from digest.mailbuild import MailHeaders, build_mail
        from digest.message import build_wire

        when = datetime(2026, 6, 12, 7, tzinfo=UTC)
        args_for = [
            {
                "from_addr": "Paper Digest <digest@example.org>",
                "to_addr": c.subscriber_email,
                "to_name": c.subscriber_name,
                "message_id": "<x.1@example.org>",
                "date": when,
                "unsubscribe_mailto": "digest@example.org",
            }
            for c in contents
        ]
        wire = median_ms(
            lambda: [build_wire(r, **a) for r, a in zip(rendered, args_for, strict=True)],
            len(contents),
        )
        headers = [MailHeaders(**a) for a in args_for]  # type: ignore[arg-type]
        build = median_ms(
            lambda: [build_mail(c, h) for c, h in zip(contents, headers, strict=True)],
            len(contents),
        )
    except ImportError:
        pass

    size = statistics.mean(len(r.html.encode()) for r in rendered)
    print(f"{args.papers} papers per digest, {len(contents)} digests")
    print(f"first (fresh renderer): {statistics.median(firsts):.1f} ms per digest (median of 5)")
    print(f"cached (one renderer):  {cached:.2f} ms per digest (median of 3 rounds)")
    if wire is not None:
        print(f"wire bytes:             {wire:.2f} ms per message (median of 3 rounds)")
    if build is not None:
        print(f"build_mail:             {build:.2f} ms per digest (median of 3 rounds)")
    print(f"HTML size:              {size / 1024:.1f} KiB mean")


if __name__ == "__main__":
    main()
