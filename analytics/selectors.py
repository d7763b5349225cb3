"""Execution analytics, computed in the database (aggregations, not Python loops over rows).

Query analytics reads a window in three passes, each an index-only scan on PostgreSQL (the covering
indexes of PromptExecution):

- the cube: counts and sums per (time bucket, analytics_key) — totals, time series, models and their
  spend, data sources, failures and templates are all read from it;
- the spread: distinct users and avg / p50 / p95 of each duration;
- top prompts, grouped by the md5 of the text; only the winners' texts are read from the table.

On PostgreSQL the spread and top prompts run beside the cube, each on a connection of its own, so a
window of a million rows uses every core instead of one after the other.

Percentiles are PERCENTILE_CONT's (linear interpolation between the two values around the rank): on
PostgreSQL read off per-value counts, on SQLite the two neighbouring values are read with ORDER BY …
LIMIT/OFFSET, so both engines give the same numbers.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Avg, Count, DateTimeField, F, Func, Min, Q, QuerySet, Sum
from django.db.models import Window as Over
from django.db.models.functions import Rank, TruncDay, TruncHour
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from config.errors import BadRequest
from connectors.models import DataSource
from prompts.models import ExecutionStatus, PromptExecution
from templates_app.models import PromptTemplate

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
DURATIONS = {"ai": "ai_response_time_ms", "query": "query_execution_duration_ms", "total": "total_duration_ms"}
TOP_N = 10
POINTS = (0.5, 0.95)
# Prompts tied for the last places of the top list are ordered by their text, read per group from the table;
# past this many candidates (mostly one-off prompts) the text is grouped in the database instead.
MAX_TOP_CANDIDATES = 500


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


@contextmanager
def _window_scans() -> Iterator[None]:
    """On PostgreSQL, room for a window of a million rows: the hash tables in memory (with the 4 MB default the
    planner, which expects a group per row of the cube, sorts instead), and no JIT compilation, which costs more
    than it saves on these scans. SET LOCAL: until the end of the transaction (this block, unless nested)."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL jit = off")
        yield


# --- the spread: users and durations ----------------------------------------------------------------------


def _performance(averages: dict[str, Any], points: dict[str, dict[float, float | None]]) -> dict:
    out = {}
    for name in DURATIONS:
        avg = averages[name]
        out[f"{name}_time_ms"] = {
            "avg": round(avg, 2) if avg is not None else None,
            "p50": points[name][0.5],
            "p95": points[name][0.95],
        }
    return out


def _interpolate(low: float, high: float, fraction: float) -> float:
    # PERCENTILE_CONT's linear interpolation between the two rows around the rank.
    return round(low + (high - low) * fraction, 2)


def percentiles(qs: QuerySet, field: str, points: tuple[float, ...] = POINTS) -> dict[float, float | None]:
    """Without PERCENTILE_CONT (SQLite): the two neighbouring values read with ORDER BY … LIMIT/OFFSET."""
    values = qs.exclude(**{f"{field}__isnull": True})
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
        out[p] = _interpolate(float(pair[0]), float(pair[-1]), rank - lo)
    return out


# PostgreSQL, one scan: counts per user and per value of each duration (hash aggregates of a few thousand
# groups, cheaper than sorting the window three times), then per duration its sum, its size and only the
# values at the ranks the percentiles need (0-based: floor and ceil of p * (n - 1)). GROUPING() has a bit set
# per column the row is not grouped by (runner 8, ai 4, query 2, total 1): 7 = per user, 11 / 13 / 14 = per
# value of ai / query / total.
_SPREAD_SQL = """
WITH counts AS (
    SELECT GROUPING(runner, ai, query, total) AS grouping_id, runner, ai, query, total, COUNT(*) AS n
    FROM ({scoped}) AS e
    GROUP BY GROUPING SETS ((runner), (ai), (query), (total))
), histograms AS (
    SELECT CASE grouping_id WHEN 11 THEN 'ai' WHEN 13 THEN 'query' ELSE 'total' END AS measure,
           COALESCE(ai, query, total) AS value, n
    FROM counts
    WHERE grouping_id IN (11, 13, 14) AND COALESCE(ai, query, total) IS NOT NULL
), ranked AS (
    SELECT measure, value, n,
           (SUM(n) OVER (PARTITION BY measure ORDER BY value))::bigint - n AS first_rank,
           (SUM(n) OVER (PARTITION BY measure))::bigint AS size,
           (SUM(value * n) OVER (PARTITION BY measure))::bigint AS value_sum
    FROM histograms
)
SELECT 'users' AS measure, NULL AS value, NULL AS first_rank, NULL AS last_rank, COUNT(*) AS size, NULL AS value_sum
FROM counts WHERE grouping_id = 7
UNION ALL
SELECT measure, value, first_rank, first_rank + n - 1, size, value_sum
FROM ranked
WHERE EXISTS (
    SELECT FROM unnest(%s::float8[]) AS point
    WHERE first_rank <= ceil(point * (size - 1)) AND floor(point * (size - 1)) < first_rank + n
)
"""


