"""`digest status`: recent runs, sources, each subscriber's last digest (failures first), the
next scheduled sends, and whether the daemon is running."""

from __future__ import annotations

from datetime import datetime

from digest.config import Config
from digest.lock import DAEMON, read_holder
from digest.schedule import describe_instant
from digest.store import DigestRecord, Store, due_now

# Failures first, then what is still in flight, then the healthy states.
_ORDER = {"failed": 0, "pending": 1, "sending": 2, "superseded": 3, "empty": 4, "sent": 5}


def render_status(
    store: Store, config: Config, *, runs: int = 5, running_pid: int | None = None
) -> str:
    """`running_pid`: the process holding the run lock now (lock.lock_holder), if any: the
    newest unfinished run is that one, running; older unfinished ones were killed."""
    lines = ["recent runs:"]
    recent = store.recent_runs(runs)
    if not recent:
        lines.append("  none")
    live = next((r.id for r in recent if r.finished_at is None), None) if running_pid else None
    for run in recent:
        if run.finished_at is not None:
            outcome = f"exit {run.exit_code}"
        elif run.id == live:
            outcome = f"running (pid {running_pid})" if running_pid else "running"
        else:
            outcome = "did not finish (killed?)"
        lines.append(f"  #{run.id} {run.command} {run.started_at}: {outcome}; {run.summary}")

    lines.append("sources:")
    states = {s.name: s for s in store.sources()}
    for source in config.sources:
        state = states.get(source.name)
        if state is None:
            lines.append(f"  {source.name}: never fetched")
        elif state.last_error:
            lines.append(
                f"  {source.name}: FAILED at {state.last_attempt}: {state.last_error} "
                f"(last good: {state.last_ok or 'never'})"
            )
        else:
            lines.append(f"  {source.name}: ok at {state.last_ok}")

    lines.append("subscribers (last digest):")
    latest = {d.subscriber: d for d in store.latest_digests()}
    rows: list[tuple[int, str, str]] = []
    for sub in config.subscribers:
        record = latest.get(sub.email.lower())
        if record is None:
            rows.append((6, sub.email, f"  {sub.email}: no digest yet"))
        else:
            rows.append((_ORDER.get(record.status, 9), sub.email, _digest_line(sub.email, record)))
    for _, _, line in sorted(rows):
        lines.append(line)
    if not config.subscribers:
        lines.append("  none configured")
    unsubscribed = store.unsubscribed()
    if unsubscribed:
        lines.append("unsubscribed on the web (every run skips them):")
        for email, when in sorted(unsubscribed.items()):
            listed = any(s.email.lower() == email for s in config.subscribers)
            lines.append(f"  {email} at {when}{'' if listed else ' (no longer in the config)'}")
    lines.append(f"papers known: {store.count_papers()}")
    return "\n".join(lines)


def _digest_line(email: str, d: DigestRecord) -> str:
    line = f"  {email}: {d.digest_date} {d.status.upper() if d.status == 'failed' else d.status}"
    if d.paper_ids:
        line += f", {len(d.paper_ids)} papers"
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


def render_schedule(store: Store | None, config: Config, *, now: datetime) -> str:
    """The daemon's state and, per subscriber, the next send in their zone and in UTC."""
    holder = read_holder(config.digest.state)
    if holder is not None and holder.held and holder.role == DAEMON:
        lines = [f"daemon: running (pid {holder.pid}); it sends each digest at its send time"]
    elif holder is not None and holder.held:
        lines = [f"daemon: not running; a {holder.role} run (pid {holder.pid}) is sending now"]
    else:
        lines = ["daemon: not running (digests go out when send-now runs: timer, cron, by hand)"]
    lines.append("next sends:")
    for sub, due in zip(config.subscribers, due_now(store, config.subscribers, now), strict=True):
        line = f"  {sub.email}: {describe_instant(due.next_at, sub.tz)}"
        if due.date is not None:
            since = describe_instant(due.last_at, sub.tz)
            line += f"; due now: the digest of {due.date} (since {since})"
        lines.append(line)
    if not config.subscribers:
        lines.append("  none configured")
    return "\n".join(lines)
