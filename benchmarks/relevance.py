"""Ranking quality on the hand-graded relevance set (benchmarks/relevance/).

    python benchmarks/relevance.py [--data DIR] [--calibrate] [--thumbs]

For each method, on the tune and the test days (benchmarks/relevance/split.json), mean over
(profile, day):
    NDCG@10   the ranking of the whole day (gain 2^grade - 1; days where a profile has no
              relevant paper are left out)
and over what is sent (max_papers 15, min_score 0.3, the defaults), pooled over (profile, day):
    P         precision: papers graded >= 1 among those sent
    R2        recall of the highly relevant: papers graded 2 that were sent, of all graded 2
    sent      how many papers were sent
A profile's three liked papers are dropped from its lists for every method (they would find
themselves). Methods:

    bm25       plain BM25 over title + abstract, lowercase words, no stemming or phrases
    lexical    digest.rank without the model (BM25F, stems, phrases, acronyms)
    semantic   the meaning parts alone (the keywords embedded together, and one by one
               against the titles; standardised per profile and per keyword)
    fused      digest.rank as shipped, keywords only
    fused+like fused, with the profile's three liked papers in its config `like`

The frontier: for `fused` and `fused+like`, the precision of what is sent at the highest
min_score that still sends 90% of the papers graded 2 (one min_score for every reader, pooled over
the group's (profile, day)s, max_papers 15): what the features allow whatever the threshold. On
the test days it is chosen with the test grades: a measure of the features, not a setting.

--calibrate fits the score's weights (digest/rank/calibrate.py) by logistic regression on the
tune days only and prints them. --thumbs prints the thumbs curve: simulated thumbs on the
papers a reader was shown before, best first as the ranker (without thumbs) orders them, a like
for a paper graded >= 1, a dislike for one graded 0; then NDCG@10, P and R2 on the evaluated
days, for 0, 5, 10, 20 and 50 thumbs. The papers shown before: for a test day, those of both
tune days and the papers on no day; for a tune day, those of the other tune day and the papers
on no day (no test day's grade is used on the tune side).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import tomllib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from digest.config import Subscriber  # noqa: E402
from digest.models import Paper  # noqa: E402
from digest.rank import Ranker  # noqa: E402
from digest.rank.calibrate import KEYWORDS_ONLY, WITH_MODEL, Calibration  # noqa: E402
from digest.rank.embed import Embedder  # noqa: E402  (in this process: many rankers)
from digest.store import Store  # noqa: E402

K = 10
MAX_PAPERS, MIN_SCORE = 15, 0.3
THUMBS = (0, 5, 10, 20, 50)
Data = dict  # type: ignore[type-arg]
Method = Callable[[dict, list[Paper], dict[str, str]], list[tuple[str, float]]]  # type: ignore[type-arg]


# --- data ------------------------------------------------------------------------------------


def load(data: Path) -> Data:
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


def mean(values: Sequence[float | None]) -> float:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else float("nan")


def evaluate(
    data: Data,
    method: Method,
    days: Sequence[str],
    thumbs: Callable[[dict, str], dict[str, str]] = lambda profile, day: {},  # type: ignore[type-arg]
) -> dict[str, float]:
    """NDCG@10 (mean), P, R2 and sent (pooled) of one method over these days; `thumbs` gives a
    profile's feedback before a day."""
    ndcgs: list[float | None] = []
    sent = relevant = found2 = total2 = 0
    for day in days:
        for profile in data["profiles"]:
            feedback = thumbs(profile, day)
            liked = set(profile.get("like", ())) | set(feedback)
            pool = [data["papers"][p] for p in data["days"][day] if p not in liked]
            grades = data["grades"][profile["name"]]
            scored = method(profile, pool, feedback)
            ranked = [pid for pid, _ in scored]
            ndcgs.append(ndcg(ranked, grades, [p.id for p in pool]))
            out = [pid for pid, passes in scored if passes][:MAX_PAPERS]
            sent += len(out)
            relevant += sum(1 for p in out if grades.get(p, 0) >= 1)
            found2 += sum(1 for p in out if grades.get(p, 0) == 2)
            total2 += sum(1 for p in pool if grades.get(p.id, 0) == 2)
    return {
        "ndcg": mean(ndcgs),
        "p": relevant / sent if sent else float("nan"),
        "r2": found2 / total2 if total2 else float("nan"),
        "sent": sent,
    }


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

    def score(self, pid: str, query: list[str]) -> float:
        c, length = self.docs[pid], self.lengths[pid]
        total = 0.0
        for w in query:
            tf = c.get(w, 0)
            if tf:
                norm = self.k1 * (1 - self.b + self.b * length / self.avg)
                total += self.idf[w] * tf * (self.k1 + 1) / (tf + norm)
        return total

    def rank(self, ids: Sequence[str], keywords: dict[str, float]) -> list[tuple[str, bool]]:
        query = [w for k in keywords for w in _WORD.findall(k.lower())]
        scores = {pid: self.score(pid, query) for pid in ids}
        # No cut of its own: its P and R2 are those of sending nothing.
        return [(pid, False) for pid in sorted(ids, key=lambda pid: (-scores[pid], pid))]


