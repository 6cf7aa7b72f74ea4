"""Real processes: a run killed with SIGKILL mid-send, and several runs (workers) sharing one
state and one day's digests, on SQLite and on PostgreSQL.

The digest CLI runs as a child process against the real SMTP server of the test; what the server
received is the truth. The workers keep apart by their claims on readers (no lock): a worker
that dies leaves its claims to expire after `lease_seconds`, and whoever takes one over repeats
what it left in flight byte for byte.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from digest.config import load_config
from digest.store import Store
from tests.support.helpers import hf_items, hf_page, write_config

DATE = "2026-06-12"


LEASE = 3  # seconds: a killed worker's readers go to another after this


def make_config(
    tmp_path: Path, smtp_server, subscribers: int, state: str, **digest: object
) -> Path:
    (tmp_path / "papers.html").write_text(hf_page(hf_items()[:4]), encoding="utf-8")
    return write_config(
        tmp_path / "digest.toml",
        digest={"state": state, "lease_seconds": LEASE, **digest},
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=[
            {"email": f"user{i:03d}@example.org", "max_papers": 3} for i in range(subscribers)
        ],
        delivery={
            "method": "smtp",
            "host": smtp_server.host,
            "port": smtp_server.port,
            "security": "none",
            "connections": 2,
            "timeout": 10,
        },
    )


def start_send_now(config: Path, *, own_group: bool = False) -> subprocess.Popen:
    """`digest send-now` as a child process; `own_group`: in a process group of its own, as
    a service's processes are (so the whole group can be signalled)."""
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "send-now", "-c", str(config), "--date", DATE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=own_group,
    )


def wait_for_mails(child: subprocess.Popen, smtp_server, count: int) -> None:
    """Until the server has `count` mails (at most a minute); the run must still be going."""
    deadline = time.monotonic() + 60
    while len(smtp_server.messages) < count and time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        time.sleep(0.01)


def by_recipient(smtp_server) -> dict[str, list[str]]:
    """recipient -> the Message-IDs of every mail they received."""
    out: dict[str, list[str]] = defaultdict(list)
    for received in smtp_server.messages:
        for rcpt in received.rcpt_tos:
            out[rcpt].append(received.message["Message-ID"])
    return out


def test_a_killed_run_is_caught_up_with_at_most_the_in_flight_duplicates(
    tmp_path, smtp_server, state_url
):
    """With the shipped model (the path users run): the rerun takes the killed run's claims
    over once their lease ran out."""
    subscribers = 300
    config = make_config(tmp_path, smtp_server, subscribers, state_url)
    smtp_server.handler.stall(0.01, at="data", times=None)  # a slow server: ~10 ms a message

    child = start_send_now(config)
    wait_for_mails(child, smtp_server, 60)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    received_before = len(smtp_server.messages)
    assert 60 <= received_before < subscribers, "the run was not killed mid-send"

    with Store.open(load_config(config).digest.state) as store:
        states = {d.status for d in store.digests()}
        assert "sent" in states and states & {"pending", "sending"}

    smtp_server.handler.clear_faults()
    rerun = start_send_now(config)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()

    got = by_recipient(smtp_server)
    assert len(got) == subscribers  # every subscriber got their digest
    duplicated = {rcpt: ids for rcpt, ids in got.items() if len(ids) > 1}
    print(f"killed after {received_before} of {subscribers} mails; duplicates: {duplicated}")
    assert len(duplicated) <= 2  # at most one in flight per SMTP connection
    for ids in duplicated.values():
        assert len(set(ids)) == 1  # a re-sent digest carries the same Message-ID

    with Store.open(load_config(config).digest.state) as store:
        assert {d.status for d in store.digests()} == {"sent"}
        runs = store.recent_runs(5)
        assert runs[0].exit_code == 0 and runs[1].finished_at is None  # the killed one


def test_two_runs_at_once_share_the_digests_and_send_each_once(tmp_path, smtp_server, state_url):
    subscribers = 40
    config = make_config(tmp_path, smtp_server, subscribers, state_url)
    smtp_server.handler.stall(0.01, at="data", times=None)
    first, second = start_send_now(config), start_send_now(config)
    results = [p.communicate(timeout=120) for p in (first, second)]
    assert first.returncode == 0, results[0][1].decode()
    assert second.returncode == 0, results[1][1].decode()

    got = by_recipient(smtp_server)
    assert len(got) == subscribers
    assert all(len(ids) == 1 for ids in got.values())
    sent = [o.decode().count(f"{DATE}: sent") for o, _ in results]
    assert sum(sent) == subscribers  # each digest sent by exactly one of them
