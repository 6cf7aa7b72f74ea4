"""`digest run`: the scheduler daemon. Each subscriber gets their digest at their `send_at`, in
their time zone, from a long-running process.

How it decides: never by itself. Every wake-up ("tick") asks `digest.schedule.due_digest`, with
the config's `catch_up_hours` as the window, which subscribers have a digest due *now*, and
sends all of them in one `run_digest` (one fetch of the sources). So the daemon, `send-now`
from a timer, and a restart all agree on what is due, and a tick that finds nothing due does
nothing. Wake-ups come from:

- one APScheduler job per distinct (time zone, send_at), a DateTrigger at that group's next
  send instant as the due function resolves it (DST gaps and folds included), re-armed after
  each firing. Groups whose instants coincide (07:30 Berlin and 06:30 London) are both sent by
  the first tick: one fetch;
- a tick at start and after a SIGHUP reload (catch-up: a send time that passed while the
  daemon was down is sent once, within the window; older ones are logged as missed and their
  papers go into the next digest; nothing is lost);
- a retry tick every 15 minutes: a digest still due (a source failed: the daemon holds the
  digests back rather than send them without that source; or the mail server deferred) is
  retried until sent or until its catch-up window closes;
- a watchdog comparing the wall clock with the monotonic clock (which stops during a
  suspend): when the wall clock jumped, it ticks at once instead of waiting for timers that
  the suspend delayed.

- the watch every lease / 4: the heartbeat (this daemon is alive, and its claims with it),
  and the takeover of readers whose claim expired (their worker died).

Ahead of the send times, `fetch_ahead()` fetches every source, records what is new and embeds
the new papers and the new or changed profiles (digest.run.ahead): every
`fetch_every_minutes`, at start, and `fetch_lead` (3 minutes) before each send group, so the
send group finds the day ready and uses that fetch as it is (younger than
`fetch_reuse_minutes`). It shares the tick lock: a send waits for a fetch in progress.

Any number of daemons (and send-nows) share one state: each reader's digest is claimed by one
worker (digest.store.workers), never by a lock on the whole state. A daemon that finds the
state gone or replaced stops with exit 2 rather than send every digest again.

Modules: plan (what a tick finds due), daemon (the Daemon: ticks, sends, the watch), process
(the scheduler, signals, the watchdog, the web side), report (its log lines). What it works
with comes in through Deps (its clock among them: the watchdog reads the wall clock from it
too), and `tick()` can be driven directly, so tests run a simulated day in milliseconds.
"""

from __future__ import annotations

import asyncio

from digest.config import Config
from digest.daemon.daemon import Daemon
from digest.daemon.plan import GroupKey, Plan, group_key, group_label, next_wakeups, plan_tick
from digest.daemon.process import serve
from digest.run import Deps

__all__ = [
    "Daemon",
    "GroupKey",
    "Plan",
    "group_key",
    "group_label",
    "next_wakeups",
    "plan_tick",
    "run_daemon",
    "serve",
]


def run_daemon(config: Config, deps: Deps | None = None) -> int:
    """The `digest run` entry point: serve until stopped (SIGHUP reloads config.path)."""
    return asyncio.run(serve(Daemon(config, deps)))
