"""The sentences of a digest that depend on the whole digest: subject, preheader, lead-in, the
profile line. Plain strings in, plain strings out (the templates escape them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date

from digest.render.clean import trim

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SUBJECT_TITLE_CHARS = 70
PREHEADER_CHARS = 110
LEAD_TOPICS = 4
WEEKLY = "Your weekly digest: "  # how a weekly digest's subject and lead-in begin


def day_label(day: date) -> str:
    """ "Tue 24 Nov" (English whatever the locale)."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def subject(titles: Sequence[str], day: date, *, weekly: bool = False) -> str:
    """ "Switchable Latent Reasoning + 13 more · Tue 24 Nov": the top paper and the count
    ("Your weekly digest: ..." for a weekly reader)."""
    if not titles:
        return f"Paper digest: nothing new {_when(weekly)} · {day_label(day)}"
    head = trim(titles[0], SUBJECT_TITLE_CHARS)
    more = f" + {len(titles) - 1} more" if len(titles) > 1 else ""
    return f"{WEEKLY if weekly else ''}{head}{more} · {day_label(day)}"


def topic_counts(topics: Sequence[str]) -> list[tuple[str, int]]:
    """Each paper's main topic (its strongest matched term; "" for none), counted, most first,
    in order of first appearance among equals."""
    counts = Counter(t for t in topics if t)
    order = {t: i for i, t in reversed(list(enumerate(topics)))}
    return sorted(counts.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def lead_in(
    count: int,
    topics: list[tuple[str, int]],
    *,
    ranked: bool,
    candidates: int,
    weekly: bool = False,
) -> str:
    """What today (or this week) holds: "4 on LLM agents, 3 on RL and 2 more." / the
    no-keywords wording; a weekly digest says it is one."""
    when = _when(weekly)
    if count == 0:
        nothing = f"{WEEKLY}nothing new this week; " if weekly else "Nothing new today: "
        if candidates:
            noun = "paper" if candidates == 1 else "papers"
            return f"{nothing}none of the {candidates} new {noun} matched your interests."
        return f"{nothing}no new papers appeared since your last digest."
    head = WEEKLY if weekly else ""
    if not ranked:
        noun = "paper" if count == 1 else "papers"
        most = "the" if weekly else "The"
        return (
            f"{head}{most} {count} most upvoted new {noun} on Hugging Face {when}. "
            "You have no keywords yet, so nothing is ranked for you."
        )
    shown = topics[:LEAD_TOPICS]
    parts = [f"{n} on {topic}" for topic, n in shown]
    rest = count - sum(n for _, n in shown)
    noun = "paper" if count == 1 else "papers"
    if not parts:
        return f"{head}{count} new {noun} for you {when}."
    if rest:
        parts.append(f"{rest} more")
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{head}{count} new {noun} for you {when}{', ' if weekly else ': '}{text}."


def preheader(
    titles: Sequence[str], topics: list[tuple[str, int]], *, ranked: bool, weekly: bool = False
) -> str:
    """The inbox preview line: the topics, then the top title (never just the count again)."""
    if not titles:
        return f"Nothing new {_when(weekly)}."
    if ranked and topics:
        names = ", ".join(t for t, _ in topics[:LEAD_TOPICS])
        text = f"{'This week' if weekly else 'Today'}: {names}. Top: {titles[0]}"
    else:
        text = f"Most upvoted {_when(weekly)}: " + "; ".join(titles[:3])
    return trim(text, PREHEADER_CHARS)


def _when(weekly: bool) -> str:
    return "this week" if weekly else "today"


def profile_line(profile: Sequence[tuple[str, float]]) -> str:
    """ "Ranked by: diffusion model (3), video generation (2)" or the no-keywords line."""
    if not profile:
        return "Ranked by: upvotes (you have no keywords yet)."
    terms = ", ".join(f"{term} ({weight:g})" for term, weight in profile)
    return trim(f"Ranked by: {terms}.", 400)
