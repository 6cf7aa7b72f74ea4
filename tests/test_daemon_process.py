"""`digest run` as a real process, in real time, against the real SMTP and HTTP test servers.

Three subscribers in three time zones: one due at the next minute boundary (at least 40 s
away), one in another zone a minute later, one in three hours. About two minutes of wall time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from digest.store import Store
from tests.support.helpers import hf_items, hf_page, write_config

ADA, BOB, CY = "ada@example.org", "bob@example.org", "cy@example.org"


def local_hhmm(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%H:%M")


def start_daemon(config: Path, *, stderr: Any = subprocess.PIPE) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "run", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
    )


def wait_until(predicate, deadline: float, child: subprocess.Popen, what: str) -> float:
    """Poll until predicate(); return the wall time it became true."""
    while not predicate():
        if child.poll() is not None:
            raise AssertionError(f"daemon exited while waiting for {what}: {child.communicate()}")
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.time()


def test_daemon_sends_each_subscriber_at_their_time_and_stops_cleanly(
    tmp_path, smtp_server, http_server
):
    http_server.serve("/papers", hf_page(hf_items()[:5]), content_type="text/html")
    now = datetime.now(UTC)
    first = (now + timedelta(seconds=100)).replace(second=0, microsecond=0)  # 40-100 s away
    second = first + timedelta(minutes=1)
    config = write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": http_server.url("/papers")}],
        subscribers=[
            {
                "email": ADA,
                "timezone": "Europe/Berlin",
                "send_at": local_hhmm(first, "Europe/Berlin"),
            },
            {
                "email": BOB,
                "timezone": "America/New_York",
                "send_at": local_hhmm(second, "America/New_York"),
            },
            {
                "email": CY,
                "timezone": "Asia/Tokyo",
                "send_at": local_hhmm(now + timedelta(hours=3), "Asia/Tokyo"),
            },
        ],
        delivery={
            "method": "smtp",
            "host": smtp_server.host,
            "port": smtp_server.port,
            "security": "none",
            "timeout": 20,
        },
    )
    # bob's mail is slow: the server sits on his DATA for 4 s, the SIGTERM comes meanwhile
    smtp_server.handler.stall(4, at="data", address=BOB)

    def got(rcpt: str) -> int:
        return sum(rcpt in m.rcpt_tos for m in smtp_server.messages)

    daemon = start_daemon(config)
    # nothing before ada's minute (her previous send time is a day old: missed, not sent)
    ada_at = wait_until(lambda: got(ADA) > 0, first.timestamp() + 30, daemon, "ada's mail")
    assert ada_at >= first.timestamp()
    assert got(BOB) == 0
    stalled = wait_until(
        lambda: any("DATA stalling" in line for line in smtp_server.handler.log),
        second.timestamp() + 30,
        daemon,
        "bob's mail in flight",
    )
    assert stalled >= second.timestamp()
    daemon.send_signal(signal.SIGTERM)
    out, err = daemon.communicate(timeout=60)
    log = err.decode()
    print(log)
    assert daemon.returncode == 0, log
    assert (got(ADA), got(BOB), got(CY)) == (1, 1, 0)
    assert "SIGTERM: finishing the mails in flight" in log and "stopped" in log
    assert "missed:" in log  # the day-old send times, logged at start

    with Store.open(tmp_path / "state.sqlite3") as store:
        records = {d.subscriber: d for d in store.digests()}
    assert set(records) == {ADA, BOB}
    assert {d.status for d in records.values()} == {"sent"}  # bob's, in flight, recorded

    # a restart sends nothing twice (and nothing to cy, hours away): its catch-up tick at
    # start finds nothing due, and says so
    log_path = tmp_path / "again.log"
    with log_path.open("wb") as log_file:
        again = start_daemon(config, stderr=log_file)
        wait_until(
            lambda: "start: nothing due" in log_path.read_text(),
            time.time() + 60,
            again,
            "the start-up tick",
        )
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=60)
    err = log_path.read_text()
    assert again.returncode == 0, err
    assert "started" in err and "send group" not in err
    assert (got(ADA), got(BOB), got(CY)) == (1, 1, 0)
