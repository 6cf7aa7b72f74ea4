"""Several workers, one state: real `digest send-now` and `digest run` processes against one
PostgreSQL database (or one SQLite file) and one aiosmtpd, keeping apart by their claims.

- Three send-now workers and 3,000 readers: every reader gets exactly one mail.
- The same with one worker SIGKILLed mid-run: the others finish, nobody is skipped, and the
  only duplicates are byte-identical repeats (same Message-ID) of what the killed worker had in
  flight (at most one per SMTP connection).
- Two daemons, a reader due: SIGKILL the one that claimed the digest right after it claimed
  it; the mail still arrives, once, within the lease time.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.config import load_config
from digest.store import Store
from tests.support.helpers import hf_items, hf_page, write_config

DATE = "2026-06-12"
LEASE = 3  # seconds
READERS = 3000


def config_for(tmp_path: Path, smtp_server, state: str, subscribers: list[dict]) -> Path:
    (tmp_path / "papers.html").write_text(hf_page(hf_items()[:4]), encoding="utf-8")
    return write_config(
        tmp_path / "digest.toml",
        # Keywords only: this is about who sends what, and 3,000 profiles need no model.
        # Each date asks the page again (two dates follow within the default reuse window).
        digest={
            "state": state,
            "lease_seconds": LEASE,
            "semantic": False,
            "fetch_reuse_minutes": 0,
        },
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=subscribers,
        delivery={
            "method": "smtp",
            "host": smtp_server.host,
            "port": smtp_server.port,
            "security": "none",
            "connections": 2,
            "timeout": 10,
        },
    )


def readers(n: int) -> list[dict]:
    return [{"email": f"r{i:04d}@example.org", "max_papers": 2} for i in range(n)]


def start(config: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", *args, "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def message_ids(smtp_server) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for received in smtp_server.messages:
        for rcpt in received.rcpt_tos:
            out[rcpt].append(received.message_id or "")
    return out


def sent_count(output: str) -> int:
    """How many digests a run's summary line ("done: ..., 1234 sent, ...") says it sent."""
    done = next(line for line in output.splitlines() if line.startswith("done: "))
    match = re.search(r"(\d+) sent", done)
    return int(match.group(1)) if match else 0


def settled(state) -> bool:
    with Store.open(state) as store:
        return [d.status for d in store.digests()] == ["sent"] and not store.claims()


def wait(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize(("backend", "workers"), [("postgresql", 3), ("sqlite", 2)])
def test_workers_share_a_days_digests_and_a_killed_one_loses_nothing(
    tmp_path, smtp_server, backend, workers, request
):
    state = request.getfixturevalue("postgres_url") if backend == "postgresql" else "state.sqlite3"
    config = config_for(tmp_path, smtp_server, state, readers(READERS))

    # 1. all together: each reader gets exactly one mail
    procs = [start(config, "send-now", "--date", DATE) for _ in range(workers)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()[-2000:]
    got = message_ids(smtp_server)
    assert len(got) == READERS and all(len(ids) == 1 for ids in got.values())
    sent = [sent_count(out.decode()) for out, _ in outs]
    assert sum(sent) == READERS and all(n > 0 for n in sent), sent  # they shared the work

    # 2. the next date, one worker killed mid-run: the others finish it
    (tmp_path / "papers.html").write_text(hf_page(hf_items()[4:8]), encoding="utf-8")
    smtp_server.messages.clear()
    smtp_server.handler.stall(0.002, at="data", times=None)  # slow enough to kill mid-send
    day2 = "2026-06-13"
    procs = [start(config, "send-now", "--date", day2) for _ in range(workers)]
    wait(lambda: len(smtp_server.messages) >= READERS // 10, 120, "mails")
    procs[0].send_signal(signal.SIGKILL)
    procs[0].communicate(timeout=30)
    for p in procs[1:]:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    got = message_ids(smtp_server)
    assert len(got) == READERS  # nobody skipped
    duplicated = {r: ids for r, ids in got.items() if len(ids) > 1}
    assert len(duplicated) <= 2  # the killed worker's in flight: one per SMTP connection
    assert all(len(set(ids)) == 1 for ids in duplicated.values())  # byte-identical repeats
    with Store.open(load_config(config).digest.state) as store:
        assert {d.status for d in store.digests() if d.digest_date == day2} == {"sent"}
        assert store.claims() == []


def test_a_daemon_killed_right_after_claiming_leaves_the_digest_to_the_other(
    tmp_path, smtp_server, postgres_url
):
    """Two daemons on one PostgreSQL state; a reader whose send time passed a minute ago is
    due at their start. Whoever claims the digest is SIGKILLed as soon as the claim shows; the
    other takes it over once the claim expires. Should the killed one have got as far as the
    message data, the server sits on its first DATA, so that copy is never accepted and the
    other repeats the exact bytes: either way the reader gets it once."""
    past = (datetime.now(UTC) - timedelta(minutes=1)).astimezone(ZoneInfo("Europe/Berlin"))
    reader = {"email": "ada@example.org", "timezone": "Europe/Berlin", "send_at": f"{past:%H:%M}"}
    config = config_for(tmp_path, smtp_server, postgres_url, [reader])
    smtp_server.handler.stall(2, at="data", times=1)
    daemons = [start(config, "run") for _ in range(2)]
    state = load_config(config).digest.state
    claimer: dict[str, int] = {}
    took = 0.0

    def claimed() -> bool:
        with Store.open(state) as store:
            claims = store.claims()
            workers = {w.id: w.pid for w in store.workers()}
        if claims and claims[0].worker in workers:
            claimer["pid"] = workers[claims[0].worker]
            return True
        return False

    try:
        wait(claimed, 60, "a claim")
        killed_at = time.monotonic()
        os.kill(claimer["pid"], signal.SIGKILL)
        wait(lambda: len(smtp_server.messages) >= 1, 60, "the mail")
        took = time.monotonic() - killed_at
        wait(lambda: settled(state), 30, "the digest recorded sent, its claim let go")
        assert len(smtp_server.messages) == 1  # and nobody is left who could send it again
    finally:
        logs = []
        for d in daemons:
            if d.poll() is None:
                d.send_signal(signal.SIGTERM)
            logs.append(d.communicate(timeout=60)[1].decode())
    # the lease, the watch's beat, a send (and the first DATA's 2 s, if it was the other's)
    assert took <= LEASE * 2 + 4, f"{took:.1f} s after the kill:\n" + "\n".join(logs)
    survivor = next(d for d in daemons if d.pid != claimer["pid"])
    assert survivor.returncode == 0
    with Store.open(state) as store:
        [digest] = store.digests()
    assert digest.status == "sent"
