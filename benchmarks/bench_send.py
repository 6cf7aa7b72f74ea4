#!/usr/bin/env python3
"""Benchmark `digest send-now` over SMTP against the transport floor.

    .venv/bin/python benchmarks/bench_send.py [--subscribers 1000] [--rounds 3] [--profile]
        [--warm | --prefetched] [--state sqlite|postgres|postgresql://...] [--workers N]

What one round does:
- a fresh state folder and config: N subscribers with 3-6 keyword profiles drawn (seeded) from a
  vocabulary of ML research terms, delivery `method = "smtp"` to 127.0.0.1, `security = "none"`,
  default `connections`, `send_empty = true` (so every subscriber gets exactly one mail);
- the source is a local file (`url` = a path): an HF Daily Papers page of 180 papers built with
  tests/fixtures/make_hf_page.py from the real API items in tests/fixtures (deduplicated by id,
  topped up with copies of real items under synthetic ids 2611.9xxxx, so all text is real);
- the sink: aiosmtpd on 127.0.0.1 in a separate process, counting messages and bytes, noting the
  wall time (time.time) of the first and last message, discarding the content;
- the digest run: `python -m digest send-now -c CONFIG --date D` as a child process (this repo's
  code, run from the repo root); wall time from spawn to exit, peak RSS from os.wait4's
  ru_maxrss (the max over the process and its reaped children, not their sum), plus the sampled
  peak of the whole process tree's summed RSS (every 0.1 s from /proc), and the time to the
  first mail (the sink's first-message time minus the spawn time), and its CPU time (os.wait4's
  user + system: the process and the workers it reaped: render pool, model), and the time per
  mail once streaming (the sink's last-message time minus its first, over N - 1 mails);
- the transport floor, right after, against a fresh sink of the same kind: N copies of one real
  digest message (the one of median size among the first messages the sink kept) sent with
  aiosmtplib's `SMTP.sendmail(sender, [rcpt], bytes)` in a loop over ONE connection; wall time.

The state (`--state`): a SQLite file in the round's folder (the default), a fresh database per
round on a throwaway PostgreSQL server the script starts (`postgres`: initdb + pg_ctl as the
postgres user, see pgserver.py), or on a server you name (a `postgresql://` URL: a database
bench_send_rN is created there per round and dropped after). `--workers N` runs N
`digest send-now` processes at once against that one state: they share the readers by their
claims; wall time is from the first spawn to the last exit, RSS the largest process's, CPU the
sum.

`--warm` first runs the day before (5 other papers, into an outbox, under another source name),
so readers have a watermark and their profiles are embedded. `--prefetched` is the daemon's
steady state: `--warm`, then `digest fetch` (the day's page recorded and its papers embedded
ahead, timed apart), then the measured send-now, which uses that fetch as it is (within
`fetch_reuse_minutes`) and starts no model.

Prints each round and the median of the rounds. `--profile` runs the digest once under
`py-spy record --format raw` (needs ptrace: root, or ptrace_scope 0) and prints the top
functions by own (self) time from the collapsed stacks, and the top digest functions by total
time. Not part of the test suite; never run it in a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import importlib.util
import json
import multiprocessing
import multiprocessing.connection
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.support.helpers import toml_value  # noqa: E402  (the suite's TOML writer, not a copy)

FIXTURES = ROOT / "tests" / "fixtures"  # byte-identical copies of /work/shared/fixtures/real
HOST = "127.0.0.1"
SENDER = "digest@example.org"
SAMPLE_MESSAGES = 100  # the sink keeps the bytes of this many first messages (for the floor)

# Terms as researchers would write them; a weight > 1 marks a core interest.
VOCABULARY: list[tuple[str, int]] = [
    ("LLM agents", 3), ("language model", 2), ("large language models", 2), ("LLM", 2),
    ("multimodal", 2), ("vision-language model", 3), ("VLM", 2), ("diffusion", 2),
    ("diffusion transformer", 3), ("flow matching", 3), ("RLHF", 3), ("DPO", 2),
    ("reinforcement learning", 2), ("reward model", 2), ("GRPO", 3), ("LoRA", 3),
    ("parameter-efficient fine-tuning", 2), ("fine-tuning", 1), ("instruction tuning", 2),
    ("pre-training", 1), ("scaling laws", 3), ("mixture of experts", 3), ("MoE", 2),
    ("quantization", 2), ("distillation", 2), ("pruning", 1), ("KV cache", 3),
    ("speculative decoding", 3), ("long context", 2), ("attention", 1), ("sparse attention", 2),
    ("state space model", 3), ("Mamba", 3), ("transformer", 1),
    ("retrieval-augmented generation", 3), ("RAG", 2), ("retrieval", 1), ("embedding", 1),
    ("reranking", 2), ("chain-of-thought", 2),
    ("reasoning", 1), ("mathematical reasoning", 2), ("test-time compute", 3),
    ("test-time scaling", 3), ("in-context learning", 2), ("prompting", 1),
    ("code generation", 2), ("program synthesis", 2), ("software engineering", 2),
    ("tool use", 2), ("function calling", 2), ("web agent", 3), ("GUI agent", 3),
    ("multi-agent", 2), ("planning", 1), ("benchmark", 1), ("evaluation", 1),
    ("hallucination", 2), ("alignment", 2), ("safety", 1), ("jailbreak", 3), ("red teaming", 2),
    ("interpretability", 2), ("mechanistic interpretability", 3), ("sparse autoencoder", 3),
    ("uncertainty", 1), ("calibration", 1), ("privacy", 1), ("federated learning", 2),
    ("watermarking", 2), ("image generation", 2), ("text-to-image", 2), ("image editing", 2),
    ("video generation", 3), ("text-to-video", 2), ("video understanding", 2),
    ("3D generation", 3), ("3D reconstruction", 2), ("Gaussian splatting", 3), ("NeRF", 2),
    ("novel view synthesis", 2), ("depth estimation", 2), ("object detection", 1),
    ("segmentation", 1), ("image captioning", 1), ("visual question answering", 2), ("OCR", 2),
    ("document understanding", 2), ("speech recognition", 3), ("text-to-speech", 3),
    ("speech synthesis", 2), ("audio generation", 2), ("music generation", 2),
    ("spoken language model", 2), ("machine translation", 2), ("multilingual", 1),
    ("low-resource languages", 2), ("summarization", 1), ("question answering", 1),
    ("knowledge graph", 2), ("graph neural network", 3), ("GNN", 2), ("recommendation", 2),
    ("time series", 2), ("tabular data", 2), ("robotics", 2), ("embodied AI", 3),
    ("vision-language-action", 3), ("world model", 3), ("autonomous driving", 2),
    ("navigation", 1), ("manipulation", 1), ("imitation learning", 2), ("self-supervised", 1),
    ("contrastive learning", 2), ("representation learning", 1), ("continual learning", 2),
    ("meta-learning", 2), ("optimization", 1), ("optimizer", 1), ("synthetic data", 2),
    ("data curation", 2), ("dataset", 1), ("tokenizer", 2), ("medical imaging", 2),
    ("drug discovery", 2), ("protein", 2), ("molecule", 1), ("scientific discovery", 2),
    ("theorem proving", 3), ("math", 1), ("efficiency", 1), ("inference acceleration", 2),
    ("on-device", 2), ("edge devices", 1),
]  # fmt: skip


# --- the day page and the config ----------------------------------------------------------------


def load_make_hf_page() -> Any:
    spec = importlib.util.spec_from_file_location("make_hf_page", FIXTURES / "make_hf_page.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def day_items(count: int) -> list[dict[str, Any]]:
    """`count` HF API items: the real ones (deduplicated by id), then copies under new ids."""
    real: dict[str, dict[str, Any]] = {}
    for path in sorted(FIXTURES.glob("hf_api_daily_papers_*.json")):
        for item in json.loads(path.read_text(encoding="utf-8")):
            real.setdefault(item["paper"]["id"], item)
    items = list(real.values())[:count]
    base = list(real.values())
    for i in range(count - len(items)):
        item = copy.deepcopy(base[i % len(base)])
        item["paper"]["id"] = f"2611.9{i:04d}"
        items.append(item)
    return items


def profiles(n: int, items: list[dict[str, Any]], seed: int) -> tuple[list[Any], int]:
    """N keyword profiles (3-6 terms each) and how many vocabulary terms occur in the papers.

    Every profile holds at least one term that occurs in some paper, so (nearly) every digest
    has papers; half the profiles are weighted tables, half plain lists."""
    text = " ".join(
        f"{it['paper'].get('title', '')} {it['paper'].get('summary', '')}" for it in items
    ).lower()
    hits = [t for t in VOCABULARY if t[0].lower() in text]
    rng = random.Random(seed)
    out: list[Any] = []
    for _ in range(n):
        first = rng.choice(hits)
        rest = rng.sample([t for t in VOCABULARY if t != first], rng.randint(2, 5))
        terms = [first, *rest]
        if rng.random() < 0.5:
            out.append([term for term, _ in terms])
        else:
            out.append({term: weight for term, weight in terms})
    return out, len(hits)


def write_config(
    path: Path,
    page: Path,
    port: int,
    keyword_profiles: list[Any],
    *,
    state: str,
    outbox: bool = False,
    source: str = "hf-papers",
) -> None:
    lines = [
        "[digest]",
        f"state = {toml_value(state)}",
        'from = "Paper Digest <digest@example.org>"',
        'timezone = "UTC"',
        'send_at = "00:00"',
        "send_empty = true",
        "[[source]]",
        'type = "hf-papers"',
        f"name = {toml_value(source)}",
        f"url = {toml_value(str(page))}",
        "[delivery]",
        *(
            ['method = "outbox"', 'outbox = "warm-outbox"']
            if outbox
            else ['method = "smtp"', f'host = "{HOST}"', f"port = {port}", 'security = "none"']
        ),
    ]
    for i, keywords in enumerate(keyword_profiles):
        lines += [
            "[[subscriber]]",
            f'email = "user{i}@example.org"',
            f'name = "Reader {i}"',
            f"keywords = {toml_value(keywords)}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- the SMTP sink (a separate process) ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class _CountingHandler:
    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0
        self.first: float | None = None  # time.time() when the first message was in
        self.last: float | None = None
        self.sizes: list[int] = []
        self.samples: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        data = envelope.original_content or b""
        if self.first is None:
            self.first = now
        self.last = now
        self.messages += 1
        self.bytes += len(data)
        self.sizes.append(len(data))
        if len(self.samples) < SAMPLE_MESSAGES:
            self.samples.append(data)
        return "250 2.0.0 OK"

    def stats(self) -> dict[str, Any]:
        sample = b""
        if self.samples:
            median = statistics.median(self.sizes)
            sample = min(self.samples, key=lambda m: abs(len(m) - median))
        return {
            "messages": self.messages,
            "bytes": self.bytes,
            "first": self.first,
            "last": self.last,
            "min_size": min(self.sizes, default=0),
            "median_size": statistics.median(self.sizes) if self.sizes else 0,
            "max_size": max(self.sizes, default=0),
            "sample": sample,
        }


def _sink_main(conn: multiprocessing.connection.Connection) -> None:
    """Runs in the sink process: serve until told "stop", then send the counts back."""
    from aiosmtpd.controller import Controller

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the sink stops
    handler = _CountingHandler()
    port = _free_port()
    controller = Controller(
        handler, hostname=HOST, port=port, server_hostname="sink.test", ready_timeout=10.0
    )
    controller.start()
    conn.send(port)
    try:
        while True:
            if conn.recv() == "stop":
                break
    finally:
        controller.stop()
        conn.send(handler.stats())


class Sink:
    """An aiosmtpd sink in its own process; `stop()` returns its counts."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_sink_main, args=(child,), daemon=True)
        self._proc.start()
        child.close()
        if not self._conn.poll(30):
            self.close()
            raise RuntimeError("the SMTP sink did not start within 30 s")
        self.port: int = self._conn.recv()

    def stop(self) -> dict[str, Any]:
        self._conn.send("stop")
        if not self._conn.poll(60):
            self.close()
            raise RuntimeError("the SMTP sink did not report within 60 s")
        stats: dict[str, Any] = self._conn.recv()
        self.close()
        return stats

    def close(self) -> None:
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._conn.close()