def ranked_by(ranker: Ranker, calibration: Calibration, likes: bool) -> Method:
    """The ranker's order of a day, and whether each paper makes the default cut."""

    def run(profile: dict, pool: list[Paper], feedback: dict[str, str]) -> list[tuple[str, bool]]:  # type: ignore[type-arg]
        ranker.calibration = calibration
        sub = replace(subscriber(profile, likes=likes), min_score=MIN_SCORE)
        scoring = ranker.score(pool, sub, feedback)
        kept = {x.paper.id for x in scoring.ranked[: scoring.kept]}
        # NDCG ranks the whole day: by score (the cut's order puts the kept ones first).
        everything = sorted(
            (x for x in scoring.ranked if not x.excluded), key=lambda x: (-x.score, x.paper.id)
        )
        return [(x.paper.id, x.paper.id in kept) for x in everything]

    return run


def build(data: Data, cache: Path) -> tuple[Store, Ranker, Ranker]:
    """A store holding every paper (IDF over the store, embeddings stored and reused)."""
    store = Store.open(cache)
    store.record_papers(data["papers"].values(), now=datetime(2026, 9, 1, tzinfo=UTC))
    papers = list(data["papers"].values())
    model = Ranker.for_run(store, papers, model=Embedder())
    lexical = Ranker.for_run(store, papers, model=None, calibration=KEYWORDS_ONLY)
    return store, model, lexical


def methods(data: Data, model: Ranker, lexical: Ranker, c: Calibration) -> dict[str, Method]:
    bm25 = PlainBM25(list(data["papers"].values()))
    meaning_only = replace(c, words=0.0)
    return {
        "bm25": lambda profile, pool, fb: bm25.rank(
            [p.id for p in pool], subscriber(profile, likes=False).keywords
        ),
        "lexical": ranked_by(lexical, KEYWORDS_ONLY, False),
        "semantic": ranked_by(model, meaning_only, False),
        "fused": ranked_by(model, c, False),
        "fused+like": ranked_by(model, c, True),
    }


def frontier(
    data: Data,
    ranker: Ranker,
    c: Calibration,
    likes: bool,
    days: Sequence[str],
    target: float = 0.9,
) -> tuple[float, float, int]:
    """(precision, min_score, sent) at the highest min_score whose cut sends at least `target` of
    the papers graded 2 on these days (nan when no min_score does)."""
    ranker.calibration = c
    lists: list[list[tuple[float, int]]] = []  # per (profile, day): (score, grade), best first
    total2 = 0
    for day in days:
        for profile in data["profiles"]:
            liked = set(profile.get("like", ()))
            pool = [data["papers"][p] for p in data["days"][day] if p not in liked]
            grades = data["grades"][profile["name"]]
            sub = replace(subscriber(profile, likes=likes), min_score=0.0)
            scoring = ranker.score(pool, sub)
            ordered = sorted(scoring.ranked[: scoring.kept], key=lambda x: -x.score)
            lists.append([(x.score, grades.get(x.paper.id, 0)) for x in ordered])
            total2 += sum(1 for p in pool if grades.get(p.id, 0) == 2)
    for cut in sorted({s for found in lists for s, _ in found}, reverse=True):
        sent = [[g for s, g in found if s >= cut][:MAX_PAPERS] for found in lists]
        if sum(g == 2 for out in sent for g in out) >= target * total2:
            count = sum(len(out) for out in sent)
            return sum(g >= 1 for out in sent for g in out) / count, cut, count
    return float("nan"), float("nan"), 0


