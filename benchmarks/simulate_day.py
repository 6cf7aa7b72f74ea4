"""Print the daemon's log for a simulated day: three subscribers in three time zones.

    python benchmarks/simulate_day.py [--start "2026-10-24 12:00"] [--hours 36]

Drives `Daemon.tick` with an injected clock: a tick every 15 minutes (the retry job) and one at
each group's send instant (the date jobs), exactly what `digest run` does in real time. The HF
page is a local file whose papers change at 03:00 UTC each day; the source is down from 06:00 to
07:00 UTC on the second day (Berlin's send time) to show a held-back digest and its retry.
Mails go to an outbox folder. Log lines carry the simulated time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.config import load_config  # noqa: E402
from digest.daemon import Daemon  # noqa: E402
from digest.run import Deps, RunOptions  # noqa: E402
from tests.support.helpers import hf_items, hf_page, write_config  # noqa: E402

SUBSCRIBERS = [
    {"email": "ada@example.org", "timezone": "Europe/Berlin", "send_at": "07:30"},
    {"email": "bob@example.org", "timezone": "America/Los_Angeles", "send_at": "07:00"},
    {"email": "kai@example.org", "timezone": "Asia/Tokyo", "send_at": "08:00"},
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--start", default="2026-10-24 12:00", help="UTC")
    parser.add_argument("--hours", type=int, default=36)
    args = parser.parse_args()
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    end = start + timedelta(hours=args.hours)
    now = [start]

    class SimulatedTime(logging.Formatter):
        def formatTime(self, record, datefmt=None):  # noqa: N802
            return now[0].strftime("%Y-%m-%d %H:%M:%S UTC")

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(SimulatedTime("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])

    items = hf_items()
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "papers.html"
        config = load_config(
            write_config(
                Path(tmp) / "digest.toml",
                sources=[{"type": "hf-papers", "url": "papers.html"}],
                subscribers=SUBSCRIBERS,
                delivery={"method": "outbox", "outbox": "outbox"},
            )
        )
        daemon = Daemon(
            config,
            Deps(clock=lambda: now[0]),
            run_options=RunOptions(fetch_backoff=0, fetch_retries=1),
        )
        stops = {start + timedelta(minutes=15 * i) for i in range(args.hours * 4)}
        for day in range(args.hours // 24 + 2):
            stops |= set(daemon.next_wakeups(start + timedelta(days=day)).values())
        stops |= {start.replace(hour=3, minute=0) + timedelta(days=d) for d in range(3)}
        outage = (
            start.replace(hour=6) + timedelta(days=1),
            start.replace(hour=7) + timedelta(days=1),
        )

        async def run() -> None:
            batch = 0
            for moment in sorted(t for t in stops if start <= t < end):
                now[0] = moment
                if moment.hour == 3 and moment.minute == 0:
                    batch += 1  # a new day's papers on the page
                if outage[0] <= moment < outage[1]:
                    page.unlink(missing_ok=True)
                else:
                    lo = (batch * 6) % (len(items) - 6)
                    page.write_text(hf_page(items[lo : lo + 6]), encoding="utf-8")
                await daemon.tick("start" if moment == start else _reason(daemon, moment))

        asyncio.run(run())
        sent = sorted(p.name for p in (Path(tmp) / "outbox").glob("*.eml"))
        print(f"\noutbox: {len(sent)} digests")
        for name in sent:
            print(f"  {name}")


def _reason(daemon: Daemon, moment: datetime) -> str:
    wakeups = daemon.next_wakeups(moment - timedelta(seconds=1)).values()
    return "send time" if moment in wakeups else "retry"


if __name__ == "__main__":
    main()