def _spread_postgres(qs: QuerySet) -> dict[str, Any]:
    columns = {"runner": F("user_id"), **{name: F(field) for name, field in DURATIONS.items()}}
    scoped, params = qs.order_by().values(**columns).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(_SPREAD_SQL.format(scoped=scoped), [*params, list(POINTS)])
        rows = cursor.fetchall()
    users = 0
    ranks: dict[str, list[tuple[int, int, float]]] = defaultdict(list)  # measure: (first rank, last rank, value)
    sizes: dict[str, int] = {}
    sums: dict[str, int] = {}
    for measure, value, first_rank, last_rank, size, value_sum in rows:
        if measure == "users":
            users = size
            continue
        ranks[measure].append((first_rank, last_rank, float(value)))
        sizes[measure], sums[measure] = size, value_sum

    def at(measure: str, rank: int) -> float:
        return next(value for first, last, value in ranks[measure] if first <= rank <= last)

    points: dict[str, dict[float, float | None]] = {}
    for name in DURATIONS:
        size = sizes.get(name, 0)
        points[name] = {}
        for p in POINTS:
            rank = p * (size - 1)
            points[name][p] = (
                _interpolate(at(name, math.floor(rank)), at(name, math.ceil(rank)), rank - math.floor(rank))
                if size
                else None
            )
    averages = {name: (sums[name] / sizes[name] if sizes.get(name) else None) for name in DURATIONS}
    return {"distinct_users": users, "performance": _performance(averages, points)}


def _spread(qs: QuerySet) -> dict[str, Any]:
    """Distinct users and avg / p50 / p95 of each duration."""
    if connection.vendor == "postgresql":
        return _spread_postgres(qs)
    row = qs.aggregate(
        distinct_users=Count("user_id", distinct=True),
        **{name: Avg(field) for name, field in DURATIONS.items()},
    )
    points = {name: percentiles(qs, field) for name, field in DURATIONS.items()}
    return {"distinct_users": row["distinct_users"], "performance": _performance(row, points)}


# --- the cube ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dimensions:
    status: str
    error_code: str
    template_id: int | None
    data_source_ids: tuple[int, ...]
    ai_model: str


def split_analytics_key(key: str) -> Dimensions:
    """PromptExecution.analytics_key ("status|error_code|template_id|data_source_ids|ai_model") back to fields."""
    status, error_code, template_id, source_ids, ai_model = key.split("|", 4)
    return Dimensions(
        status=status,
        error_code=error_code,
        template_id=int(template_id) if template_id else None,
        data_source_ids=tuple(dict.fromkeys(json.loads(source_ids or "[]"))),
        ai_model=ai_model,
    )


class DateBin(Func):
    """PostgreSQL's date_bin: the bucket's start by plain arithmetic, where date_trunc goes through calendar fields
    (a quarter of the cube's time over a million rows). Buckets of fixed length, so UTC only."""

    function = "DATE_BIN"
    template = "%(function)s(INTERVAL '1 %(unit)s', %(expressions)s, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
    output_field = DateTimeField()


def _bucket(bucket: str) -> Func:
    """The start of the hour or day of created_at, in the current time zone (TruncHour / TruncDay's meaning)."""
    if connection.vendor == "postgresql" and timezone.get_current_timezone_name() == "UTC":
        return DateBin("created_at", unit=bucket)
    return TruncHour("created_at") if bucket == "hour" else TruncDay("created_at")


