"""Per-day aggregates of the ``calls`` table, computed once when a day is written and kept by the
store (one small JSON document per call date), so that the dashboard and the day summary read
30 small rows instead of scanning every call of history.

:func:`day_aggregate` turns a day's ``calls`` rows into the document; :func:`dashboard_from`
merges the documents of a date range into the dashboard's shape; :func:`summary_from` gives the
day summary. Pure functions: both backends use them.

Outcomes: each day keeps its calls per outcome, and per outcome by intent and by agent, so the
dashboard gives the resolution rate (resolved calls / calls with a known outcome, i.e. not
``unknown``) by intent and by agent from the same small documents. Days written before outcomes
were counted simply have none.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from callpipe.schema import Outcome

SLOWEST_KEPT = 10
FAILURES_KEPT = 20


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _num(values: list[Any]) -> list[float]:
    return [float(v) for v in values if v is not None]


OUTCOMES = tuple(o.value for o in Outcome)
UNKNOWN = Outcome.UNKNOWN.value


def _outcome(row: dict[str, Any]) -> str:
    value = row.get("outcome")
    return str(value) if value in OUTCOMES else UNKNOWN


def _outcomes_by(calls: list[dict[str, Any]], key: str) -> dict[str, dict[str, int]]:
    """``{value of key: {outcome: calls}}`` over the calls that have a ``key``."""
    out: dict[str, Counter[str]] = {}
    for r in calls:
        if r.get(key) is not None:
            out.setdefault(str(r[key]), Counter())[_outcome(r)] += 1
    return {k: dict(v) for k, v in out.items()}


def _merge_nested(days: list[dict[str, Any]], part: str) -> dict[str, Counter[str]]:
    total: dict[str, Counter[str]] = {}
    for d in days:
        for key, counts in (d.get(part) or {}).items():
            total.setdefault(key, Counter()).update(counts)
    return total


def resolution(counts: Counter[str] | dict[str, int]) -> dict[str, Any]:
    """Calls with a known outcome, resolved calls and their ratio (``None`` when none is known)."""
    known = sum(n for o, n in counts.items() if o != UNKNOWN)
    resolved = int(counts.get(Outcome.RESOLVED.value, 0))
    return {
        "known_outcome": known,
        "resolved": resolved,
        "resolution_rate": round(resolved / known, 4) if known else None,
    }


def day_aggregate(call_date: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The aggregate document of one day from its ``calls`` rows (JSON-serialisable)."""
    status = Counter(str(r.get("status")) for r in calls)
    processed = [r for r in calls if r.get("status") == "processed"]
    measured = [r for r in calls if r.get("offline_wer_measured") is not None]
    agents: dict[str, list[float]] = {}
    for r in calls:
        agent = r.get("agent_id")
        if agent is None:
            continue
        acc = agents.setdefault(str(agent), [0, 0.0, 0, 0.0, 0])
        acc[0] += 1
        if r.get("sentiment_score") is not None:
            acc[1] += float(r["sentiment_score"])
            acc[2] += 1
        if r.get("duration_seconds") is not None:
            acc[3] += float(r["duration_seconds"])
            acc[4] += 1
    slow = sorted(
        (r for r in calls if r.get("processing_seconds") is not None),
        key=lambda r: (-float(r["processing_seconds"]), str(r["recording_id"])),
    )[:SLOWEST_KEPT]
    talk = _num([r.get("talk_seconds") for r in calls])
    silence = _num([r.get("silence_seconds") for r in calls])
    return {
        "call_date": date.fromisoformat(call_date).isoformat(),
        "calls": len(calls),
        "processed": status.get("processed", 0),
        "pending": status.get("pending", 0),
        "failed": status.get("failed", 0),
        "retranscribed": sum(1 for r in calls if r.get("retranscribed")),
        "retranscribed_processed": sum(1 for r in processed if r.get("retranscribed")),
        "avg_live_wer": _mean(_num([r.get("live_wer_estimate") for r in processed])),
        "avg_offline_wer": _mean(_num([r.get("offline_wer_estimate") for r in calls])),
        "measured_wer_before": _mean(_num([r.get("live_wer_measured") for r in measured])),
        "measured_wer_after": _mean(_num([r.get("offline_wer_measured") for r in measured])),
        "measured_calls": len(measured),
        "talk_seconds": round(sum(talk), 4) if talk else None,
        "silence_seconds": round(sum(silence), 4) if silence else None,
        "online_corrections": sum(int(r.get("online_corrections") or 0) for r in calls),
        "offline_corrections": sum(int(r.get("offline_corrections") or 0) for r in calls),
        "sentiment": dict(Counter(r["sentiment_label"] for r in calls if r.get("sentiment_label"))),
        "intents": dict(Counter(r["primary_intent"] for r in calls if r.get("primary_intent"))),
        "topics": dict(Counter(t for r in calls for t in (r.get("topics") or []))),
        "agents": agents,
        "outcomes": dict(Counter(_outcome(r) for r in calls)),
        "outcome_by_intent": _outcomes_by(calls, "primary_intent"),
        "outcome_by_agent": _outcomes_by(calls, "agent_id"),
        "slowest": [
            {
                "recording_id": r["recording_id"],
                "seconds": round(float(r["processing_seconds"]), 4),
                "retranscribed": bool(r.get("retranscribed")),
            }
            for r in slow
        ],
        "failures": [
            {"recording_id": r["recording_id"], "error": r.get("error")}
            for r in sorted(
                (r for r in calls if r.get("status") == "failed"), key=lambda r: r["recording_id"]
            )[:FAILURES_KEPT]
        ],
    }


