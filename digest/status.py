"""`digest status`: recent runs, the workers and their claims, sources, each reader's last
digest (failures first), and the next sends."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from digest.clock import iso
from digest.config import Config
from digest.schedule import describe_instant
from digest.store import DigestRecord, ReaderSchedule, Store, WorkerRecord, due_now

# Failures first, then what is still in flight, then the healthy states.
_ORDER = {"failed": 0, "pending": 1, "sending": 2, "superseded": 3, "empty": 4, "sent": 5}
LIST_EACH_UP_TO = 50  # readers: beyond this, the healthy ones are counted, not listed


def render_status(store: Store, config: Config, *, now: datetime, runs: int = 5) -> str:
    lease = timedelta(seconds=config.digest.lease_seconds)
    workers = store.workers()
    alive = {w.id: w for w in workers if _alive(w, now, lease)}
    lines = ["recent runs:"]
    recent = store.recent_runs(runs)
    if not recent:
        lines.append("  none")
    for run in recent:
        if run.finished_at is not None:
            outcome = f"exit {run.exit_code}"
        elif run.worker in alive:
            outcome = f"running ({_who(alive[run.worker])})"
        else:
            outcome = "did not finish (killed?)"
        lines.append(f"  #{run.id} {run.command} {run.started_at}: {outcome}; {run.summary}")
    lines += _workers(workers, alive)
    lines += _claims(store, now)
    lines += _sources(store, config)
    lines += _readers(store)
    lines.append(f"papers known: {store.count_papers()}")
    return "\n".join(lines)


def _alive(worker: WorkerRecord, now: datetime, lease: timedelta) -> bool:
    if worker.stopped_at is not None:
        return False
    return datetime.fromisoformat(worker.heartbeat_at) >= now - lease


def _who(worker: WorkerRecord) -> str:
    return f"{worker.role} {worker.id} on {worker.host}, pid {worker.pid}"


def _workers(workers: Sequence[WorkerRecord], alive: dict[str, WorkerRecord]) -> list[str]:
    lines = ["workers:"]
    if not workers:
        lines.append("  none yet")
    for w in workers:
        state = (
            f"alive, last heartbeat {w.heartbeat_at}"
            if w.id in alive
            else f"stopped at {w.stopped_at}"
            if w.stopped_at
            else f"silent since {w.heartbeat_at} (died?)"
        )
        last = f"; last run: {w.last_run}" if w.last_run else ""
        lines.append(f"  {_who(w)}: started {w.started_at}, {state}{last}")
    return lines


def _claims(store: Store, now: datetime) -> list[str]:
    claims = store.claims()
    lines = [f"claims in flight: {len(claims)}"]
    for claim in claims[:10]:
        expired = " (expired: another worker takes it over)" if claim.until < iso(now) else ""
        lines.append(f"  {claim.subscriber}: worker {claim.worker} until {claim.until}{expired}")
    if len(claims) > 10:
        lines.append(f"  ... and {len(claims) - 10} more")
    return lines


def _sources(store: Store, config: Config) -> list[str]:
    lines = ["sources:"]
    states = {s.name: s for s in store.sources()}
    for source in config.sources:
        state = states.get(source.name)
        if state is None:
            lines.append(f"  {source.name}: never fetched")
        elif state.last_error:
            error = state.last_error.removeprefix(f"{source.name}: ")
            lines.append(
                f"  {source.name}: FAILED at {state.last_attempt}: {error} "
                f"(last good: {state.last_ok or 'never'})"
            )
        else:
            lines.append(f"  {source.name}: ok at {state.last_ok}")
    return lines


def _readers(store: Store) -> list[str]:
    readers = [r for r in store.reader_listing() if r.active and not r.unsubscribed_at]
    latest = {d.subscriber: d for d in store.latest_digests()}
    rows: list[tuple[int, str, str]] = []
    for reader in readers:
        record = latest.get(reader.email)
        if record is None:
            rows.append((6, reader.email, f"  {reader.email}: no digest yet"))
        else:
            order = _ORDER.get(record.status, 9)
            rows.append((order, reader.email, _digest_line(reader.email, record)))
    rows.sort()
    lines = ["subscribers (last digest):"]
    shown = rows if len(rows) <= LIST_EACH_UP_TO else [r for r in rows if r[0] <= 2]
    lines += [line for _, _, line in shown[:LIST_EACH_UP_TO]]
    if len(shown) < len(rows):
        counts = Counter(latest[r.email].status if r.email in latest else "none" for r in readers)
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        lines.append(f"  ({len(rows) - len(shown[:LIST_EACH_UP_TO])} more not listed: {summary})")
    if not readers:
        lines.append("  none: add a [[subscriber]] to the config, or `digest subscribers import`")
    left = [r for r in store.reader_listing() if r.unsubscribed_at]
    if left:
        lines.append("unsubscribed on the web (every run skips them):")
        for reader in left[:LIST_EACH_UP_TO]:
            gone = "" if reader.active else " (no longer in the config)"
            lines.append(f"  {reader.email} at {reader.unsubscribed_at}{gone}")
    return lines


def _digest_line(email: str, d: DigestRecord) -> str:
    line = f"  {email}: {d.digest_date} {d.status.upper() if d.status == 'failed' else d.status}"
    if d.paper_ids:
        line += f", {len(d.paper_ids)} paper{'s' if len(d.paper_ids) != 1 else ''}"
    if d.attempts:
        line += f", {d.attempts} attempt{'s' if d.attempts != 1 else ''}"
    if d.status == "sent" and d.sent_at:
        line += f", sent {d.sent_at}"
    if d.last_error:
        code = (
            f"{d.last_code} "
            if d.last_code and not d.last_error.startswith(str(d.last_code))
            else ""
        )
        line += f"; last reply: {code}{d.last_error}"
    return line


def render_schedule(
    store: Store | None,
    readers: Sequence[ReaderSchedule],
    *,
    now: datetime,
    lease: timedelta,
    catch_up_hours: float = 12.0,
) -> str:
    """Whether a daemon is running and, per reader, the next send in their zone and in UTC,
    and the digest due now or missed: judged as the daemon judges it when one runs (its
    catch-up window), else as send-now does (however late)."""
    catch_up = timedelta(hours=catch_up_hours)
    daemons = [
        w
        for w in (store.workers() if store is not None else [])
        if w.role == "daemon" and _alive(w, now, lease)
    ]
    if daemons:
        who = "; ".join(_who(w) for w in daemons)
        lines = [f"daemon: running ({who}); it sends each digest at its send time"]
    else:
        lines = ["daemon: not running (digests go out when send-now runs: timer, cron, by hand)"]
    waiting = _failing_sources(store)
    lines.append("next sends:")
    dues = due_now(store, readers, now, catch_up=catch_up if daemons else None)
    for reader, due in list(zip(readers, dues, strict=True))[:LIST_EACH_UP_TO]:
        line = f"  {reader.email}: {describe_instant(due.next_at, reader.tz)}"
        since = describe_instant(due.last_at, reader.tz)
        cadence = reader.cadence
        if due.paused_until is not None:
            line += f"; paused until {due.paused_until}"
        if cadence.weekly:
            line += f"; {dataclasses.replace(cadence, paused_until=None).describe()}"
        if due.date is not None:
            line += f"; due now: the digest of {due.date} (since {since})"
            if waiting:
                line += f", held back while {waiting} failed (see sources)"
            if not daemons and now - due.last_at > catch_up:
                line += (
                    f"; send-now sends it, but `digest run` would count it missed (more than "
                    f"catch_up_hours = {catch_up_hours:g} late) and put its papers into "
                    "the next digest"
                )
        elif due.missed is not None:
            line += (
                f"; missed: the digest of {due.missed} (due {since}, more than catch_up_hours = "
                f"{catch_up_hours:g} ago): its papers go into the next digest"
            )
        lines.append(line)
    if len(readers) > LIST_EACH_UP_TO:
        lines.append(f"  ... and {len(readers) - LIST_EACH_UP_TO} more")
    if not readers:
        lines.append("  none")
    return "\n".join(lines)


def _failing_sources(store: Store | None) -> str:
    """ "source hf-papers" / "sources a, b" whose last fetch failed ("" when none)."""
    failing = [s.name for s in (store.sources() if store is not None else []) if s.last_error]
    if not failing:
        return ""
    return f"source{'s' if len(failing) > 1 else ''} {', '.join(failing)}"
