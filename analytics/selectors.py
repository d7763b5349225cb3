"""Execution analytics, computed in the database (aggregations, not Python loops over rows).

Percentiles use PERCENTILE_CONT on PostgreSQL; on SQLite, which lacks it, the two neighbouring
values are read with ORDER BY … LIMIT/OFFSET and interpolated the same way (linear), so both
engines give the same numbers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import Aggregate, Avg, Count, FloatField, Q, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from config.errors import BadRequest
from connectors.models import DataSource
from prompts.models import ExecutionStatus
from templates_app.models import PromptTemplate

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
DURATIONS = {"ai": "ai_response_time_ms", "query": "query_execution_duration_ms", "total": "total_duration_ms"}
TOP_N = 10
POINTS = (0.5, 0.95)


class PercentilesCont(Aggregate):
    """PostgreSQL: several percentiles of one column from a single sort → float8[]."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(ARRAY[%(points)s]::float8[]) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: str, points: tuple[float, ...], **extra: Any) -> None:
        super().__init__(
            expression, points=", ".join(repr(float(p)) for p in points), output_field=ArrayField(FloatField()), **extra
        )


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
    return _overview(qs)["performance"]


def _overview(qs: QuerySet) -> dict[str, Any]:
    """Distinct users and avg / p50 / p95 of each duration; on PostgreSQL in one scan."""
    aggregates: dict[str, Aggregate] = {"distinct_users": Count("user_id", distinct=True)}
    aggregates.update({f"{name}_avg": Avg(field) for name, field in DURATIONS.items()})
    postgres = connection.vendor == "postgresql"
    if postgres:
        aggregates.update({f"{name}_p": PercentilesCont(field, POINTS) for name, field in DURATIONS.items()})
    row = qs.aggregate(**aggregates)
    result: dict[str, dict[str, float | None]] = {}
    for name, field in DURATIONS.items():
        if postgres:
            values = row[f"{name}_p"] or [None] * len(POINTS)
            points = {p: (round(v, 2) if v is not None else None) for p, v in zip(POINTS, values, strict=True)}
        else:
            points = percentiles(qs, field, POINTS)
        avg = row[f"{name}_avg"]
        result[f"{name}_time_ms"] = {
            "avg": round(avg, 2) if avg is not None else None,
            "p50": points[0.5],
            "p95": points[0.95],
        }
    return {"distinct_users": row["distinct_users"], "performance": result}


def _cube(qs: QuerySet, bucket: str) -> list[dict[str, Any]]:
    """Counts and sums per (time bucket, status, model, template, error code): one scan, a few thousand rows at
    most, from which totals, the time series, models, failures and templates are all read."""
    trunc = TruncHour if bucket == "hour" else TruncDay
    return list(
        qs.annotate(bucket=trunc("created_at"))
        .values("bucket", "status", "ai_model", "template_id", "error_code")
        .annotate(
            n=Count("*"),  # not Count("id"): every column read here is in the covering index (index-only scan)
            rows=Sum("rows_returned"),
            rows_n=Count("rows_returned"),
            total_ms=Sum("total_duration_ms"),
            total_n=Count("total_duration_ms"),
        )
        .order_by()
    )


def _rate(completed: int, failed: int) -> float | None:
    # The share of finished runs that completed; a run still in progress is neither.
    return round(completed / (completed + failed), 4) if completed + failed else None


def _totals_from(cube: list[dict[str, Any]], distinct_users: int) -> dict[str, Any]:
    by_status: dict[str, int] = defaultdict(int)
    for r in cube:
        by_status[r["status"]] += r["n"]
    completed, failed = by_status[ExecutionStatus.COMPLETED], by_status[ExecutionStatus.FAILED]
    return {
        "executions": sum(by_status.values()),
        "completed": completed,
        "failed": failed,
        "processing": by_status[ExecutionStatus.PROCESSING],
        "distinct_users": distinct_users,
        "rows_returned": sum(r["rows"] or 0 for r in cube),
        "success_rate": _rate(completed, failed),
    }


def totals(qs: QuerySet) -> dict[str, Any]:
    return _totals_from(_cube(qs, "day"), qs.aggregate(n=Count("user_id", distinct=True))["n"])


def _spend_by_model(qs: QuerySet) -> dict[str, dict[str, Any]]:
    # Every generated query of the runs (correction rounds and failed generations included), joined once
    # from the executions' side so the model comes with it.
    rows = (
        qs.filter(generated_queries__isnull=False)
        .values("ai_model")
        .annotate(
            tokens_in=Sum("generated_queries__tokens_in"),
            tokens_out=Sum("generated_queries__tokens_out"),
            cost=Sum("generated_queries__cost"),
        )
        .order_by()
    )
    return {r["ai_model"]: r for r in rows}


def _usage_from(spend: dict[str, dict[str, Any]]) -> dict[str, Any]:
    tokens_in = sum(r["tokens_in"] or 0 for r in spend.values())
    tokens_out = sum(r["tokens_out"] or 0 for r in spend.values())
    return {
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "tokens_used": tokens_in + tokens_out,
        "cost": round(sum(r["cost"] or 0.0 for r in spend.values()), 6),
    }


def usage(qs: QuerySet) -> dict[str, Any]:
    return _usage_from(_spend_by_model(qs))


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
    return {
        "bucket": bucket,
        "executions": executions,
        "completed": completed,
        "failed": failed,
        "success_rate": _rate(completed, failed),
        "avg_total_ms": round(avg_ms, 2) if avg_ms is not None else None,
    }


