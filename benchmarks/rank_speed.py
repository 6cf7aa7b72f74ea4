"""How long ranking takes: embedding a day, preparing a run, ranking many subscribers.

    python benchmarks/rank_speed.py [--data DIR] [--papers 180] [--subscribers 1000]

Uses the real papers of the relevance set and a fresh SQLite state in a temporary folder:
1. Ranker.for_run on a state that has no embeddings (embeds every paper once, stores them);
2. Ranker.for_run again (a later run: embeddings read back), with N subscribers' profiles
   compiled and embedded in one batch;
3. ranker.rank(papers, subscriber) for each of N subscribers (profiles made by mixing the
   set's ten reader profiles' keywords, so each one is different).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from relevance import load  # noqa: E402

from digest.config import Subscriber  # noqa: E402
from digest.rank import Ranker  # noqa: E402
from digest.rank.embed import THREADS, load_embedder  # noqa: E402
from digest.store import Store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=HERE / "relevance")
    parser.add_argument("--papers", type=int, default=180)
    parser.add_argument("--subscribers", type=int, default=1000)
    args = parser.parse_args()
    data = load(args.data)
    papers = list(data["papers"].values())[: args.papers]
    rng = random.Random(1)
    pool = sorted({k for p in data["profiles"] for k in p["keywords"]})
    subscribers = []
    for i in range(args.subscribers):
        base = data["profiles"][i % len(data["profiles"])]
        own = list(base["keywords"])
        keywords = rng.sample(own, k=max(1, len(own) - 1)) + rng.sample(pool, k=2)
        subscribers.append(
            Subscriber(
                email=f"reader{i}@example.org",
                keywords={k: float(rng.choice([1, 1, 2, 3])) for k in keywords},
                like=tuple(base.get("like", ()))[: i % 4],
            )
        )

    embedder = load_embedder()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "state.sqlite3")
        store.record_papers(papers, now=datetime(2026, 9, 1, tzinfo=UTC))
        started = time.perf_counter()
        Ranker.for_run(store, papers)
        first = time.perf_counter() - started
        print(
            f"first run: indexed and embedded {len(papers)} papers in {first:.1f}s "
            f"({embedder.calls} texts embedded, {THREADS} threads)"
        )
        calls = embedder.calls
        started = time.perf_counter()
        ranker = Ranker.for_run(store, papers, subscribers=subscribers)
        second = time.perf_counter() - started
        print(
            f"next run: prepared {len(papers)} papers and {len(subscribers)} profiles in "
            f"{second:.1f}s ({embedder.calls - calls} texts embedded: the profiles)"
        )
        feedback: dict[str, str] = {}
        started = time.perf_counter()
        kept = 0
        for sub in subscribers:
            kept += len(ranker.rank(papers, sub, feedback))
        total = time.perf_counter() - started
        print(
            f"ranked {len(papers)} papers for {len(subscribers)} subscribers in {total:.2f}s: "
            f"{1000 * total / len(subscribers):.2f} ms per subscriber "
            f"({kept / len(subscribers):.1f} papers kept on average)"
        )
        store.close()


if __name__ == "__main__":
    main()
