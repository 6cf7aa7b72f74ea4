#!/usr/bin/env python3
"""Measure a whole `send-now` run: time and peak memory, outbox delivery, local page.

    .venv/bin/python benchmarks/bench_run.py [--papers 300] [--subscribers 500]

Builds an HF Daily Papers page with N papers (real items from the fixtures, repeated under new
ids), a config with M subscribers with keyword profiles, and runs the pipeline once into a
temporary folder. Prints seconds per phase and the peak RSS. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import copy
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.config import load_config  # noqa: E402
from digest.run import RunOptions, send_now  # noqa: E402
from tests.support.helpers import hf_items, hf_page, write_config  # noqa: E402

PROFILES = [
    {"language model": 3, "LLM": 3, "agent": 2},
    {"diffusion": 3, "image generation": 2, "video": 1},
    {"reinforcement learning": 3, "reasoning": 2},
    {"graph neural network": 3, "GNN": 3},
    {},
]


def build_items(n: int) -> list[dict]:
    base = hf_items() + hf_items("hf_api_daily_papers_date-2026-08-19_newsletter-chinese.json")
    items = []
    for i in range(n):
        item = copy.deepcopy(base[i % len(base)])
        item["paper"]["id"] = f"2699.{i:05d}"
        items.append(item)
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=300)
    parser.add_argument("--subscribers", type=int, default=500)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        (root / "papers.html").write_text(hf_page(build_items(args.papers)), encoding="utf-8")
        subs = [
            {"email": f"user{i}@example.org", "keywords": PROFILES[i % len(PROFILES)]}
            for i in range(args.subscribers)
        ]
        config = load_config(
            write_config(
                root / "digest.toml",
                sources=[{"type": "hf-papers", "url": "papers.html"}],
                subscribers=subs,
            )
        )
        page_kb = (root / "papers.html").stat().st_size / 1024
        t1 = time.perf_counter()
        report = send_now(config, RunOptions())
        t2 = time.perf_counter()
        again = send_now(config, RunOptions())
        t3 = time.perf_counter()
        sent = sum(1 for s in report.subscribers if s.status == "sent")
        eml = list((root / "outbox").glob("*.eml"))
        biggest = max((p.stat().st_size for p in eml), default=0) / 1024

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"papers={args.papers} subscribers={args.subscribers} page={page_kb:.0f} KiB")
    print(f"setup (build page + config): {t1 - t0:.2f} s")
    print(
        f"first run (fetch, record, rank, render, write {sent} digests): {t2 - t1:.2f} s "
        f"= {1000 * (t2 - t1) / max(sent, 1):.1f} ms per digest"
    )
    print(f"second run (same date: nothing to send): {t3 - t2:.2f} s")
    print(f"largest .eml: {biggest:.0f} KiB; exit codes {report.exit_code}, {again.exit_code}")
    print(f"peak RSS: {peak_mb:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