def _series_from(cube: list[dict[str, Any]], window: Window) -> list[dict[str, Any]]:
    sums: dict[datetime, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # n, completed, failed, ms, ms_n
    for r in cube:
        acc = sums[r["bucket"]]
        acc[0] += r["n"]
        acc[1] += r["n"] if r["status"] == ExecutionStatus.COMPLETED else 0
        acc[2] += r["n"] if r["status"] == ExecutionStatus.FAILED else 0
        acc[3] += r["total_ms"] or 0
        acc[4] += r["total_n"]
    found = {
        bucket: _series_point(bucket, n, completed, failed, ms / ms_n if ms_n else None)
        for bucket, (n, completed, failed, ms, ms_n) in sums.items()
    }
    filled = [
        found.pop(start) if start in found else _series_point(start, 0, 0, 0, None) for start in bucket_starts(window)
    ]
    # Anything the grid did not name (a window too long to fill) is kept as the database gave it.
    return sorted([*filled, *found.values()], key=lambda p: p["bucket"])


def time_series(qs: QuerySet, window: Window) -> list[dict[str, Any]]:
    return _series_from(_cube(qs, window.bucket), window)


def data_source_usage(qs: QuerySet) -> list[dict[str, Any]]:
    # One join from the executions to the through table; the sources' names are read afterwards (a handful).
    rows = (
        qs.filter(data_sources__isnull=False)
        .values("data_sources__id")
        .annotate(
            executions=Count("id"),
            completed=Count("id", filter=Q(status=ExecutionStatus.COMPLETED)),
            failed=Count("id", filter=Q(status=ExecutionStatus.FAILED)),
            avg_query_ms=Avg("query_execution_duration_ms"),
        )
        .order_by()
    )
    rows = sorted(rows, key=lambda r: (-r["executions"], r["data_sources__id"]))
    names: dict[int, dict[str, Any]] = {
        s["pk"]: dict(s)
        for s in DataSource.objects.filter(pk__in=[r["data_sources__id"] for r in rows]).values("pk", "name", "alias")
    }
    return [
        {
            "data_source_id": r["data_sources__id"],
            "name": names.get(r["data_sources__id"], {}).get("name"),
            "alias": names.get(r["data_sources__id"], {}).get("alias"),
            "executions": r["executions"],
            "success_rate": _rate(r["completed"], r["failed"]),
            "avg_query_time_ms": round(r["avg_query_ms"], 2) if r["avg_query_ms"] is not None else None,
        }
        for r in rows
    ]


def _models_from(cube: list[dict[str, Any]], spend: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, int] = defaultdict(int)
    for r in cube:
        counts[r["ai_model"]] += r["n"]
    out = []
    for model, n in counts.items():
        s = spend.get(model) or {}
        tokens = (s.get("tokens_in") or 0) + (s.get("tokens_out") or 0)
        out.append({"model": model, "executions": n, "tokens_used": tokens, "cost": round(s.get("cost") or 0.0, 6)})
    return sorted(out, key=lambda r: (-r["executions"], r["model"]))


def models_usage(qs: QuerySet) -> list[dict[str, Any]]:
    return _models_from(_cube(qs, "day"), _spend_by_model(qs))


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


def _failures_from(cube: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, int] = defaultdict(int)
    for r in cube:
        if r["status"] == ExecutionStatus.FAILED:
            counts[r["error_code"] or "UNKNOWN"] += r["n"]
    return [{"error_code": code, "count": n} for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def failures(qs: QuerySet) -> list[dict[str, Any]]:
    return _failures_from(_cube(qs, "day"))


def _templates_from(cube: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[int, int] = defaultdict(int)
    for r in cube:
        if r["template_id"] is not None:
            counts[r["template_id"]] += r["n"]
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
    names = dict(PromptTemplate.objects.filter(pk__in=[t for t, _ in top]).values_list("pk", "name"))
    return [{"template_id": t, "name": names.get(t), "executions": n} for t, n in top]


def templates_used(qs: QuerySet) -> list[dict[str, Any]]:
    return _templates_from(_cube(qs, "day"))


def query_analytics(qs: QuerySet, window: Window) -> dict[str, Any]:
    """Five scans of the window: the cube, the overview (users, durations), spend, top prompts, sources."""
    scoped = qs.filter(created_at__gte=window.start, created_at__lte=window.end)
    cube = _cube(scoped, window.bucket)
    overview = _overview(scoped)
    spend = _spend_by_model(scoped)
    return {
        "period": {"name": window.period, "from": window.start, "to": window.end, "bucket": window.bucket},
        "totals": _totals_from(cube, overview["distinct_users"]),
        "performance": overview["performance"],
        "usage": _usage_from(spend),
        "time_series": _series_from(cube, window),
        "data_sources": data_source_usage(scoped),
        "models": _models_from(cube, spend),
        "top_prompts": top_prompts(scoped),
        "failures_by_error_code": _failures_from(cube),
        "templates": _templates_from(cube),
    }


def prompt_analytics(qs: QuerySet, window: Window) -> dict[str, Any]:
    scoped = qs.filter(created_at__gte=window.start, created_at__lte=window.end)
    cube = _cube(scoped, "day")
    overview = _overview(scoped)
    t = _totals_from(cube, overview["distinct_users"])
    with_rows = sum(r["rows_n"] for r in cube)
    return {
        "period": {"name": window.period, "from": window.start, "to": window.end, "bucket": window.bucket},
        "executions": t["executions"],
        "completed": t["completed"],
        "failed": t["failed"],
        "success_rate": t["success_rate"],
        "rows_returned": {
            "total": t["rows_returned"],
            "avg": round(t["rows_returned"] / with_rows, 2) if with_rows else 0,
        },
        "performance": overview["performance"],
        "usage": usage(scoped),
        "daily": _series_from(cube, Window(window.start, window.end, "day", window.period)),
    }
