#!/usr/bin/env python3
"""Measure the web side: signing a digest's links, checking a token, and `digest serve` under
50 concurrent clients, alone and while a `digest send-now` of 1,000 readers writes the same
state.

    .venv/bin/python benchmarks/bench_web.py [--clients 50] [--seconds 9] [--subscribers 1000]

What it does:
- a work folder with bench_send's setup: an HF page of 180 papers (a local file), N readers
  with keyword profiles, delivery over SMTP to bench_send's aiosmtpd sink (its own process),
  and [web] on a free port; bench_send's warm-up (the day before, into an outbox) registers
  the readers and records 5 papers, so the confirm pages have titles to look up;
- `digest serve` as its own process (the real CLI, default logging: one line per request to a
  file), never rate-limited here because each request comes "from" another address
  (X-Forwarded-For, which the app trusts from 127.0.0.1, as behind the reverse proxy);
- the clients: `--clients` keep-alive connections from one asyncio process with a minimal
  HTTP/1.1 client (so the client costs little of the two cores), rotating through three kinds
  of request in 1-second slices: GET /healthz, GET a feedback confirm page (reads the state),
  POST a feedback (writes the state; every POST a new reader/paper pair);
- phase 1 "idle": `--seconds` of that; phase 2 "during send-now": the same from the start of a
  `digest send-now` of all readers (bench_send.run_digest; mails to the sink) until it exits;
- afterwards every POST answered 200 is looked up in the state: "lost" counts those missing
  (must be 0). A 503 (state busy; nothing recorded, Retry-After) is not a loss.

Prints, per phase and kind: requests, requests per second, p50 and p99 latency, statuses. Not
part of the test suite; never run it in a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_send  # noqa: E402  (the page, readers, sink and run helpers)

from digest.config import WebConfig  # noqa: E402
from digest.store import Store  # noqa: E402
from digest.web.links import digest_links, unsubscribe_url  # noqa: E402
from digest.web.tokens import SubscriberIndex, make_token, read_token  # noqa: E402
from tests.support.webtools import SECRET  # noqa: E402

DAY = "2026-11-24"
KINDS = ("GET /healthz", "GET confirm page", "POST feedback")


def micro() -> None:
    """The cost of signing a digest's links and of checking one token (in this process)."""
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
    print(f"checking one token: {(time.perf_counter() - start) / 20000 * 1e6:.1f} us", flush=True)


# --- the load ----------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    accepted: list[tuple[str, str]] = field(default_factory=list)  # POSTs answered 200
    errors: Counter[str] = field(default_factory=Counter)


class Requests:
    """Makes each kind of request as bytes; every POST is for a new (reader, paper) pair."""

    def __init__(self, readers: int, known_papers: list[str]) -> None:
        self.secret = SECRET.encode()
        self.readers = readers
        self.known_papers = known_papers
        self.n = 0

    def next(self, kind: str) -> tuple[bytes, tuple[str, str] | None]:
        self.n += 1
        n = self.n
        forwarded = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        email = f"user{n % self.readers}@example.org"
        if kind == "GET /healthz":
            return _request("GET", "/healthz", forwarded), None
        if kind == "GET confirm page":
            paper = self.known_papers[n % len(self.known_papers)]
            token = make_token(self.secret, "more", email, paper)
            return _request("GET", f"/f/{token}", forwarded), None
        paper = f"2612.{n:05d}" if n < 100_000 else f"2613.{n % 100_000:05d}"
        token = make_token(self.secret, "more", email, paper)
        return _request("POST", f"/f/{token}", forwarded, b"confirm=yes"), (email, paper)


