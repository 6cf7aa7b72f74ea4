"""The Daemon: decides at each wake-up (a tick) which digests are due, and sends them in one
run. The process around it (the scheduler, signals, the web side) is digest.daemon.process."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time as _time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from digest.clock import fixed
from digest.config import Config, load_config
from digest.daemon.plan import GroupKey, next_wakeups, plan_tick
from digest.daemon.report import log_fetch, log_group, log_missed
from digest.deliver import Stop
from digest.errors import EXIT_OK, EXIT_USAGE, DigestError, StateReplaced
from digest.run import Deps, RunOptions, RunReport, run_digest
from digest.run.ahead import AheadReport, fetch_ahead
from digest.run.claims import new_worker_id, register
from digest.store import ReaderSchedule, Store

log = logging.getLogger("digest.daemon")

RETRY_EVERY = timedelta(minutes=15)
# The fetch ahead of a send group runs this long before its send time (at most 3/5 of the
# reuse window, so the send group uses that fetch as it is).
FETCH_LEAD = timedelta(minutes=3)
WATCHDOG_EVERY = 30.0  # seconds between wall-clock checks


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
        self.worker = new_worker_id()  # this daemon, among the workers sharing the state
        self.state_id = ""  # the state it took up (attach): a replaced one stops it
        self.exit_code = EXIT_OK
        self.stop = Stop.new()
        self._tick_lock = asyncio.Lock()
        self._missed_logged: set[tuple[str, date]] = set()
        self._gave_up: set[tuple[str, date]] = set()  # refused for good: not retried in a loop
        self._scheduler: Any = None
        self._takeover: asyncio.Future[None] | None = None

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.config.digest.lease_seconds)

    @property
    def reuse(self) -> timedelta:
        """A fetch younger than this is used as it is (by a send group, or the cadence)."""
        return timedelta(minutes=self.config.digest.fetch_reuse_minutes)

    @property
    def fetch_every(self) -> timedelta:
        """The fetch-ahead cadence (0: only before each send group)."""
        return timedelta(minutes=self.config.digest.fetch_every_minutes)

    @property
    def fetch_lead(self) -> timedelta:
        """How long before a send group its fetch-ahead runs (0: the send fetches itself)."""
        return min(FETCH_LEAD, self.reuse * 3 / 5)

    # --- the state ------------------------------------------------------------------------

    def _open(self, *, create: bool = False) -> Store:
        return (self.deps.state or Store).open(self.config.digest.state, create=create)

    def attach(self) -> None:
        """Take up the state: the config's readers synced in, this daemon registered as a
        worker, and the state's identity noted."""
        with self._open(create=True) as store:
            store.sync_config_readers(
                self.config.subscribers,
                now=self.clock(),
                lookback_days=self.config.digest.lookback_days,
            )
            register(store, self.worker, "daemon", self.clock)
            self.state_id = store.state_id()

    def _same_state(self, store: Store) -> None:
        if store.state_id() != self.state_id:
            raise StateReplaced(
                f"the state {self.config.digest.state} is not the one this daemon started "
                "with (it was replaced); nothing more is sent, so no digest goes out twice",
                fix="restart the daemon to use this state on purpose",
            )

    def _fatal(self, exc: DigestError) -> None:
        """The state this daemon works on is gone or was replaced: stop, loudly."""
        log.error("stopping: %s", exc)
        self.exit_code = EXIT_USAGE
        self.stop.set(str(exc))

    # --- deciding and sending ------------------------------------------------------------

    async def tick(self, reason: str) -> RunReport | None:
        """Send every digest due now, all in one run (one fetch). Ticks never overlap."""
        async with self._tick_lock:
            if self.stop.is_set():
                return None
            if not self.state_id:
                self.attach()
            now = self.clock()
            catch_up = timedelta(hours=self.config.digest.catch_up_hours)
            try:
                with self._open() as store:
                    self._same_state(store)
                    plan = plan_tick(store, store.reader_schedules(), now, catch_up=catch_up)
            except StateReplaced as exc:
                self._fatal(exc)
                return None
            except DigestError as exc:
                log.error("%s: cannot read the state: %s", reason, exc)
                return None
            for reader, missed in plan.missed:
                assert missed.missed is not None
                if (reader.email.lower(), missed.missed) not in self._missed_logged:
                    self._missed_logged.add((reader.email.lower(), missed.missed))
                    log_missed(reader, missed, now, self.config.digest.catch_up_hours)
            due = [(s, d) for s, d in plan.due if (s.email.lower(), d) not in self._gave_up]
            if not due:
                # Said at start and after a reload, when someone is watching; quiet otherwise.
                level = logging.INFO if reason in ("start", "reload") else logging.DEBUG
                log.log(level, "%s: nothing due", reason)
                return None
            return await self._send(reason, due, now, catch_up)

    async def _send(
        self,
        reason: str,
        due: list[tuple[ReaderSchedule, date]],
        now: datetime,
        catch_up: timedelta,
    ) -> RunReport | None:
        options = dataclasses.replace(
            self.run_options,
            command="run",
            only=tuple(s.email for s, _ in due),
            catch_up=catch_up,
            defer_on_source_failure=True,
            worker_id=self.worker,
            wait_for_others=False,  # the takeover watch looks after readers others hold
            state_id=self.state_id,
            fetch_reuse=self.reuse,
            sync_readers=False,  # synced when the daemon started and on each reload
        )
        # The whole send group is one run at one moment: the moment this tick decided.
        deps = dataclasses.replace(self.deps, clock=fixed(now))
        started = _time.monotonic()
        try:
            report = await run_digest(self.config, options, deps, stop=self.stop)
        except StateReplaced as exc:
            self._fatal(exc)
            return None
        except DigestError as exc:
            log.error("%s: send group of %d failed: %s", reason, len(due), exc)
            return None
        log_group(reason, due, report, now, _time.monotonic() - started)
        for sub_report in report.subscribers:
            if sub_report.status == "failed" and sub_report.digest_date:
                key = (sub_report.email.lower(), date.fromisoformat(sub_report.digest_date))
                self._gave_up.add(key)
        return report

    async def fetch_ahead(self, reason: str) -> AheadReport | None:
        """Fetch every source not fetched within the reuse window, record what is new, and
        embed the new papers and the new or changed profiles: the next send group finds the
        day ready. Sends nothing; shares the tick lock, so a send waits for it to finish."""
        async with self._tick_lock:
            if self.stop.is_set():
                return None
            if not self.state_id:
                self.attach()
            now = self.clock()
            options = dataclasses.replace(
                self.run_options,
                command="fetch",
                worker_id=self.worker,
                state_id=self.state_id,
                fetch_reuse=self.reuse,
            )
            deps = dataclasses.replace(self.deps, clock=fixed(now))
            started = _time.monotonic()
            try:
                report = await fetch_ahead(
                    self.config, options, deps, stop=self.stop, record_run=False
                )
            except StateReplaced as exc:
                self._fatal(exc)
                return None
            except DigestError as exc:
                log.error("%s fetch: cannot use the state: %s", reason, exc)
                return None
            log_fetch(reason, report, now, _time.monotonic() - started)
            return report

    async def watch(self) -> None:
        """The heartbeat: this daemon is alive (and its claims with it); and the takeover
        watch: a claim that expired was left by a worker that died, so its readers are sent
        from here."""
        if not self.state_id or self.stop.is_set():
            return
        try:
            with self._open() as store:
                self._same_state(store)
                now = self.clock()
                store.heartbeat(self.worker, now=now, until=now + self.lease)
                expired = store.expired_claims(now)
        except StateReplaced as exc:
            self._fatal(exc)
            return
        except DigestError as exc:
            log.warning("heartbeat: cannot reach the state: %s", exc)
            return
        if expired and self._takeover is None:
            log.warning(
                "takeover: %d digest%s left by a worker that stopped beating",
                len(expired),
                "" if len(expired) == 1 else "s",
            )
            # In a task of its own: the watch keeps its beat while the takeover sends.
            self._takeover = asyncio.ensure_future(self._take_over())

    async def _take_over(self) -> None:
        try:
            await self.tick("takeover")
            with self._open() as store:  # those it found nothing due for: let them go
                store.clear_expired_claims(self.clock())
        except DigestError as exc:
            log.warning("takeover: %s", exc)
        finally:
            self._takeover = None

    # --- the schedule ----------------------------------------------------------------------

    def next_wakeups(self, now: datetime | None = None) -> dict[GroupKey, datetime]:
        """Each distinct (time zone, send_at) of the readers, and its next send instant after
        `now` (default: the clock's)."""
        if not self.state_id:
            self.attach()
        with self._open() as store:
            readers = store.reader_schedules()
        return next_wakeups(readers, now or self.clock())

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
                "reload refused, keeping the running config: the state changed "
                "(%s -> %s); restart the daemon to move it",
                self.config.digest.state,
                new.digest.state,
            )
            return False
        self.config = new
        if not self.state_id:
            self.attach()  # syncs the readers too
            return True
        try:
            with self._open() as store:
                self._same_state(store)
                store.sync_config_readers(
                    new.subscribers, now=self.clock(), lookback_days=new.digest.lookback_days
                )
        except StateReplaced as exc:
            self._fatal(exc)
            return False
        return True

    def request_stop(self, signame: str) -> None:
        if not self.stop.is_set():
            log.info("%s: finishing the mails in flight, then exiting", signame)
        self.stop.set(f"stopped by {signame}")
