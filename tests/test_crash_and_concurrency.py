"""Real processes: a run killed with SIGKILL mid-send, and two runs started at once.

The digest CLI runs as a child process against the real SMTP server of the test; what the server
received is the truth.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from digest.store import Store
from tests.support.helpers import hf_items, hf_page, write_config

DATE = "2026-06-12"


def make_config(tmp_path: Path, smtp_server, subscribers: int) -> Path:
    (tmp_path / "papers.html").write_text(hf_page(hf_items()[:4]), encoding="utf-8")
    return write_config(
        tmp_path / "digest.toml",
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


def test_a_killed_run_is_caught_up_with_at_most_the_in_flight_duplicates(tmp_path, smtp_server):
    subscribers = 300
    config = make_config(tmp_path, smtp_server, subscribers)
    smtp_server.handler.stall(0.01, at="data", times=None)  # a slow server: ~10 ms a message

    child = start_send_now(config)
    wait_for_mails(child, smtp_server, 60)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    received_before = len(smtp_server.messages)
    assert 60 <= received_before < subscribers, "the run was not killed mid-send"

    with Store.open(config.parent / "state.sqlite3") as store:
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

    with Store.open(config.parent / "state.sqlite3") as store:
        assert {d.status for d in store.digests()} == {"sent"}
        runs = store.recent_runs(5)
        assert runs[0].exit_code == 0 and runs[1].finished_at is None  # the killed one


def test_two_runs_at_once_send_each_digest_once(tmp_path, smtp_server):
    subscribers = 40
    config = make_config(tmp_path, smtp_server, subscribers)
    smtp_server.handler.stall(0.01, at="data", times=None)
    first, second = start_send_now(config), start_send_now(config)
    results = [p.communicate(timeout=120) for p in (first, second)]
    assert first.returncode == 0, results[0][1].decode()
    assert second.returncode == 0, results[1][1].decode()

    got = by_recipient(smtp_server)
    assert len(got) == subscribers
    assert all(len(ids) == 1 for ids in got.values())
    outputs = b"".join(out for out, _ in results).decode()
    assert outputs.count(f"{DATE}: already-sent") == subscribers  # the second run found them done