def _request(method: str, path: str, forwarded: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nX-Forwarded-For: {forwarded}\r\n"
    if body:
        head += "Content-Type: application/x-www-form-urlencoded\r\n"
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def client(
    port: int, requests: Requests, tally: Tally, kind: list[str], stop: asyncio.Event
) -> None:
    """One keep-alive connection making requests of the current kind until stopped."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not stop.is_set():
            now_kind = kind[0]
            data, pair = requests.next(now_kind)
            start = time.perf_counter()
            try:
                writer.write(data)
                status = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                tally.errors[type(exc).__name__] += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            tally.latencies[now_kind].append(time.perf_counter() - start)
            tally.statuses[now_kind][status] += 1
            if pair is not None and status == 200:
                tally.accepted.append(pair)
    finally:
        writer.close()


async def load(port: int, clients: int, requests: Requests, until: threading.Event) -> Tally:
    """`clients` connections, the kind rotating every second, until `until` is set."""
    tally = Tally()
    kind = [KINDS[0]]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(client(port, requests, tally, kind, stop)) for _ in range(clients)]
    slice_no = 0
    while not until.is_set():
        kind[0] = KINDS[slice_no % len(KINDS)]
        started = time.perf_counter()
        await asyncio.sleep(1.0)
        tally.seconds[kind[0]] += time.perf_counter() - started
        slice_no += 1
    stop.set()
    await asyncio.gather(*tasks)
    return tally


def report(label: str, tally: Tally) -> None:
    print(f"{label}:")
    for kind in KINDS:
        lat = sorted(tally.latencies[kind])
        if not lat:
            print(f"  {kind:17} no requests")
            continue
        rate = len(lat) / tally.seconds[kind]
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        statuses = ", ".join(f"{s}: {c}" for s, c in sorted(tally.statuses[kind].items()))
        print(
            f"  {kind:17} {len(lat):6} requests in {tally.seconds[kind]:4.1f} s = {rate:5.0f}/s"
            f"  p50 {p50:6.1f} ms  p99 {p99:7.1f} ms  ({statuses})"
        )
    if tally.errors:
        print(f"  connection errors: {dict(tally.errors)}")


def lost(state: Path, accepted: list[tuple[str, str]]) -> int:
    """How many POSTs answered 200 are not in the state."""
    by_reader: dict[str, set[str]] = defaultdict(set)
    for email, paper in accepted:
        by_reader[email].add(paper)
    missing = 0
    with Store.open(state) as store:
        for email, papers in by_reader.items():
            recorded = store.feedback(email)
            missing += sum(1 for p in papers if recorded.get(p) != "like")
    return missing


# --- the run -----------------------------------------------------------------------------------


def serve(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DIGEST_WEB_SECRET": SECRET}
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "serve", "-c", str(config)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    import socket

    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"digest serve exited: {log.read_text()[-500:]}") from None
            time.sleep(0.02)
    raise RuntimeError("digest serve did not listen within 10 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=9, help="of the idle phase")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    micro()

    os.environ["DIGEST_WEB_SECRET"] = SECRET  # send-now signs the links in its mails
    digest_cmd = [sys.executable, "-m", "digest"]
    with tempfile.TemporaryDirectory(prefix="bench_web-") as tmp:
        work = Path(tmp)
        items = bench_send.day_items(180)
        page = work / "papers.html"
        page.write_text(bench_send.load_make_hf_page().build(items, DAY), encoding="utf-8")
        profiles, _ = bench_send.profiles(args.subscribers, items, args.seed)
        bench_send.warm_up(work, profiles, DAY, digest_cmd, 600)
        web_port = bench_send._free_port()
        sink = bench_send.Sink()
        try:
            config = work / "digest.toml"
            bench_send.write_config(config, page, sink.port, profiles)
            with config.open("a", encoding="utf-8") as f:
                f.write(
                    f'[web]\nbase_url = "http://127.0.0.1:{web_port}"\n'
                    f'listen = "127.0.0.1:{web_port}"\n'
                )
            state = work / "state.sqlite3"
            with Store.open(state) as store:
                known = list(store.get_papers([f"2611.8{i:04d}" for i in range(5)]))
            requests = Requests(args.subscribers, known or ["2611.80000"])
            server = serve(config, web_port, work / "serve.log")
            try:
                print(
                    f"bench_web: {args.clients} clients, {args.subscribers} readers; "
                    f"cpu_count={os.cpu_count()}, load average "
                    f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
                    flush=True,
                )
                done = threading.Event()
                threading.Timer(args.seconds, done.set).start()
                idle = asyncio.run(load(web_port, args.clients, requests, done))
                report("idle", idle)

                sending = threading.Event()
                result: dict[str, bench_send.DigestRun] = {}

                def send() -> None:
                    cmd = [*digest_cmd, "send-now", "-c", str(config), "--date", DAY]
                    try:
                        result["run"] = bench_send.run_digest(cmd, work, 1800)
                    finally:
                        sending.set()

                threading.Thread(target=send, daemon=True).start()
                during = asyncio.run(load(web_port, args.clients, requests, sending))
                run = result.get("run")
                label = "during send-now"
                if run is not None:
                    label += f" (exit {run.exit_code}, {run.wall:.1f} s)"
                report(label, during)
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(30)
            mails = sink.stop()["messages"]
        except BaseException:
            sink.close()
            raise
        accepted = idle.accepted + during.accepted
        missing = lost(state, accepted)
        print(
            f"feedback POSTs answered 200: {len(accepted)}; missing from the state: {missing}"
            f"{'' if missing == 0 else '  FAIL'}"
        )
        print(f"send-now: {mails} mails reached the sink (of {args.subscribers})")
        log_lines = (work / "serve.log").read_text(errors="replace").count("\n")
        print(f"digest serve: {log_lines} log lines, exit {server.returncode}")
        return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