def report(data: Data, found: dict[str, dict[str, dict[str, float]]]) -> None:
    print(
        f"{'method':<12}"
        + "".join(
            f"{g + ':':<6}{'NDCG@10':>8}{'P':>7}{'R2':>7}{'sent':>6}   " for g in ("tune", "test")
        )
    )
    for name, groups in found.items():
        row = f"{name:<12}"
        for g in ("tune", "test"):
            r = groups[g]
            row += f"{'':<6}{r['ndcg']:8.3f}{r['p']:7.3f}{r['r2']:7.3f}{r['sent']:6d}   "
        print(row)


# --- calibration -----------------------------------------------------------------------------


def logistic(x: np.ndarray, y: np.ndarray, offset: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    """Weights (the last is the bias) of an L2 logistic regression, by Newton's method."""
    x = np.c_[x, np.ones(len(x))]
    w = np.zeros(x.shape[1])
    reg = l2 * np.r_[np.ones(x.shape[1] - 1), 0.0]
    for _ in range(50):
        p = 1 / (1 + np.exp(-(x @ w + offset)))
        grad = x.T @ (p - y) / len(y) + reg * w
        hess = (x.T * (p * (1 - p))) @ x / len(y) + np.diag(reg) + 1e-9 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def pairs(
    data: Data,
    ranker: Ranker,
    days: Sequence[str],
    thumbs: Callable[[dict, str], dict[str, str]],  # type: ignore[type-arg]
) -> tuple[list[dict[str, float]], np.ndarray]:
    """Each (profile, day's paper)'s parts, and whether it is graded relevant."""
    rows, labels = [], []
    for day in days:
        for profile in data["profiles"]:
            feedback = thumbs(profile, day)
            liked = set(profile.get("like", ())) | set(feedback)
            pool = [data["papers"][p] for p in data["days"][day] if p not in liked]
            grades = data["grades"][profile["name"]]
            for x in ranker.score(pool, subscriber(profile, likes=False), feedback).ranked:
                if not x.excluded:
                    rows.append(x.parts)
                    labels.append(float(grades.get(x.paper.id, 0) >= 1))
    return rows, np.array(labels)


def calibrate(data: Data, model: Ranker, lexical: Ranker) -> tuple[Calibration, Calibration]:
    """The weights, fitted on the tune days only: first the keywords' (meaning, words) without
    thumbs, then, with those fixed, the thumbs' (likes, dislikes, reader) with thumbs drawn from
    the other tune day and the papers on no day (no test day's grade is used)."""
    tune = data["split"]["tune"]

    def none(profile: dict, day: str) -> dict[str, str]:  # type: ignore[type-arg]
        return {}

    rows, y = pairs(data, model, tune, none)
    x = np.array([[r["meaning"], r.get("keyword", 0.0), r["words"]] for r in rows])
    w = logistic(x, y, np.zeros(len(y)))
    base = replace(model.calibration, meaning=w[0], keyword=w[1], words=w[2], bias=w[3])
    rows, y = pairs(data, lexical, tune, none)
    wl = logistic(np.array([[r["words"]] for r in rows]), y, np.zeros(len(y)))
    keywords = replace(KEYWORDS_ONLY, words=wl[0], bias=wl[1])

    def cross(profile: dict, day: str) -> dict[str, str]:  # type: ignore[type-arg]
        return simulated_thumbs(data, model, base, profile, shown_before(data, "tune", day), 20)

    rows, y = pairs(data, model, tune, cross)
    offset = np.array(
        [
            base.bias
            + base.meaning * r["meaning"]
            + base.keyword * r.get("keyword", 0.0)
            + base.words * r["words"]
            for r in rows
        ]
    )
    x = np.array(
        [
            [
                r.get("likes", 0.0),
                -r.get("dislikes", 0.0),
                r.get("reader", 0.0),
            ]
            for r in rows
        ]
    )
    wt = logistic(x, y, offset)
    return replace(base, likes=wt[0], dislikes=wt[1], reader=wt[2]), keywords


# --- thumbs ----------------------------------------------------------------------------------


def simulated_thumbs(
    data: Data,
    ranker: Ranker,
    c: Calibration,
    profile: dict,  # type: ignore[type-arg]
    days: Sequence[str],
    count: int,
) -> dict[str, str]:
    """Thumbs on the `count` papers a reader was shown first, best first by the keyword
    ranking, among the papers on `days` and those on no day; the profile's likes left out."""
    if not count:
        return {}
    on_days = {p for ids in data["days"].values() for p in ids}
    shown = {p for d in days for p in data["days"][d]} | (set(data["papers"]) - on_days)
    shown -= set(profile.get("like", ()))
    ranker.calibration = c
    scoring = ranker.score(
        [data["papers"][p] for p in sorted(shown)], subscriber(profile, likes=False)
    )
    order = sorted(scoring.ranked, key=lambda x: (-x.score, x.paper.id))[:count]
    grades = data["grades"][profile["name"]]
    return {x.paper.id: "like" if grades.get(x.paper.id, 0) >= 1 else "dislike" for x in order}


def shown_before(data: Data, group: str, day: str) -> list[str]:
    """The days whose papers a reader was shown before `day` (see the module's docstring)."""
    if group == "tune":  # no test day's grade is used on the tune side
        return [d for d in data["split"]["tune"] if d != day]
    return [d for d in data["days"] if d not in data["split"]["test"]]


def thumbs_curve(data: Data, model: Ranker, c: Calibration) -> None:
    print("\nthumbs curve: NDCG@10 / P / R2 (sent) on the evaluated days")
    for group in ("tune", "test"):
        before = "the other tune day" if group == "tune" else "both tune days"
        print(f"  {group} (thumbs on the papers of {before} and those on no day):")
        for count in THUMBS:
            given = {
                (p["name"], day): simulated_thumbs(
                    data, model, c, p, shown_before(data, group, day), count
                )
                for p in data["profiles"]
                for day in data["split"][group]
            }
            r = evaluate(
                data,
                ranked_by(model, c, False),
                data["split"][group],
                lambda p, day, g=given: g[p["name"], day],  # type: ignore[misc]
            )
            shown = f"{r['ndcg']:.3f} / {r['p']:.3f} / {r['r2']:.3f} ({r['sent']})"
            print(f"    {count:3d} thumbs: {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=HERE / "relevance", help="the labelled set")
    parser.add_argument("--cache", type=Path, help="state file keeping the embeddings between runs")
    parser.add_argument("--calibrate", action="store_true", help="fit the weights on tune days")
    parser.add_argument("--thumbs", action="store_true", help="the thumbs curve")
    args = parser.parse_args()
    data = load(args.data)
    cache = args.cache or Path(tempfile.gettempdir()) / "digest-relevance.sqlite3"
    store, model, lexical = build(data, cache)
    c = WITH_MODEL
    if args.calibrate:
        c, keywords = calibrate(data, model, lexical)
        print(f"fitted on the tune days:\n  WITH_MODEL = {c}\n  KEYWORDS_ONLY = {keywords}")
    found = {
        name: {g: evaluate(data, method, data["split"][g]) for g in ("tune", "test")}
        for name, method in methods(data, model, lexical, c).items()
    }
    report(data, found)
    print("\nfrontier: P at the highest min_score sending 90% of the papers graded 2 (cut, sent)")
    for name, likes in (("fused", False), ("fused+like", True)):
        row = f"  {name:<12}"
        for g in ("tune", "test"):
            p, cut, sent = frontier(data, model, c, likes, data["split"][g])
            row += f"{g}: {p:.3f} ({cut:.2f}, {sent})   "
        print(row)
    if args.thumbs:
        thumbs_curve(data, model, c)
    store.close()


if __name__ == "__main__":
    main()