def _cube(qs: QuerySet, bucket: str) -> list[dict[str, Any]]:
    """Counts and sums per (time bucket, analytics_key): one scan, a few thousand rows at most. Each row also
    carries its key's fields (status, ai_model, …, see Dimensions)."""
    rows = list(
        qs.annotate(bucket=_bucket(bucket))
        .values("bucket", "analytics_key")
        .annotate(
            n=Count("*"),  # not Count("id"): every column read here is in the covering index (index-only scan)
            rows=Sum("rows_returned"),
            rows_n=Count("rows_returned"),
            total_ms=Sum("total_duration_ms"),
            total_n=Count("total_duration_ms"),
            query_ms=Sum("query_execution_duration_ms"),
            query_n=Count("query_execution_duration_ms"),
            tokens_in=Sum("tokens_in"),
            tokens_out=Sum("tokens_out"),
            cost=Sum("cost"),
        )
        .order_by()
    )
    keys: dict[str, Dimensions] = {}
    for r in rows:
        key = r["analytics_key"]
        if key not in keys:
            keys[key] = split_analytics_key(key)
        r.update(vars(keys[key]))
    return rows


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


def _spend(tokens_in: int, tokens_out: int, cost: float) -> dict[str, Any]:
    return {
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "tokens_used": tokens_in + tokens_out,
        "cost": round(cost, 6),
    }


def _usage_from(cube: list[dict[str, Any]]) -> dict[str, Any]:
    return _spend(
        sum(r["tokens_in"] or 0 for r in cube),
        sum(r["tokens_out"] or 0 for r in cube),
        sum(r["cost"] or 0.0 for r in cube),
    )


def usage(qs: QuerySet) -> dict[str, Any]:
    """Tokens and cost of every generated query of the runs (correction rounds and failed generations included),
    summed from the generated queries themselves: one join, for a prompt's own runs."""
    row = qs.aggregate(
        tokens_in=Sum("generated_queries__tokens_in"),
        tokens_out=Sum("generated_queries__tokens_out"),
        cost=Sum("generated_queries__cost"),
    )
    return _spend(row["tokens_in"] or 0, row["tokens_out"] or 0, row["cost"] or 0.0)


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


