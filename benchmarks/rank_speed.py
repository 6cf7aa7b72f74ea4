"""How long ranking takes: embedding a day, preparing a run, ranking many subscribers, and
training the readers' own models.

    python benchmarks/rank_speed.py [--data DIR] [--papers 180] [--subscribers 1000]
                                    [--readers 10000] [--thumbs 20]

Uses the real papers of the relevance set and a fresh SQLite state in a temporary folder:
1. Ranker.for_run on a state that has no embeddings (embeds every paper once, stores them);
2. Ranker.for_run again (a later run: embeddings read back), with N subscribers' profiles
   compiled and embedded in one batch;
3. ranker.rank(papers, subscriber) for each of N subscribers (profiles made by mixing the
   set's ten reader profiles' keywords, so each one is different; without thumbs);
4. training the models of --readers readers with --thumbs thumbs each (half likes), from
   scratch, as after a change of embedding model (a run trains only the readers whose thumbs
   changed), and the same with the most thumbs a model keeps.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from relevance import load  # noqa: E402

from digest.config import Subscriber  # noqa: E402
from digest.rank import Ranker, start_model_process  # noqa: E402
from digest.rank.reader_model import (  # noqa: E402
    MAX_DISLIKED,
    MAX_LIKED,
    Thumbs,
    example,
    reader_seed,
    train,
)
from digest.store import Store  # noqa: E402


def subscribers_for(data: dict, count: int) -> list[Subscriber]:  # type: ignore[type-arg]
    rng = random.Random(1)
    pool = sorted({k for p in data["profiles"] for k in p["keywords"]})
    out = []
    for i in range(count):
        base = data["profiles"][i % len(data["profiles"])]
        own = list(base["keywords"])
        keywords = rng.sample(own, k=max(1, len(own) - 1)) + rng.sample(pool, k=2)
        out.append(
            Subscriber(
                email=f"reader{i}@example.org",
                keywords={k: float(rng.choice([1, 1, 2, 3])) for k in keywords},
                like=tuple(base.get("like", ()))[: i % 4],
            )
        )
    return out


def training(matrix: np.ndarray, readers: int, liked: int, disliked: int) -> float:
    """Seconds to train `readers` models of these many thumbs (papers drawn from `matrix`)."""
    rng = np.random.default_rng(0)
    thumbs = Thumbs(tuple(f"l{i}" for i in range(liked)), tuple(f"d{i}" for i in range(disliked)))
    started = time.perf_counter()
    examples = []
    for i in range(readers):
        email = f"reader{i}@example.org"
        rows = rng.choice(
            len(matrix), size=liked + disliked, replace=liked + disliked > len(matrix)
        )
        examples.append(
            example(
                thumbs,
                matrix[rows[:liked]],
                matrix[rows[liked:]],
                matrix,
                fingerprint=thumbs.fingerprint("m"),
                seed=reader_seed(email),
            )
        )
    train(examples)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=HERE / "relevance")
    parser.add_argument("--papers", type=int, default=180)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--thumbs", type=int, default=20)
    args = parser.parse_args()
    data = load(args.data)
    papers = list(data["papers"].values())[: args.papers]
    subscribers = subscribers_for(data, args.subscribers)
    model = start_model_process()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "state.sqlite3")
        store.record_papers(papers, now=datetime(2026, 9, 1, tzinfo=UTC))
        started = time.perf_counter()
        Ranker.for_run(store, papers, model=model).close()
        first = time.perf_counter() - started
        print(f"first run: indexed and embedded {len(papers)} papers in {first:.1f}s")
        started = time.perf_counter()
        ranker = Ranker.for_run(store, papers, model=model, subscribers=subscribers)
        second = time.perf_counter() - started
        print(
            f"next run: prepared {len(papers)} papers and {len(subscribers)} profiles in "
            f"{second:.1f}s (the profiles embedded in the background)"
        )
        started = time.perf_counter()
        kept = 0
        for sub in subscribers:
            kept += len(ranker.rank(papers, sub, {}))
        total = time.perf_counter() - started
        print(
            f"ranked {len(papers)} papers for {len(subscribers)} subscribers in {total:.2f}s: "
            f"{1000 * total / len(subscribers):.2f} ms per subscriber "
            f"({kept / len(subscribers):.1f} papers kept on average)"
        )
        matrix = ranker.corpus.matrix
        ranker.close()
        store.close()
    model.close()
    half = args.thumbs // 2
    for liked, disliked in ((args.thumbs - half, half), (MAX_LIKED, MAX_DISLIKED)):
        seconds = training(matrix, args.readers, liked, disliked)
        print(
            f"trained {args.readers} readers' models of {liked + disliked} thumbs "
            f"in {seconds:.1f}s ({1000 * seconds / args.readers:.2f} ms a reader)"
        )


if __name__ == "__main__":
    main()
