"""The daemon's process: APScheduler's wake-ups, signals, the wall-clock watchdog, the web side.

exit_code = await serve(daemon)      # until SIGTERM / SIGINT; SIGHUP reloads the config
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time as _time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from digest.daemon.daemon import Daemon
from digest.daemon.plan import GroupKey, group_label
from digest.errors import DigestError
from digest.schedule import due_digest

log = logging.getLogger("digest.daemon")

CLOCK_JUMP = 60.0  # a wall clock this far ahead of the monotonic one means a suspend
WEB_BACKLOG = 2048  # uvicorn's default


class _Wakeups:
    """One APScheduler DateTrigger job per (time zone, send_at) group, at its next send
    instant as the due function resolves it (DST gaps and folds included), and one that
    fetches ahead of it (daemon.fetch_lead before)."""

    def __init__(self, daemon: Daemon, scheduler: Any) -> None:
        self.daemon = daemon
        self.scheduler = scheduler

    def arm(self) -> dict[GroupKey, Any]:
        """(Re)create every group's job; returns the groups and their next instants."""
        for job in self.scheduler.get_jobs():
            if job.id.startswith(("send ", "fetch before ")):
                job.remove()
        wakeups = self.daemon.next_wakeups()
        for key, at in wakeups.items():
            self._arm_group(key, at)
        self._arm_cadence()
        return wakeups

    def _arm_cadence(self) -> None:
        """The fetch-ahead every fetch_every_minutes (none when it is 0); a reload re-arms it."""
        if self.scheduler.get_job("fetch") is not None:
            self.scheduler.remove_job("fetch")
        if self.daemon.fetch_every > timedelta(0):
            self.scheduler.add_job(
                self.daemon.fetch_ahead,
                "interval",
                seconds=self.daemon.fetch_every.total_seconds(),
                args=["cadence"],
                id="fetch",
            )

    def _arm_group(self, key: GroupKey, at: Any) -> None:
        self.scheduler.add_job(
            self._fire,
            "date",
            run_date=at,
            args=[key],
            id=f"send {group_label(key)}",
            name=f"send {group_label(key)}",
            replace_existing=True,
        )
        lead = self.daemon.fetch_lead
        if lead > timedelta(0) and at - lead > self.daemon.clock():
            label = f"fetch before {group_label(key)}"
            self.scheduler.add_job(
                self.daemon.fetch_ahead,
                "date",
                run_date=at - lead,
                args=[label],
                id=label,
                name=label,
                replace_existing=True,
            )

    async def _fire(self, key: GroupKey) -> None:
        try:
            await self.daemon.tick("send time")
        finally:
            if not self.daemon.stop.is_set():
                # The group's next instant among its readers' cadences (weekly, paused); a
                # daily one when the state cannot say: never later than any of theirs.
                now = self.daemon.clock()
                try:
                    at = self.daemon.next_wakeups(now).get(key)
                except DigestError as exc:
                    log.warning("send %s: cannot read the schedules: %s", group_label(key), exc)
                    at = None
                self._arm_group(key, at or due_digest(ZoneInfo(key[0]), key[1], now).next_at)


