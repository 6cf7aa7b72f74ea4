"""`digest run`: the scheduler daemon. Each subscriber gets their digest at their `send_at`, in
their time zone, from one long-running process.

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

Fetches are not cached between ticks: ticks at the same moment already share one run, and a
repeated fetch minutes later is a conditional GET (ETag / Last-Modified) that costs the
server one small reply; the papers already recorded are not recorded again.

The daemon holds the state lock for its whole life (see digest.lock). What it works with comes
in through Deps (its clock among them: the watchdog reads the wall clock from it too), and
`tick()` can be driven directly, so tests run a simulated day in milliseconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import time as _time
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from digest.clock import fixed
from digest.config import Config, Subscriber, load_config
from digest.deliver import Stop
from digest.errors import EXIT_OK, DigestError
from digest.lock import DAEMON, async_run_lock
from digest.run import Deps, RunOptions, RunReport, run_digest
from digest.schedule import Due, describe_instant, due_digest
from digest.store import Store, due_now

log = logging.getLogger("digest.daemon")

GroupKey = tuple[str, time]  # (time zone name, send_at)

RETRY_EVERY = timedelta(minutes=15)
WATCHDOG_EVERY = 30.0  # seconds between wall-clock checks
CLOCK_JUMP = 60.0  # a wall clock this far ahead of the monotonic one means a suspend


@dataclass(frozen=True)
class Plan:
    """What a tick found: the digests due now, and the ones missed (outside the window)."""

    due: list[tuple[Subscriber, date]] = field(default_factory=list)
    missed: list[tuple[Subscriber, Due]] = field(default_factory=list)


def plan_tick(config: Config, store: Store | None, now: datetime) -> Plan:
    """Which subscribers have a digest due at `now` (and which were missed). Reads only."""
    catch_up = timedelta(hours=config.digest.catch_up_hours)
    plan = Plan()
    subscribers = config.subscribers
    for sub, due in zip(
        subscribers, due_now(store, subscribers, now, catch_up=catch_up), strict=True
    ):
        if due.date is not None:
            plan.due.append((sub, due.date))
        elif due.missed is not None:
            plan.missed.append((sub, due))
    return plan


def group_key(sub: Subscriber) -> GroupKey:
    return (sub.timezone, sub.send_at)


def group_label(key: GroupKey) -> str:
    return f"{key[1]:%H:%M} {key[0]}"


class Daemon:
    def __init__(
        self,
        config: Config,
        deps: Deps | None = None,
        *,
        config_path: Path | None = None,
        retry_every: timedelta = RETRY_EVERY,
        watchdog_every: float = WATCHDOG_EVERY,
        run_options: RunOptions | None = None,
    ) -> None:
        """`run_options`: what each send group's run starts from (its fetch retries, say);
        the daemon sets what is its own (who, when, the catch-up window)."""
        self.config = config
        self.config_path = config_path or config.path
        self.deps = deps or Deps()
        self.clock = self.deps.clock
        self.retry_every = retry_every
        self.watchdog_every = watchdog_every
        self.run_options = run_options or RunOptions()
        self.stop = Stop.new()
        self._tick_lock = asyncio.Lock()
        self._missed_logged: set[tuple[str, date]] = set()
        self._gave_up: set[tuple[str, date]] = set()  # refused for good: not retried in a loop
        self._scheduler: Any = None

    # --- deciding and sending ------------------------------------------------------------

    async def tick(self, reason: str) -> RunReport | None:
        """Send every digest due now, all in one run (one fetch). Ticks never overlap."""
        async with self._tick_lock:
            if self.stop.is_set():
                return None
            config = self.config
            now = self.clock()
            with _open_store(config) as store:
                plan = plan_tick(config, store, now)
            self._log_missed(plan, now)
            due = [(s, d) for s, d in plan.due if (s.email.lower(), d) not in self._gave_up]
            if not due:
                # Said at start and after a reload, when someone is watching; quiet otherwise.
                level = logging.INFO if reason in ("start", "reload") else logging.DEBUG
                log.log(level, "%s: nothing due", reason)
                return None
            options = dataclasses.replace(
                self.run_options,
                command="run",
                only=tuple(s.email for s, _ in due),
                catch_up=timedelta(hours=config.digest.catch_up_hours),
                defer_on_source_failure=True,
                lock_held=True,
            )
            # The whole send group is one run at one moment: the moment this tick decided.
            deps = dataclasses.replace(self.deps, clock=fixed(now))
            started = _time.monotonic()
            try:
                report = await run_digest(config, options, deps, stop=self.stop)
            except DigestError as exc:
                log.error("%s: send group of %d failed: %s", reason, len(due), exc)
                return None
            self._log_group(reason, due, report, now, _time.monotonic() - started)
            for sub_report in report.subscribers:
                if sub_report.status == "failed" and sub_report.digest_date:
                    key = (sub_report.email.lower(), date.fromisoformat(sub_report.digest_date))
                    self._gave_up.add(key)
            return report

    def _log_missed(self, plan: Plan, now: datetime) -> None:
        for sub, due in plan.missed:
            assert due.missed is not None
            key = (sub.email.lower(), due.missed)
            if key in self._missed_logged:
                continue
            self._missed_logged.add(key)
            late = now - due.last_at
            log.warning(
                "missed: %s digest %s (due %s, %s ago, beyond catch_up_hours = %g); "
                "its papers go into the next digest, due %s",
                sub.email,
                due.missed,
                describe_instant(due.last_at, sub.tz),
                _hours(late),
                self.config.digest.catch_up_hours,
                describe_instant(due.next_at, sub.tz),
            )

    def _log_group(
        self,
        reason: str,
        due: list[tuple[Subscriber, date]],
        report: RunReport,
        now: datetime,
        seconds: float,
    ) -> None:
        groups = sorted({group_label(group_key(s)) for s, _ in due})
        counts: dict[str, int] = {}
        for sub_report in report.subscribers:
            counts[sub_report.status] = counts.get(sub_report.status, 0) + 1
        outcome = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        failed_sources = [s.name for s in report.sources if s.status == "failed"]
        line = (
            f"send group {' + '.join(groups)} ({reason}) at {now:%Y-%m-%d %H:%M} UTC: "
            f"{len(due)} due: {outcome}; {report.new_papers} papers first seen; {seconds:.1f} s"
        )
        if failed_sources:
            line += f"; failed sources: {', '.join(failed_sources)} (retrying within the window)"
        if report.fatal is not None:
            line += f"; {report.fatal}"
        problem = failed_sources or report.fatal or report.exit_code != EXIT_OK
        log.log(logging.WARNING if problem else logging.INFO, "%s", line)
        for sub_report in report.subscribers:
            if sub_report.status in ("pending", "failed") and sub_report.detail:
                log.warning("  %s: %s (%s)", sub_report.email, sub_report.status, sub_report.detail)

    # --- the schedule --------------------------------------------------------------------

    def next_wakeups(self, now: datetime) -> dict[GroupKey, datetime]:
        """Each distinct (time zone, send_at) and its next send instant after `now`."""
        wakeups: dict[GroupKey, datetime] = {}
        for sub in self.config.subscribers:
            key = group_key(sub)
            if key not in wakeups:
                wakeups[key] = due_digest(ZoneInfo(key[0]), key[1], now).next_at
        return wakeups

    def _arm(self) -> None:
        """(Re)create one DateTrigger job per group at its next send instant."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        for job in scheduler.get_jobs():
            if job.id.startswith("send "):
                job.remove()
        for key, at in self.next_wakeups(self.clock()).items():
            self._arm_group(scheduler, key, at)

    def _arm_group(self, scheduler: Any, key: GroupKey, at: datetime) -> None:
        """One wake-up at the group's next send instant (replacing the one it had)."""
        scheduler.add_job(
            self._fire,
            "date",
            run_date=at,
            args=[key],
            id=f"send {group_label(key)}",
            name=f"send {group_label(key)}",
            replace_existing=True,
        )

    async def _fire(self, key: GroupKey) -> None:
        try:
            await self.tick("send time")
        finally:
            if not self.stop.is_set() and self._scheduler is not None:
                at = due_digest(ZoneInfo(key[0]), key[1], self.clock()).next_at
                self._arm_group(self._scheduler, key, at)

    # --- signals -------------------------------------------------------------------------

    def reload(self) -> bool:
        """SIGHUP: load the config again; a broken one is refused and the old one kept."""
        try:
            new = load_config(self.config_path)
        except DigestError as exc:
            log.error("reload refused, keeping the running config: %s", exc)
            return False
        if new.digest.state != self.config.digest.state:
            log.error(
                "reload refused, keeping the running config: the state file changed "
                "(%s -> %s); restart the daemon to move it",
                self.config.digest.state,
                new.digest.state,
            )
            return False
        self.config = new
        self._arm()
        log.info(
            "config reloaded: %d subscribers, %d send times",
            len(new.subscribers),
            len(self.next_wakeups(self.clock())),
        )
        return True

    def request_stop(self, signame: str) -> None:
        if not self.stop.is_set():
            log.info("%s: finishing the mails in flight, then exiting", signame)
        self.stop.set(f"stopped by {signame}")

    # --- the process ---------------------------------------------------------------------

    async def serve(self, *, lock_timeout: float = 600.0) -> int:
        """Run until SIGTERM/SIGINT. Holds the state lock throughout. Returns the exit code."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        async with async_run_lock(self.config.digest.state, timeout=lock_timeout, role=DAEMON):
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.request_stop, signal.Signals(signum).name)
            loop.add_signal_handler(signal.SIGHUP, self._on_hup)
            # coalesce + no grace limit: a job delayed by a suspend runs once when the loop
            # wakes; the due function's catch-up window decides whether it still sends.
            self._scheduler = AsyncIOScheduler(
                job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
                timezone="UTC",
            )
            self._arm()
            self._scheduler.add_job(
                self.tick,
                "interval",
                seconds=self.retry_every.total_seconds(),
                args=["retry"],
                id="retry",
            )
            self._scheduler.start()
            wakeups = self.next_wakeups(self.clock())
            log.info(
                "started (pid %d, holding the lock of %s): %d subscribers, %d send times; next: %s",
                os.getpid(),
                self.config.digest.state,
                len(self.config.subscribers),
                len(wakeups),
                ", ".join(
                    f"{group_label(k)} at {at:%Y-%m-%d %H:%M} UTC"
                    for k, at in sorted(wakeups.items(), key=lambda kv: kv[1])
                )
                or "none (no subscribers)",
            )
            watchdog = asyncio.create_task(self._watchdog())
            web = self._start_web()
            try:
                await self.tick("start")
                stopping = asyncio.create_task(self.stop.requested.wait())
                waiting = {stopping} | ({web} if web else set())
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if web is not None and web.done() and web.exception() is not None:
                    raise web.exception()  # type: ignore[misc]  # the port is taken, ...
            finally:
                watchdog.cancel()
                if web is not None:
                    self.stop.set("stopping")
                    await asyncio.gather(web, return_exceptions=True)
                self._scheduler.pause()  # no new ticks
                async with self._tick_lock:  # the run in flight finishes its mails
                    pass
                # only now: shutting down cancels the tasks of running jobs
                self._scheduler.shutdown(wait=False)
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    loop.remove_signal_handler(signum)
        log.info("stopped")
        return EXIT_OK

    def _start_web(self) -> asyncio.Task[None] | None:
        """With [web], the reader's side is served by this same process (digest.web); the app
        keeps the subscriber list it started with until the daemon restarts."""
        if self.config.web is None:
            return None
        from digest.web.server import serve_web

        log.info("serving the web side on http://%s", self.config.web.listen)
        return asyncio.create_task(serve_web(self.config, stop=self.stop.requested))

    def _on_hup(self) -> None:
        log.info("SIGHUP: reloading %s", self.config_path)
        if self.reload():
            asyncio.get_running_loop().create_task(self.tick("reload"))

    async def _watchdog(self) -> None:
        wall, mono = self.clock(), _time.monotonic()
        while True:
            await asyncio.sleep(self.watchdog_every)
            new_wall, new_mono = self.clock(), _time.monotonic()
            jump = (new_wall - wall).total_seconds() - (new_mono - mono)
            wall, mono = new_wall, new_mono
            if abs(jump) > CLOCK_JUMP:
                log.warning(
                    "wall clock jumped by %+.0f s (suspend or clock change): catching up", jump
                )
                self._arm()
                if self._scheduler is not None:
                    self._scheduler.wakeup()
                await self.tick("resume")


class _open_store:  # noqa: N801 - used like a function
    """The store for a read, or None before the first run created it."""

    def __init__(self, config: Config) -> None:
        self.store = Store.open(config.digest.state) if config.digest.state.exists() else None

    def __enter__(self) -> Store | None:
        return self.store

    def __exit__(self, *exc: object) -> None:
        if self.store is not None:
            self.store.close()


def _hours(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}"


def run_daemon(config: Config, deps: Deps | None = None) -> int:
    """The `digest run` entry point: serve until stopped (SIGHUP reloads config.path)."""
    return asyncio.run(Daemon(config, deps).serve())