_PER_DAY = (
    "calls",
    "processed",
    "pending",
    "failed",
    "avg_live_wer",
    "avg_offline_wer",
    "talk_seconds",
    "silence_seconds",
    "retranscribed",
    "online_corrections",
    "offline_corrections",
)


def dashboard_from(days: list[dict[str, Any]]) -> dict[str, Any]:
    """The dashboard (per-day counts, sentiment and intent by day, top topics, agents, slowest
    calls, calls per outcome, resolution rate overall, by intent and by agent) from the aggregate
    documents of the days in range, in date order."""
    days = sorted((d for d in days if d.get("calls")), key=lambda d: d["call_date"])
    topics: Counter[str] = Counter()
    agents: dict[str, list[float]] = {}
    slowest: list[dict[str, Any]] = []
    for d in days:
        topics.update(d["topics"])
        for agent, acc in d["agents"].items():
            total = agents.setdefault(agent, [0, 0.0, 0, 0.0, 0])
            for i, value in enumerate(acc):
                total[i] += value
        slowest += d["slowest"]
    outcomes: Counter[str] = Counter()
    for d in days:
        outcomes.update(d.get("outcomes") or {})
    by_intent = _merge_nested(days, "outcome_by_intent")
    by_agent = _merge_nested(days, "outcome_by_agent")
    return {
        "per_day": [
            {"call_date": date.fromisoformat(d["call_date"]), **{k: d[k] for k in _PER_DAY}} for d in days
        ],
        "sentiment_by_day": [
            {"call_date": date.fromisoformat(d["call_date"]), "label": label, "calls": n}
            for d in days
            for label, n in sorted(d["sentiment"].items())
        ],
        "intent_by_day": [
            {"call_date": date.fromisoformat(d["call_date"]), "intent": intent, "calls": n}
            for d in days
            for intent, n in sorted(d["intents"].items())
        ],
        "top_topics": [
            {"topic": t, "calls": n} for t, n in sorted(topics.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        ],
        "by_agent": [
            {
                "agent_id": agent,
                "calls": int(acc[0]),
                "avg_sentiment": round(acc[1] / acc[2], 4) if acc[2] else None,
                "avg_duration_seconds": round(acc[3] / acc[4], 4) if acc[4] else None,
                **resolution(by_agent.get(agent, Counter())),
            }
            for agent, acc in sorted(agents.items(), key=lambda kv: (-kv[1][0], kv[0]))[:20]
        ],
        "slowest": sorted(slowest, key=lambda r: (-r["seconds"], r["recording_id"]))[:SLOWEST_KEPT],
        "outcomes": [{"outcome": o, "calls": int(outcomes.get(o, 0))} for o in OUTCOMES],
        "resolution": resolution(outcomes),
        "resolution_by_intent": [
            {"intent": intent, "calls": sum(counts.values()), **resolution(counts)}
            for intent, counts in sorted(by_intent.items(), key=lambda kv: (-kv[1].total(), kv[0]))
        ],
    }


def summary_from(call_date: str, day: dict[str, Any] | None) -> dict[str, Any]:
    """The day summary (counts, WER before/after, distributions, slowest calls, failures)."""
    d = day or day_aggregate(call_date, [])
    return {
        "recordings": d["calls"],
        "processed": d["processed"],
        "failed": d["failed"],
        "pending": d["pending"],
        "retranscribed": d["retranscribed_processed"],
        "estimated_wer_before": d["avg_live_wer"],
        "estimated_wer_after": d["avg_offline_wer"],
        "measured_wer_before": d["measured_wer_before"],
        "measured_wer_after": d["measured_wer_after"],
        "measured_calls": d["measured_calls"],
        "online_corrections": d["online_corrections"],
        "offline_corrections": d["offline_corrections"],
        "talk_seconds": d["talk_seconds"],
        "silence_seconds": d["silence_seconds"],
        "sentiment": [
            {"label": k, "calls": n}
            for k, n in sorted(d["sentiment"].items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "intents": [
            {"intent": k, "calls": n} for k, n in sorted(d["intents"].items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "slowest": d["slowest"][:5],
        "failures": d["failures"],
    }
