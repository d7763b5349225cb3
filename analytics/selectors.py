"""Execution analytics, computed in the database (aggregations, not Python loops over rows).

Percentiles use PERCENTILE_CONT on PostgreSQL; on SQLite, which lacks it, the two neighbouring
values are read with ORDER BY … LIMIT/OFFSET and interpolated the same way (linear), so both
engines give the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Avg, Count, F, FloatField, Q, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from config.errors import BadRequest
from prompts.models import ExecutionStatus, GeneratedQuery, PromptExecution

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
DURATIONS = {"ai": "ai_response_time_ms", "query": "query_execution_duration_ms", "total": "total_duration_ms"}
TOP_N = 10


class PercentileCont(Aggregate):
    function = "PERCENTILE_CONT"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, percentile: float, **extra: Any) -> None:
        super().__init__(expression, percentile=percentile, **extra)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    bucket: str  # "hour" | "day"
    period: str


def parse_moment(raw: str, *, end: bool) -> datetime:
    """An ISO 8601 datetime (naive = UTC) or date; a bare date is the start of that day, or its end when `end`."""
    text = raw.strip()
    try:
        # A bare date first: parse_datetime (fromisoformat) would take it as midnight.
        day = parse_date(text)
        moment = None if day is not None else parse_datetime(text)
    except ValueError:  # well-formed but impossible, e.g. 2025-13-45
        moment = day = None
    if moment is None:
        if day is None:
            raise ValueError(f"Not an ISO 8601 date or datetime: {raw!r}.")
        moment = datetime.combine(day, datetime.max.time() if end else datetime.min.time())
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


def _parse_moment(raw: str, field: str, *, end: bool) -> datetime:
    try:
        return parse_moment(raw, end=end)
    except ValueError as exc:
        raise BadRequest(f"{field}: not an ISO 8601 date or datetime", details={field: [str(exc)]}) from None


def window_for(period: str | None, start: str | None, end: str | None, *, default: str = "7d") -> Window:
    period = period or default
    now = timezone.now()
    if period == "custom":
        if not start or not end:
            missing = [n for n, v in (("from", start), ("to", end)) if not v]
            raise BadRequest(
                "period=custom needs from and to", details={n: ["Required when period=custom."] for n in missing}
            )
        lo, hi = _parse_moment(start, "from", end=False), _parse_moment(end, "to", end=True)
        if lo >= hi:
            raise BadRequest("from must be before to", details={"from": ["Must be before to."]})
    elif period in PERIODS:
        lo, hi = now - PERIODS[period], now
    else:
        raise BadRequest(
            f"period must be one of {', '.join([*PERIODS, 'custom'])}",
            details={"period": [f"One of {', '.join([*PERIODS, 'custom'])}."]},
        )
    bucket = "hour" if hi - lo <= timedelta(hours=48) else "day"
    return Window(lo, hi, bucket, period)


def percentiles(qs: QuerySet, field: str, points: tuple[float, ...] = (0.5, 0.95)) -> dict[float, float | None]:
    values = qs.exclude(**{f"{field}__isnull": True})
    if connection.vendor == "postgresql":
        row = values.aggregate(**{f"p{i}": PercentileCont(field, p) for i, p in enumerate(points)})
        return {p: (round(row[f"p{i}"], 2) if row[f"p{i}"] is not None else None) for i, p in enumerate(points)}
    n = values.count()
    out: dict[float, float | None] = {}
    ordered = values.order_by(field).values_list(field, flat=True)
    for p in points:
        if n == 0:
            out[p] = None
            continue
        rank = p * (n - 1)
        lo, hi = math.floor(rank), math.ceil(rank)
        pair = list(ordered[lo : hi + 1])
        low = float(pair[0])
        high = float(pair[-1])
        out[p] = round(low + (high - low) * (rank - lo), 2)
    return out


def performance(qs: QuerySet) -> dict[str, dict[str, float | None]]:
    averages = qs.aggregate(**{name: Avg(field) for name, field in DURATIONS.items()})
    result = {}
    for name, field in DURATIONS.items():
        p = percentiles(qs, field)
        avg = averages[name]
        result[f"{name}_time_ms"] = {"avg": round(avg, 2) if avg is not None else None, "p50": p[0.5], "p95": p[0.95]}
    return result


def totals(qs: QuerySet) -> dict[str, Any]:
    row = qs.aggregate(
        executions=Count("id"),
        completed=Count("id", filter=Q(status=ExecutionStatus.COMPLETED)),
        failed=Count("id", filter=Q(status=ExecutionStatus.FAILED)),
        processing=Count("id", filter=Q(status=ExecutionStatus.PROCESSING)),
        distinct_users=Count("user_id", distinct=True),
        rows_returned=Sum("rows_returned"),
    )
    finished = row["completed"] + row["failed"]
    row["success_rate"] = round(row["completed"] / finished, 4) if finished else None
    row["rows_returned"] = row["rows_returned"] or 0
    return row


def usage(qs: QuerySet) -> dict[str, Any]:
    row = GeneratedQuery.objects.filter(execution__in=qs.values("id")).aggregate(
        tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"), cost=Sum("cost")
    )
    tokens_in, tokens_out = row["tokens_in"] or 0, row["tokens_out"] or 0
    return {
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "tokens_used": tokens_in + tokens_out,
        "cost": round(row["cost"] or 0.0, 6),
    }


MAX_FILLED_BUCKETS = 2000


def bucket_starts(window: Window) -> list[datetime]:
    """Every bucket of the window, so a chart gets zeros for quiet hours/days instead of gaps."""
    step = timedelta(hours=1) if window.bucket == "hour" else timedelta(days=1)
    # Truncate in the current time zone, as TruncHour / TruncDay do in the database.
    first = timezone.localtime(window.start).replace(minute=0, second=0, microsecond=0)
    if window.bucket == "day":
        first = first.replace(hour=0)
    if (window.end - first) / step > MAX_FILLED_BUCKETS:
        return []
    starts = []
    moment = first
    while moment <= window.end:
        starts.append(moment)
        moment = timezone.localtime(moment + step)
    return starts


def _series_point(bucket: datetime, executions: int, completed: int, failed: int, avg_ms: float | None) -> dict:
    finished = completed + failed
    return {
        "bucket": bucket,
        "executions": executions,
        "completed": completed,
        "failed": failed,
        "success_rate": round(completed / finished, 4) if finished else None,
        "avg_total_ms": round(avg_ms, 2) if avg_ms is not None else None,
    }


def time_series(qs: QuerySet, window: Window) -> list[dict[str, Any]]:
    trunc = TruncHour if window.bucket == "hour" else TruncDay
    rows = (
        qs.annotate(bucket=trunc("created_at"))
        .values("bucket")
        .annotate(
            executions=Count("id"),
            completed=Count("id", filter=Q(status=ExecutionStatus.COMPLETED)),
            failed=Count("id", filter=Q(status=ExecutionStatus.FAILED)),
            avg_total_ms=Avg("total_duration_ms"),
        )
        .order_by("bucket")
    )
    found = {
        row["bucket"]: _series_point(
            row["bucket"], row["executions"], row["completed"], row["failed"], row["avg_total_ms"]
        )
        for row in rows
    }
    filled = [
        found.pop(start) if start in found else _series_point(start, 0, 0, 0, None) for start in bucket_starts(window)
    ]
    # Anything the grid did not name (a window too long to fill) is kept as the database gave it.
    return sorted([*filled, *found.values()], key=lambda p: p["bucket"])


def data_source_usage(qs: QuerySet) -> list[dict[str, Any]]:
    through = PromptExecution.data_sources.through
    rows = (
        through.objects.filter(promptexecution_id__in=qs.values("id"))
        .values("datasource_id", "datasource__name", "datasource__alias")
        .annotate(
            executions=Count("id"),
            completed=Count("id", filter=Q(promptexecution__status=ExecutionStatus.COMPLETED)),
            failed=Count("id", filter=Q(promptexecution__status=ExecutionStatus.FAILED)),
            avg_query_ms=Avg("promptexecution__query_execution_duration_ms"),
        )
        .order_by("-executions", "datasource_id")
    )
    out = []
    for row in rows:
        finished = row["completed"] + row["failed"]
        out.append(
            {
                "data_source_id": row["datasource_id"],
                "name": row["datasource__name"],
                "alias": row["datasource__alias"],
                "executions": row["executions"],
                "success_rate": round(row["completed"] / finished, 4) if finished else None,
                "avg_query_time_ms": round(row["avg_query_ms"], 2) if row["avg_query_ms"] is not None else None,
            }
        )
    return out


def models_usage(qs: QuerySet) -> list[dict[str, Any]]:
    counts = {r["ai_model"]: r["n"] for r in qs.values("ai_model").annotate(n=Count("id"))}
    spend = {
        r["execution__ai_model"]: r
        for r in GeneratedQuery.objects.filter(execution__in=qs.values("id"))
        .values("execution__ai_model")
        .annotate(tokens=Sum(F("tokens_in") + F("tokens_out")), cost=Sum("cost"))
    }
    return sorted(
        (
            {
                "model": model,
                "executions": n,
                "tokens_used": (spend.get(model) or {}).get("tokens") or 0,
                "cost": round((spend.get(model) or {}).get("cost") or 0.0, 6),
            }
            for model, n in counts.items()
        ),
        key=lambda r: (-r["executions"], r["model"]),
    )


def top_prompts(qs: QuerySet) -> list[dict[str, Any]]:
    rows = (
        qs.values("prompt_text")
        .annotate(
            executions=Count("id"),
            completed=Count("id", filter=Q(status=ExecutionStatus.COMPLETED)),
            failed=Count("id", filter=Q(status=ExecutionStatus.FAILED)),
            avg_total_ms=Avg("total_duration_ms"),
        )
        .order_by("-executions", "prompt_text")[:TOP_N]
    )
    out = []
    for r in rows:
        # Like the totals: the share of finished runs that completed (a run in progress is neither).
        finished = r["completed"] + r["failed"]
        out.append(
            {
                "prompt_text": r["prompt_text"],
                "executions": r["executions"],
                "completed": r["completed"],
                "failed": r["failed"],
                "success_rate": round(r["completed"] / finished, 4) if finished else None,
                "avg_total_ms": round(r["avg_total_ms"], 2) if r["avg_total_ms"] is not None else None,
            }
        )
    return out


def failures(qs: QuerySet) -> list[dict[str, Any]]:
    rows = (
        qs.filter(status=ExecutionStatus.FAILED)
        .values("error_code")
        .annotate(count=Count("id"))
        .order_by("-count", "error_code")
    )
    return [{"error_code": r["error_code"] or "UNKNOWN", "count": r["count"]} for r in rows]


def templates_used(qs: QuerySet) -> list[dict[str, Any]]:
    rows = (
        qs.filter(template__isnull=False)
        .values("template_id", "template__name")
        .annotate(executions=Count("id"))
        .order_by("-executions", "template_id")[:TOP_N]
    )
    return [{"template_id": r["template_id"], "name": r["template__name"], "executions": r["executions"]} for r in rows]


def query_analytics(qs: QuerySet, window: Window) -> dict[str, Any]:
    scoped = qs.filter(created_at__gte=window.start, created_at__lte=window.end)
    return {
        "period": {"name": window.period, "from": window.start, "to": window.end, "bucket": window.bucket},
        "totals": totals(scoped),
        "performance": performance(scoped),
        "usage": usage(scoped),
        "time_series": time_series(scoped, window),
        "data_sources": data_source_usage(scoped),
        "models": models_usage(scoped),
        "top_prompts": top_prompts(scoped),
        "failures_by_error_code": failures(scoped),
        "templates": templates_used(scoped),
    }


def prompt_analytics(qs: QuerySet, window: Window) -> dict[str, Any]:
    scoped = qs.filter(created_at__gte=window.start, created_at__lte=window.end)
    t = totals(scoped)
    return {
        "period": {"name": window.period, "from": window.start, "to": window.end, "bucket": window.bucket},
        "executions": t["executions"],
        "completed": t["completed"],
        "failed": t["failed"],
        "success_rate": t["success_rate"],
        "rows_returned": {
            "total": t["rows_returned"],
            "avg": round(scoped.aggregate(a=Avg("rows_returned"))["a"] or 0, 2),
        },
        "performance": performance(scoped),
        "usage": usage(scoped),
        "daily": time_series(scoped, Window(window.start, window.end, "day", window.period)),
    }