def _data_sources_from(cube: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # A run counts once for each of its sources. Like the data_sources relation, a source deleted since is gone.
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # n, completed, failed, query ms, ms_n
    for r in cube:
        for source_id in r["data_source_ids"]:
            acc = sums[source_id]
            acc[0] += r["n"]
            acc[1] += r["n"] if r["status"] == ExecutionStatus.COMPLETED else 0
            acc[2] += r["n"] if r["status"] == ExecutionStatus.FAILED else 0
            acc[3] += r["query_ms"] or 0
            acc[4] += r["query_n"]
    names = {s["pk"]: s for s in DataSource.objects.filter(pk__in=list(sums)).values("pk", "name", "alias")}
    out = []
    for source_id, (n, completed, failed, ms, ms_n) in sums.items():
        if source_id not in names:
            continue
        out.append(
            {
                "data_source_id": source_id,
                "name": names[source_id]["name"],
                "alias": names[source_id]["alias"],
                "executions": n,
                "success_rate": _rate(completed, failed),
                "avg_query_time_ms": round(ms / ms_n, 2) if ms_n else None,
            }
        )
    return sorted(out, key=lambda r: (-r["executions"], r["data_source_id"]))


def _models_from(cube: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sums: dict[str, list[Any]] = defaultdict(lambda: [0, 0, 0.0])  # executions, tokens, cost
    for r in cube:
        acc = sums[r["ai_model"]]
        acc[0] += r["n"]
        acc[1] += (r["tokens_in"] or 0) + (r["tokens_out"] or 0)
        acc[2] += r["cost"] or 0.0
    out = [
        {"model": model, "executions": n, "tokens_used": tokens, "cost": round(cost, 6)}
        for model, (n, tokens, cost) in sums.items()
    ]
    return sorted(out, key=lambda r: (-r["executions"], r["model"]))


def _failures_from(cube: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, int] = defaultdict(int)
    for r in cube:
        if r["status"] == ExecutionStatus.FAILED:
            counts[r["error_code"] or "UNKNOWN"] += r["n"]
    return [{"error_code": code, "count": n} for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _templates_from(cube: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[int, int] = defaultdict(int)
    for r in cube:
        if r["template_id"] is not None:
            counts[r["template_id"]] += r["n"]
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
    names = dict(PromptTemplate.objects.filter(pk__in=[t for t, _ in top]).values_list("pk", "name"))
    return [{"template_id": t, "name": names.get(t), "executions": n} for t, n in top]


# --- top prompts ------------------------------------------------------------------------------------------

_PROMPT_MEASURES = {
    "executions": Count("*"),
    "completed": Count("status", filter=Q(status=ExecutionStatus.COMPLETED)),
    "failed": Count("status", filter=Q(status=ExecutionStatus.FAILED)),
    "avg_total_ms": Avg("total_duration_ms"),
}


def _prompt_row(r: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "prompt_text": text,
        "executions": r["executions"],
        "completed": r["completed"],
        "failed": r["failed"],
        # Like the totals: the share of finished runs that completed (a run in progress is neither).
        "success_rate": _rate(r["completed"], r["failed"]),
        "avg_total_ms": round(r["avg_total_ms"], 2) if r["avg_total_ms"] is not None else None,
    }


def top_prompts(qs: QuerySet) -> list[dict[str, Any]]:
    """The most run prompt texts, ties by text. Grouped by the text's md5 (in the covering index): the groups
    ranked in the top places, ties included, then one row's text per group, read by primary key."""
    ranked = (
        qs.values("prompt_hash")
        .annotate(**_PROMPT_MEASURES, sample_id=Min("id"))
        .annotate(rank=Over(Rank(), order_by=F("executions").desc()))
        .filter(rank__lte=TOP_N)
        .order_by()
    )
    candidates = list(ranked[: MAX_TOP_CANDIDATES + 1])
    if len(candidates) > MAX_TOP_CANDIDATES:
        rows = qs.values("prompt_text").annotate(**_PROMPT_MEASURES).order_by("-executions", "prompt_text")[:TOP_N]
        return [_prompt_row(r, r["prompt_text"]) for r in rows]
    texts = dict(
        PromptExecution.objects.filter(pk__in=[c["sample_id"] for c in candidates]).values_list("pk", "prompt_text")
    )
    rows = sorted(((c, texts[c["sample_id"]]) for c in candidates), key=lambda ct: (-ct[0]["executions"], ct[1]))
    return [_prompt_row(c, text) for c, text in rows[:TOP_N]]


# --- the endpoints ----------------------------------------------------------------------------------------


_SIDE_SCANS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="analytics-scan")


def _scan_on_own_connection(scan: Callable[[QuerySet], Any], qs: QuerySet) -> Any:
    # A connection per scan, closed after it: a few ms against a scan of a large window, and no idle
    # connections left behind in these threads.
    try:
        with _window_scans():
            return scan(qs)
    finally:
        connection.close()


def _side_scans(qs: QuerySet, *scans: Callable[[QuerySet], Any]) -> Callable[[], list[Any]]:
    """Start `scans` beside the caller's own work; call the result for theirs. On PostgreSQL outside a
    transaction they run on other connections at once; otherwise (SQLite, or inside a transaction, whose
    uncommitted rows other connections cannot see) when their results are asked for, on this one."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return lambda: [scan(qs) for scan in scans]
    futures = [_SIDE_SCANS.submit(_scan_on_own_connection, scan, qs) for scan in scans]
    return lambda: [future.result() for future in futures]


def query_analytics(qs: QuerySet, window: Window) -> dict[str, Any]:
    """Three scans of the window: the cube, the spread (users, durations), top prompts."""
    scoped = qs.filter(created_at__gte=window.start, created_at__lte=window.end)
    side = _side_scans(scoped, _spread, top_prompts)
    with _window_scans():
        cube = _cube(scoped, window.bucket)  # here: its buckets follow this thread's time zone
        data_sources = _data_sources_from(cube)
        templates = _templates_from(cube)
        spread, prompts = side()
    return {
        "period": {"name": window.period, "from": window.start, "to": window.end, "bucket": window.bucket},
        "totals": _totals_from(cube, spread["distinct_users"]),
        "performance": spread["performance"],
        "usage": _usage_from(cube),
        "time_series": _series_from(cube, window),
        "data_sources": data_sources,
        "models": _models_from(cube),
        "top_prompts": prompts,
        "failures_by_error_code": _failures_from(cube),
        "templates": templates,
    }


def prompt_analytics(qs: QuerySet, window: Window) -> dict[str, Any]:
    scoped = qs.filter(created_at__gte=window.start, created_at__lte=window.end)
    cube = _cube(scoped, "day")
    spread = _spread(scoped)
    t = _totals_from(cube, spread["distinct_users"])
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
        "performance": spread["performance"],
        "usage": usage(scoped),
        "daily": _series_from(cube, Window(window.start, window.end, "day", window.period)),
    }