async def serve(daemon: Daemon) -> int:
    """Run until SIGTERM/SIGINT, or until the state is gone or replaced. Returns the exit
    code."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    # The web side's secret and port first: a missing secret or a port in use is one line
    # and exit 2 before anything is logged as started or served.
    sock = _bind_web(daemon)
    try:
        daemon.attach()  # a state that cannot be used: one line and exit 2
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    loop = asyncio.get_running_loop()
    # coalesce + no grace limit: a job delayed by a suspend runs once when the loop wakes;
    # the due function's catch-up window decides whether it still sends.
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        timezone="UTC",
    )
    wakeups = _Wakeups(daemon, scheduler)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, daemon.request_stop, signal.Signals(signum).name)
    loop.add_signal_handler(signal.SIGHUP, _on_hup, daemon, wakeups)
    groups = wakeups.arm()
    retry = daemon.retry_every.total_seconds()
    scheduler.add_job(daemon.tick, "interval", seconds=retry, args=["retry"], id="retry")
    beat = max(daemon.lease.total_seconds() / 4, 0.5)
    scheduler.add_job(daemon.watch, "interval", seconds=beat, id="watch")
    scheduler.start()
    _log_started(daemon, groups)
    watchdog = asyncio.create_task(_watchdog(daemon, wakeups, scheduler))
    web = _start_web(daemon, sock)
    try:
        await daemon.tick("start")
        await daemon.fetch_ahead("start")  # nothing to do if the start's send group just fetched
        stopping = asyncio.create_task(daemon.stop.requested.wait())
        await asyncio.wait({stopping} | ({web} if web else set()), return_when="FIRST_COMPLETED")
        stopping.cancel()
        if web is not None and web.done() and (error := web.exception()) is not None:
            raise error  # the port is taken, ...
    finally:
        watchdog.cancel()
        if web is not None:
            daemon.stop.set("stopping")
            await asyncio.gather(web, return_exceptions=True)
        scheduler.pause()  # no new ticks
        async with daemon._tick_lock:  # the run in flight finishes its mails
            pass
        scheduler.shutdown(wait=False)  # only now: shutting down cancels running jobs' tasks
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        _leave(daemon)
    log.info("stopped")
    return daemon.exit_code


def _log_started(daemon: Daemon, groups: dict[GroupKey, Any]) -> None:
    next_sends = ", ".join(
        f"{group_label(k)} at {at:%Y-%m-%d %H:%M} UTC"
        for k, at in sorted(groups.items(), key=lambda kv: kv[1])
    )
    log.info(
        "started (pid %d, worker %s) on %s: %d send time%s; next: %s",
        os.getpid(),
        daemon.worker,
        daemon.config.digest.state,
        len(groups),
        "" if len(groups) == 1 else "s",
        next_sends or "none (no subscribers)",
    )


def _leave(daemon: Daemon) -> None:
    """This worker stops: its claims go now, not when their lease runs out."""
    try:
        with daemon._open() as store:
            store.stop_worker(daemon.worker, now=daemon.clock())
    except DigestError as exc:  # the state is gone: there is nothing to let go
        log.debug("could not mark the worker stopped: %s", exc)


def _bind_web(daemon: Daemon) -> socket.socket | None:
    """With [web]: the secret checked and [web] listen bound, or a DigestError saying why."""
    if daemon.config.web is None:
        return None
    from digest.web.server import bind_socket
    from digest.web.tokens import require_secret

    require_secret(daemon.config.web)
    sock = bind_socket(daemon.config.web)
    # Listening now: a connection made after the "serving" line waits in the backlog until
    # uvicorn, started right after, accepts it (its own listen() on this socket is a no-op).
    sock.listen(WEB_BACKLOG)
    return sock


def _start_web(daemon: Daemon, sock: socket.socket | None) -> asyncio.Task[None] | None:
    """With [web], the reader's side is served by this same process (digest.web), on the
    socket bound at start."""
    if daemon.config.web is None or sock is None:
        return None
    from digest.web.server import serve_web

    task = asyncio.create_task(serve_web(daemon.config, stop=daemon.stop.requested, sock=sock))
    log.info("serving the web side on http://%s", daemon.config.web.listen)
    return task


def _on_hup(daemon: Daemon, wakeups: _Wakeups) -> None:
    log.info("SIGHUP: reloading %s", daemon.config_path)
    if daemon.reload():
        groups = wakeups.arm()
        log.info("config reloaded: %d send time%s", len(groups), "" if len(groups) == 1 else "s")
        asyncio.get_running_loop().create_task(daemon.tick("reload"))


async def _watchdog(daemon: Daemon, wakeups: _Wakeups, scheduler: Any) -> None:
    """Compares the wall clock with the monotonic one (which stops during a suspend): when
    the wall clock jumped, tick at once instead of waiting for timers the suspend delayed."""
    wall, mono = daemon.clock(), _time.monotonic()
    while True:
        await asyncio.sleep(daemon.watchdog_every)
        new_wall, new_mono = daemon.clock(), _time.monotonic()
        jump = (new_wall - wall).total_seconds() - (new_mono - mono)
        wall, mono = new_wall, new_mono
        if abs(jump) > CLOCK_JUMP:
            log.warning("wall clock jumped by %+.0f s (suspend or clock change): catching up", jump)
            wakeups.arm()
            scheduler.wakeup()
            await daemon.tick("resume")
