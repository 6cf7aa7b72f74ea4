"""Ranking quality on the hand-graded relevance set (benchmarks/relevance/).

    python benchmarks/relevance.py [--data DIR] [--tune]

For each method, each day and each reader profile: NDCG@10 (gain 2^grade - 1, ideal order
from that day's grades) and precision@10 (grade >= 1 counts). A profile's three liked papers
are dropped from its lists for every method, so "fused + likes" is not rewarded for finding
the papers it was given. Days where a profile has no relevant paper are left out of its NDCG
(no ranking can do better there). Methods:

    old        the previous digest/rank.py (benchmarks/baselines/old_rank.py)
    bm25       plain BM25 over title + abstract, lowercase words, no stemming or phrases
    lexical    digest.rank without the model (BM25F, stems, phrases, acronyms)
    semantic   digest.rank's semantic score alone (the profile's keywords embedded)
    fused      digest.rank as shipped
    fused+like fused, with the profile's three liked papers in its config `like`

`--tune` searches the fusion settings on the "tune" days only and prints the best ones; the
shipped defaults (digest/rank/fuse.py) came from it. Test days are never used to choose.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sys
import tempfile
import time
import tomllib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "baselines"))

import old_rank  # noqa: E402

from digest.config import Subscriber  # noqa: E402
from digest.models import Paper  # noqa: E402
from digest.rank import BM25F, DEFAULT_FUSION, FusionSettings, Ranker  # noqa: E402
from digest.rank.embed import load_embedder  # noqa: E402  (in this process: many rankers)
from digest.store import Store  # noqa: E402

K = 10


# --- data ------------------------------------------------------------------------------------


def load(data: Path) -> dict:  # type: ignore[type-arg]
    papers = {}
    for line in (data / "papers.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            p = json.loads(line)
            papers[p["id"]] = Paper(
                id=p["id"], title=p["title"], abstract=p["abstract"], authors=p.get("authors", [])
            )
    days = json.loads((data / "days.json").read_text(encoding="utf-8"))
    split = json.loads((data / "split.json").read_text(encoding="utf-8"))
    profiles = tomllib.loads((data / "profiles.toml").read_text(encoding="utf-8"))["profile"]
    grades: dict[str, dict[str, int]] = defaultdict(dict)
    for line in (data / "grades.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        if line.strip():
            name, pid, grade = line.split("\t")
            grades[name][pid] = int(grade)
    return {"papers": papers, "days": days, "split": split, "profiles": profiles, "grades": grades}


def subscriber(profile: dict, *, likes: bool) -> Subscriber:  # type: ignore[type-arg]
    keywords = profile["keywords"]
    if isinstance(keywords, list):
        keywords = {k: 1.0 for k in keywords}
    return Subscriber(
        email=f"{profile['name']}@example.org",
        keywords={k: float(v) for k, v in keywords.items()},
        exclude=tuple(profile.get("exclude", ())),
        like=tuple(profile.get("like", ())) if likes else (),
        max_papers=1000,
        min_score=0.0,
    )


# --- metrics ---------------------------------------------------------------------------------


def ndcg(ranked: Sequence[str], grades: dict[str, int], pool: Sequence[str]) -> float | None:
    ideal = sorted((grades.get(p, 0) for p in pool), reverse=True)[:K]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    if idcg == 0:
        return None
    dcg = sum((2 ** grades.get(p, 0) - 1) / math.log2(i + 2) for i, p in enumerate(ranked[:K]))
    return dcg / idcg


def precision(ranked: Sequence[str], grades: dict[str, int]) -> float:
    return sum(1 for p in ranked[:K] if grades.get(p, 0) >= 1) / K


# --- methods ---------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")


class PlainBM25:
    def __init__(self, papers: Sequence[Paper], k1: float = 1.2, b: float = 0.75) -> None:
        self.docs = {
            p.id: Counter(_WORD.findall(f"{p.title} {p.abstract}".lower())) for p in papers
        }
        self.lengths = {pid: sum(c.values()) for pid, c in self.docs.items()}
        self.avg = sum(self.lengths.values()) / max(len(self.lengths), 1)
        df: Counter[str] = Counter()
        for c in self.docs.values():
            df.update(c.keys())
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - d + 0.5) / (d + 0.5)) for w, d in df.items()}
        self.k1, self.b = k1, b

    def rank(self, ids: Sequence[str], keywords: dict[str, float]) -> list[str]:
        query = [w for k in keywords for w in _WORD.findall(k.lower())]

        def score(pid: str) -> float:
            c, length = self.docs[pid], self.lengths[pid]
            total = 0.0
            for w in query:
                tf = c.get(w, 0)
                if tf:
                    norm = (
                        tf
                        * (self.k1 + 1)
                        / (tf + self.k1 * (1 - self.b + self.b * length / self.avg))
                    )
                    total += self.idf[w] * norm
            return total

        return sorted(ids, key=lambda pid: (-score(pid), pid))


def ranker_order(ranker: Ranker, papers: Sequence[Paper], sub: Subscriber) -> list[str]:
    return [x.paper.id for x in ranker.score(papers, sub).ranked]


def evaluate(
    data: dict,  # type: ignore[type-arg]
    methods: dict[str, Callable[[dict, list[Paper]], list[str]]],  # type: ignore[type-arg]
    days: Sequence[str],
) -> dict[str, dict[tuple[str, str], tuple[float | None, float]]]:
    """method -> (profile, day) -> (ndcg, precision)."""
    out: dict[str, dict[tuple[str, str], tuple[float | None, float]]] = {m: {} for m in methods}
    for day in days:
        for profile in data["profiles"]:
            liked = set(profile.get("like", ()))
            pool = [data["papers"][pid] for pid in data["days"][day] if pid not in liked]
            grades = data["grades"][profile["name"]]
            ids = [p.id for p in pool]
            for name, method in methods.items():
                ranked = method(profile, pool)
                out[name][(profile["name"], day)] = (
                    ndcg(ranked, grades, ids),
                    precision(ranked, grades),
                )
    return out


def mean(values: Sequence[float | None]) -> float:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else float("nan")


# --- main ------------------------------------------------------------------------------------


def build(data: dict, cache: Path) -> tuple[Store, Ranker, Ranker, PlainBM25]:  # type: ignore[type-arg]
    """A store holding every paper (IDF over the store, embeddings stored and reused)."""
    store = Store.open(cache)
    store.record_papers(data["papers"].values(), now=datetime(2026, 9, 1, tzinfo=UTC))
    started = time.perf_counter()
    model = Ranker.for_run(store, list(data["papers"].values()), embedder=load_embedder())
    print(f"prepared the fused ranker in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    lexical = Ranker.for_run(store, list(data["papers"].values()), embedder=None)
    return store, model, lexical, PlainBM25(list(data["papers"].values()))


def methods_for(
    model: Ranker, lexical: Ranker, bm25: PlainBM25, settings: FusionSettings
) -> dict[str, Callable]:  # type: ignore[type-arg]
    semantic = replace(settings, lexical_weight=0.0)

    def old(profile: dict, pool: list[Paper]) -> list[str]:  # type: ignore[type-arg]
        sub = subscriber(profile, likes=False)
        return [r.paper.id for r in old_rank.rank_papers(pool, sub, limit=len(pool))]

    def with_settings(ranker: Ranker, s: FusionSettings, likes: bool) -> Callable:  # type: ignore[type-arg]
        def run(profile: dict, pool: list[Paper]) -> list[str]:  # type: ignore[type-arg]
            ranker.settings = s
            return ranker_order(ranker, pool, subscriber(profile, likes=likes))

        return run

    return {
        "old": old,
        "bm25": lambda profile, pool: bm25.rank(
            [p.id for p in pool], subscriber(profile, likes=False).keywords
        ),  # type: ignore[arg-type]
        "lexical": with_settings(lexical, settings, False),
        "semantic": with_settings(model, semantic, False),
        "fused": with_settings(model, settings, False),
        "fused+like": with_settings(model, settings, True),
    }


def report(data: dict, results: dict) -> None:  # type: ignore[type-arg]
    days = list(data["days"])
    tune, test = data["split"]["tune"], data["split"]["test"]
    short = {d: f"d{i + 1}" for i, d in enumerate(days)}
    print("days: " + ", ".join(f"{short[d]}={d} ({'tune' if d in tune else 'test'})" for d in days))
    header = f"{'method':<11}" + "".join(f"{short[d]:>7}" for d in days)
    header += f"{'tune':>7}{'test':>7}{'all':>7}"
    for metric, index in (("NDCG@10", 0), ("P@10", 1)):
        print(f"\n{metric}, mean over profiles (per day; tune, test and all days)")
        print(header)
        for name, res in results.items():
            row = f"{name:<11}"
            for d in days:
                row += f"{mean([v[index] for (p, day), v in res.items() if day == d]):7.3f}"
            for group in (tune, test, days):
                row += f"{mean([v[index] for (p, day), v in res.items() if day in group]):7.3f}"
            print(row)
    profiles = [p["name"] for p in data["profiles"]]
    print("\nper profile, all days: NDCG@10 / P@10")
    print(f"{'method':<11}" + "".join(f"{p[:13]:>14}" for p in profiles))
    for name, res in results.items():
        row = f"{name:<11}"
        for p in profiles:
            n = mean([v[0] for (q, _), v in res.items() if q == p])
            pr = mean([v[1] for (q, _), v in res.items() if q == p])
            row += f"{n:>8.3f}/{pr:.2f}"
        print(row)


def tune(data: dict, store: Store) -> tuple[Ranker, FusionSettings]:  # type: ignore[type-arg]
    """The best phrase partial credit and fusion settings on the tune days, then the best
    like settings given those."""
    days = data["split"]["tune"]
    papers = list(data["papers"].values())
    best: tuple[float, FusionSettings, Ranker] | None = None
    for partial in (0.3, 0.6, 1.0):
        model = Ranker.for_run(
            store, papers, embedder=load_embedder(), bm25f=BM25F(partial=partial)
        )
        found = _tune_fusion(data, model, days)
        print(f"tune days, partial {partial}: NDCG@10 {found[0]:.4f}", file=sys.stderr)
        if best is None or found[0] > best[0] + 1e-9:
            best = (*found, model)
    assert best is not None
    _, s, model = best
    print(
        f"tune days, fused: NDCG@10 {best[0]:.4f} with {s}, {model.index.params}", file=sys.stderr
    )
    best_like: tuple[float, FusionSettings] | None = None
    for rocchio, lw, lf in itertools.product(
        [0.0, 0.25, 0.5, 1.0], [0.0, 0.15, 0.3, 0.5], [0.3, 0.4, 0.5]
    ):
        sl = replace(s, rocchio=rocchio, like_weight=lw, like_floor=lf, like_ceiling=lf + 0.4)
        res = evaluate(data, {"f": lambda pr, pool, sl=sl: _order(model, sl, pr, pool, True)}, days)
        score = mean([v[0] for v in res["f"].values()])
        if best_like is None or score > best_like[0] + 1e-9:
            best_like = (score, sl)
    assert best_like is not None
    print(f"tune days, fused+like: NDCG@10 {best_like[0]:.4f} with {best_like[1]}", file=sys.stderr)
    return model, best_like[1]


def _tune_fusion(data: dict, model: Ranker, days: list[str]) -> tuple[float, FusionSettings]:  # type: ignore[type-arg]
    best: tuple[float, FusionSettings] | None = None
    grid = itertools.product(
        [0.3, 0.4, 0.5, 0.6],  # lexical_weight
        [1.0, 2.0, 4.0],  # lexical_scale
        [0.1, 0.15, 0.2],  # semantic_floor
        [0.45, 0.55, 0.65],  # semantic_ceiling
    )
    for lw, ls, sf, sc in grid:
        s = replace(
            DEFAULT_FUSION,
            lexical_weight=lw,
            lexical_scale=ls,
            semantic_floor=sf,
            semantic_ceiling=sc,
        )
        res = evaluate(data, {"f": lambda pr, pool, s=s: _order(model, s, pr, pool, False)}, days)
        score = mean([v[0] for v in res["f"].values()])
        if best is None or score > best[0] + 1e-9:
            best = (score, s)
    assert best is not None
    return best


def _order(
    model: Ranker, s: FusionSettings, profile: dict, pool: list[Paper], likes: bool
) -> list[str]:  # type: ignore[type-arg]
    model.settings = s
    return ranker_order(model, pool, subscriber(profile, likes=likes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=HERE / "relevance", help="the labelled set")
    parser.add_argument("--cache", type=Path, help="state file keeping the embeddings between runs")
    parser.add_argument("--tune", action="store_true", help="choose fusion settings on tune days")
    args = parser.parse_args()
    data = load(args.data)
    cache = args.cache or Path(tempfile.gettempdir()) / "digest-relevance.sqlite3"
    store, model, lexical, bm25 = build(data, cache)
    settings = DEFAULT_FUSION
    if args.tune:
        model, settings = tune(data, store)
        lexical = Ranker.for_run(
            store, list(data["papers"].values()), embedder=None, bm25f=model.index.params
        )
    results = evaluate(data, methods_for(model, lexical, bm25, settings), list(data["days"]))
    report(data, results)


if __name__ == "__main__":
    main()