# --- the digest run ------------------------------------------------------------------------------


def _tree_rss_kib(pid: int) -> int:
    """Summed VmRSS of pid and all its descendants (0 once it is gone)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


@dataclass
class DigestRun:
    wall: float  # s, spawn to exit
    spawned: float  # time.time() at spawn
    exit_code: int
    maxrss_mib: float  # wait4 ru_maxrss
    cpu: float  # s, wait4 user + system: the process and the workers it waited for
    tree_rss_mib: float  # sampled peak of the summed RSS of the process trees
    stdout: list[Path]  # one per worker
    stderr: Path  # the first worker's


def run_digests(cmds: list[list[str]], workdir: Path, timeout: float) -> DigestRun:
    """Run these commands at once (one per worker) and wait for all: wall time from the spawn
    to the last exit, the largest ru_maxrss, the summed CPU and the sampled peak of the
    summed RSS of all their process trees; the first nonzero exit code."""
    peak = [0]
    procs: list[subprocess.Popen[bytes]] = []
    outs: list[Path] = []
    spawned = time.time()
    t0 = time.monotonic()
    for n, cmd in enumerate(cmds):
        suffix = f".{n}" if len(cmds) > 1 else ""
        out, err = workdir / f"stdout{suffix}.txt", workdir / f"stderr{suffix}.txt"
        with open(out, "wb") as fout, open(err, "wb") as ferr:
            procs.append(
                subprocess.Popen(cmd, cwd=ROOT, stdout=fout, stderr=ferr, start_new_session=True)
            )
        outs.append(out)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], sum(_tree_rss_kib(p.pid) for p in procs))

    def kill() -> None:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timer = threading.Timer(timeout, kill)
    timer.start()
    codes: list[int] = []
    maxrss = cpu = 0.0
    try:
        for proc in procs:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
            codes.append(proc.returncode)
            maxrss = max(maxrss, usage.ru_maxrss / 1024)
            cpu += usage.ru_utime + usage.ru_stime
    except BaseException:
        kill()
        raise
    finally:
        wall = time.monotonic() - t0
        timer.cancel()
        done.set()
        sampler.join()
    if -signal.SIGKILL in codes and wall >= timeout:
        raise RuntimeError(f"the digest run did not finish within {timeout:.0f} s (killed)")
    return DigestRun(
        wall=wall,
        spawned=spawned,
        exit_code=next((c for c in codes if c), 0),
        maxrss_mib=maxrss,
        cpu=cpu,
        tree_rss_mib=peak[0] / 1024,
        stdout=outs,
        stderr=workdir / ("stderr.0.txt" if len(cmds) > 1 else "stderr.txt"),
    )


def warm_up(
    rdir: Path,
    keyword_profiles: list[Any],
    day: str,
    digest_cmd: list[str],
    timeout: float,
    state: str,
) -> None:
    """The day before, into an outbox: other papers, the same readers (not measured). Its
    source has a name of its own, so the measured day's source counts as never fetched."""
    items = day_items(5)
    for i, item in enumerate(items):
        item["paper"]["id"] = f"2611.8{i:04d}"
    before = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    page = rdir / "yesterday.html"
    page.write_text(load_make_hf_page().build(items, before), encoding="utf-8")
    config = rdir / "warm.toml"
    write_config(config, page, 0, keyword_profiles, state=state, outbox=True, source="yesterday")
    done = subprocess.run(
        [*digest_cmd, "send-now", "-c", str(config), "--date", before],
        cwd=ROOT,
        capture_output=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the warm-up run failed: {done.stderr.decode()[-500:]}")
    shutil.rmtree(rdir / "warm-outbox", ignore_errors=True)


def fetch_ahead(config: Path, digest_cmd: list[str], timeout: float) -> tuple[float, str]:
    """`digest fetch` (the daemon's fetch-ahead): seconds and its `done:` line."""
    t0 = time.monotonic()
    done = subprocess.run(
        [*digest_cmd, "fetch", "-c", str(config)], cwd=ROOT, capture_output=True, timeout=timeout
    )
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        raise RuntimeError(f"digest fetch failed: {done.stderr.decode()[-500:]}")
    lines = [ln for ln in done.stdout.decode().splitlines() if ln.startswith("done:")]
    return seconds, (lines[-1] if lines else "")


def _tail(path: Path, lines: int = 8) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return " | ".join(text[-lines:]) or "(empty)"


def digest_summary(stdouts: list[Path]) -> tuple[Counter[str], str]:
    """Count the per-subscriber statuses `send-now` printed, and its `done:` lines."""
    statuses: Counter[str] = Counter()
    dones: list[str] = []
    for stdout in stdouts:
        for line in stdout.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("done:"):
                dones.append(line)
            elif line.startswith("user") and ": " in line:
                status = line.split(": ", 1)[1].split(",")[0].split(" (")[0]
                papers = " with papers" if "papers" in line.split(": ", 1)[1] else ""
                statuses[status + papers] += 1
    return statuses, " | ".join(dones)


# --- the transport floor -------------------------------------------------------------------------


async def _send_floor(port: int, message: bytes, count: int) -> float:
    import aiosmtplib

    t0 = time.monotonic()
    smtp = aiosmtplib.SMTP(hostname=HOST, port=port, use_tls=False, start_tls=False, timeout=60)
    await smtp.connect()
    for i in range(count):
        await smtp.sendmail(SENDER, [f"user{i}@example.org"], message)
    await smtp.quit()
    return time.monotonic() - t0


def run_floor(message: bytes, count: int, timeout: float) -> tuple[float, dict[str, Any]]:
    sink = Sink()
    try:
        wall = asyncio.run(asyncio.wait_for(_send_floor(sink.port, message, count), timeout))
    except BaseException:
        sink.close()
        raise
    return wall, sink.stop()


# --- profile aggregation -------------------------------------------------------------------------


def top_functions(raw: Path, limit: int = 15) -> str:
    """Top functions by own time, and top digest/ functions by total time, from py-spy's raw
    (collapsed stacks) output: one line per stack, "frame;frame;...;leaf COUNT"."""
    own: Counter[str] = Counter()
    own_by_file: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        # py-spy starts each stack with the process (and thread) label; skip those.
        frames = [f for f in frames if "(" in f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        own_by_file[frames[-1].rpartition(" (")[2].rstrip(")")] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"{samples} samples; top {limit} by own time:"]
    for frame, n in own.most_common(limit):
        lines.append(f"  {100 * n / samples:5.1f}%  {frame}")
    lines.append("top 10 files by own time:")
    for file, n in own_by_file.most_common(10):
        lines.append(f"  {100 * n / samples:5.1f}%  {file}")
    entry = ("(digest/__main__.py)", "(digest/cli.py)")  # the call chain every sample runs through
    ours = [(f, n) for f, n in total.most_common() if "digest/" in f and not f.endswith(entry)]
    lines.append(f"top {limit} digest/ functions by total time (including callees):")
    for frame, n in ours[:limit]:
        lines.append(f"  {100 * n / samples:5.1f}%  {frame}")
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------------


@dataclass
class Round:
    digest: float
    floor: float
    mails: int
    maxrss: float
    tree_rss: float
    first_mail: float
    mean_size: float
    cpu: float
    streaming: float  # s from the first mail to the last, at the sink

    @property
    def per_mail_ms(self) -> float:
        """Once streaming: ms between mails at the sink (the head before the first is apart)."""
        return 1000 * self.streaming / max(1, self.mails - 1)

    @property
    def ratio(self) -> float:
        return self.digest / self.floor

    @property
    def rate(self) -> float:
        return self.mails / self.digest


def _row(label: str, r: Round, ratio: float | None = None) -> str:
    ratio = r.ratio if ratio is None else ratio
    return (
        f"{label:>7}  digest {r.digest:7.2f} s  floor {r.floor:6.2f} s  ratio {ratio:5.2f}x  "
        f"{r.rate:7.1f} mails/s  peak RSS {r.maxrss:7.1f} MiB (tree {r.tree_rss:7.1f})  "
        f"first mail {r.first_mail:6.2f} s  cpu {r.cpu:6.2f} s  streaming {r.per_mail_ms:5.2f} "
        f"ms/mail (floor {1000 * r.floor / max(1, r.mails):5.2f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--papers", type=int, default=180)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--date", default="2026-11-24", help="the digest date (--date of send-now)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per digest run")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        nargs="?",
        const="",
        help="one digest run under py-spy (raw collapsed stacks to FILE, default a temp file); "
        "prints the top functions",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="a day later, as a daily service runs: each round first runs the day before (5 "
        "other papers, into an outbox), so the readers' profiles are already embedded and only "
        "the new day's papers are",
    )
    parser.add_argument(
        "--prefetched",
        action="store_true",
        help="the daemon's steady state: --warm, then `digest fetch` (the day recorded and "
        "embedded ahead), then the measured send",
    )
    parser.add_argument(
        "--state",
        default="sqlite",
        help="sqlite (a file, the default), postgres (a throwaway server started here), or a "
        "postgresql:// URL of a server where a database per round is created",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="digest send-now processes sharing the state"
    )
    args = parser.parse_args()
    args.warm = args.warm or args.prefetched

    digest_cmd = [sys.executable, "-m", "digest"]
    pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if args.profile is not None and not pyspy:
        print("bench_send: error: --profile needs py-spy (pip install py-spy)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="bench_send-"))
    with contextlib.ExitStack() as stack:
        postgres = None
        if args.state == "postgres":
            from pgserver import Postgres

            postgres = stack.enter_context(Postgres.start())
        elif args.state.startswith(("postgresql://", "postgres://")):
            from pgserver import Postgres

            postgres = stack.enter_context(Postgres.at(args.state))
        elif args.state != "sqlite":
            print(f"bench_send: error: --state {args.state!r}", file=sys.stderr)
            return 2
        try:
            return _rounds(args, work, digest_cmd, pyspy, postgres)
        finally:
            if args.keep:
                print(f"work folder kept: {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
    return 0


def _rounds(
    args: argparse.Namespace,
    work: Path,
    digest_cmd: list[str],
    pyspy: str | None,
    postgres: Any,
) -> int:
    items = day_items(args.papers)
    page = work / "papers.html"
    page.write_text(load_make_hf_page().build(items, args.date), encoding="utf-8")
    keyword_profiles, hits = profiles(args.subscribers, items, args.seed)
    rounds = 1 if args.profile is not None else args.rounds
    mode = "prefetched" if args.prefetched else "warm" if args.warm else "fresh state"
    print(
        f"bench_send: {args.subscribers} subscribers, {len(items)} papers "
        f"(page {page.stat().st_size / 1024:.0f} KiB, a local file), "
        f"{len(VOCABULARY)} terms ({hits} occur in the papers), {rounds} round(s), {mode}, "
        f"state {args.state}, {args.workers} worker(s); "
        f"cpu_count={os.cpu_count()}, Python {platform.python_version()}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    results: list[Round] = []
    failed = False
    for n in range(1, rounds + 1):
        rdir = work / f"round{n}"
        rdir.mkdir()
        database = f"bench_send_r{n}_{os.getpid()}"
        state = postgres.create(database) if postgres is not None else "state.sqlite3"
        sink = Sink()
        try:
            config = rdir / "digest.toml"
            if args.warm:
                warm_up(rdir, keyword_profiles, args.date, digest_cmd, args.timeout, state)
            write_config(config, page, sink.port, keyword_profiles, state=state)
            if args.prefetched:
                seconds, done = fetch_ahead(config, digest_cmd, args.timeout)
                print(f"round {n}: fetched ahead in {seconds:.2f} s: {done}", flush=True)
            cmd = [*digest_cmd, "send-now", "-c", str(config), "--date", args.date]
            raw = None
            if args.profile is not None:
                raw = Path(args.profile) if args.profile else rdir / "profile.txt"
                cmd = [pyspy, "record", "--format", "raw", "--nolineno", "--subprocesses",
                       "-o", str(raw), "--", *cmd]  # fmt: skip
            run = run_digests([cmd] * args.workers, rdir, args.timeout)
        except BaseException:
            sink.close()
            if postgres is not None:
                postgres.drop(database)
            raise
        got = sink.stop()
        if postgres is not None and not args.keep:
            postgres.drop(database)
        statuses, done = digest_summary(run.stdout)
        if run.exit_code != 0:
            print(
                f"round {n}: digest exited {run.exit_code}; stderr: {_tail(run.stderr)}",
                flush=True,
            )
        if got["messages"] != args.subscribers:
            failed = True
            print(
                f"FAIL round {n}: the sink received {got['messages']} messages, "
                f"expected {args.subscribers}; {done or 'no done: line'}"
                + ("" if run.exit_code else f"; stderr: {_tail(run.stderr)}"),
                flush=True,
            )
        if not got["messages"]:
            continue
        print(
            f"round {n}: {done or 'no done: line'} | statuses {dict(statuses)} | "
            f"{got['messages']} mails, {got['bytes'] / 2**20:.1f} MiB, size "
            f"min/median/max {got['min_size']}/{got['median_size']:.0f}/{got['max_size']} B",
            flush=True,
        )
        if raw is not None:
            print(f"profile (py-spy, digest wall {run.wall:.2f} s under the profiler), {raw}:")
            print(top_functions(raw), flush=True)
            continue
        sample: bytes = got["sample"]
        floor, floor_got = run_floor(sample, args.subscribers, args.timeout)
        if floor_got["messages"] != args.subscribers:
            failed = True
            print(f"FAIL round {n}: the floor sink received {floor_got['messages']} messages")
        result = Round(
            digest=run.wall,
            floor=floor,
            mails=got["messages"],
            maxrss=run.maxrss_mib,
            tree_rss=run.tree_rss_mib,
            first_mail=got["first"] - run.spawned,
            mean_size=got["bytes"] / got["messages"],
            cpu=run.cpu,
            streaming=got["last"] - got["first"],
        )
        results.append(result)
        print(_row(f"round {n}", result) + f"  (floor message {len(sample)} B)", flush=True)
    if results:
        med = Round(
            digest=statistics.median(r.digest for r in results),
            floor=statistics.median(r.floor for r in results),
            mails=results[0].mails,
            maxrss=statistics.median(r.maxrss for r in results),
            tree_rss=statistics.median(r.tree_rss for r in results),
            first_mail=statistics.median(r.first_mail for r in results),
            mean_size=statistics.median(r.mean_size for r in results),
            cpu=statistics.median(r.cpu for r in results),
            streaming=statistics.median(r.streaming for r in results),
        )
        ratio = statistics.median(r.ratio for r in results)
        print(
            _row("median", med, ratio)
            + f"  (cpu_count={os.cpu_count()}, N={args.subscribers}, {mode}, state "
            f"{args.state}, {args.workers} worker(s), load average now "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    # SIGTERM unwinds like an error, so a throwaway PostgreSQL and the work folder go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        sys.exit(main())
    except (RuntimeError, TimeoutError, OSError) as exc:  # a failed run: one line, no traceback
        print(f"FAIL bench_send: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
