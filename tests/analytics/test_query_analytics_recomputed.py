"""Query analytics equals a straightforward recomputation over the same rows.

A few hundred varied executions (a seeded random mix: statuses, error codes, models — one with a "|" in its
name —, templates, one to three sources in any order, one or two generated queries, missing durations, tied
prompts), then the endpoint's answer is compared, section by section, with plain Python over the executions,
their generated queries and their data-source links: the sources of truth the dashboard's denormalized
columns (spend, prompt hash, analytics key) stand in for. Runs on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone

from analytics.selectors import (
    MAX_TOP_CANDIDATES,
    TOP_N,
    Dimensions,
    Window,
    bucket_starts,
    query_analytics,
    split_analytics_key,
    top_prompts,
)
from connectors.models import DataSource
from prompts.models import GeneratedQuery, PromptExecution
from templates_app.models import PromptTemplate
from tests.conftest import client_for
from tests.factories import DataSourceFactory, MembershipFactory
from tests.prompts.studio_support import execution_for, ok

pytestmark = pytest.mark.django_db

URL = "/api/v1/prompts/analytics/query-analytics"
START, END = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 8, tzinfo=UTC) - timedelta(microseconds=1)
WEEK = {"period": "custom", "from": "2025-03-01", "to": "2025-03-07"}
MODELS = ["builtin", "gpt-4o", "ollama/llama3|q4"]
ERRORS = ["QUERY_TIMEOUT", "AI_GENERATION_ERROR", "SQL_VALIDATION_ERROR"]
PROMPTS = [f"question {c}" for c in "abcdefghijklmn"]


@pytest.fixture
def world(member, admin_member, outsider):
    colleague = MembershipFactory(role="analyst", workspace=member.workspace)
    people = [member, admin_member, colleague]
    sources = [DataSourceFactory(workspace=member.workspace, name=f"s{i}", alias=f"s{i}") for i in range(4)]
    templates = [
        PromptTemplate.objects.create(organization=member.workspace.organization, name=f"T{i}", template_text="x")
        for i in range(2)
    ]
    rng = random.Random(20250301)
    for _ in range(240):
        status = rng.choice(["completed"] * 6 + ["failed"] * 3 + ["processing"])
        finished = status != "processing"

        def duration(low: int, high: int, *, present: bool = True) -> int | None:
            return rng.randint(low, high) if present and rng.random() > 0.1 else None

        execution = execution_for(
            rng.choice(people),
            status=status,
            error_code=rng.choice(ERRORS) if status == "failed" and rng.random() > 0.1 else "",
            created_at=START + timedelta(seconds=rng.randint(0, 7 * 86400 - 1)),
            ai_model=rng.choice(MODELS),
            template=rng.choice([None, None, *templates]),
            prompt_text=rng.choice(PROMPTS),
            sources=rng.sample(sources, rng.randint(1, 3)),
            ai_response_time_ms=duration(50, 3000, present=finished),
            query_execution_duration_ms=duration(1, 900, present=status == "completed"),
            total_duration_ms=duration(100, 5000, present=finished),
            rows_returned=rng.randint(0, 50) if status == "completed" else None,
        )
        # Its generated queries, and their spend added to the execution as the pipeline does. Costs are
        # multiples of 1/1024, exact in binary, so any order of summing gives the same total.
        for _ in range(rng.choice([0, 1, 1, 2])):
            spend = {"tokens_in": rng.randint(10, 900), "tokens_out": rng.randint(1, 90), "cost": rng.randint(0, 99)}
            spend["cost"] /= 1024
            GeneratedQuery.objects.create(execution=execution, sql_text="SELECT 1", dialect="sqlite", **spend)
            for field, value in spend.items():
                setattr(execution, field, getattr(execution, field) + value)
        execution.save(update_fields=["tokens_in", "tokens_out", "cost"])
    # Outside the week, and another tenant's: never counted.
    execution_for(member, created_at=START - timedelta(seconds=1), sources=sources[:1], total_duration_ms=7)
    execution_for(member, created_at=END + timedelta(seconds=1), sources=sources[:1], total_duration_ms=7)
    execution_for(outsider, created_at=START + timedelta(days=1), total_duration_ms=7)
    # A source soft-deleted since still counts under its name; one deleted outright is gone, as its links are.
    DataSource.objects.filter(pk=sources[2].pk).update(deleted_at=timezone.now())
    DataSource.objects.filter(pk=sources[3].pk).delete()
    return {"member": member, "admin": admin_member, "colleague": colleague, "sources": sources}


# --- the straightforward recomputation ----------------------------------------------------------------------


def _rate(completed: int, failed: int) -> float | None:
    return round(completed / (completed + failed), 4) if completed + failed else None


def _percentile(values: list[int], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = p * (len(ordered) - 1)
    low, high = ordered[math.floor(rank)], ordered[math.ceil(rank)]
    return round(low + (high - low) * (rank - math.floor(rank)), 2)


def _avg(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def recompute(executions: list[PromptExecution]) -> dict[str, Any]:
    ids = [e.pk for e in executions]
    spend = {
        r["execution_id"]: r
        for r in GeneratedQuery.objects.filter(execution_id__in=ids)
        .values("execution_id")
        .annotate(tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"), cost=Sum("cost"))
    }
    links = PromptExecution.data_sources.through.objects.filter(promptexecution_id__in=ids)
    sources_of = defaultdict(list)
    for link in links:
        sources_of[link.promptexecution_id].append(link.datasource_id)

    def count(rows: list[PromptExecution], status: str) -> int:
        return sum(1 for e in rows if e.status == status)

    def values(rows: list[PromptExecution], field: str) -> list[int]:
        return [getattr(e, field) for e in rows if getattr(e, field) is not None]

    def spent(rows: list[PromptExecution], field: str) -> Any:
        return sum(spend.get(e.pk, {}).get(field) or 0 for e in rows)

    completed, failed = count(executions, "completed"), count(executions, "failed")
    durations = {"ai": "ai_response_time_ms", "query": "query_execution_duration_ms", "total": "total_duration_ms"}

    by_day = defaultdict(list)
    for e in executions:
        by_day[e.created_at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)].append(e)
    by_source = defaultdict(list)
    for e in executions:
        for source_id in sources_of[e.pk]:
            by_source[source_id].append(e)
    names = {s.pk: s for s in DataSource.objects.filter(pk__in=list(by_source))}
    by_model = defaultdict(list)
    for e in executions:
        by_model[e.ai_model].append(e)
    by_text = defaultdict(list)
    for e in executions:
        by_text[e.prompt_text].append(e)
    failures = defaultdict(int)
    for e in executions:
        if e.status == "failed":
            failures[e.error_code or "UNKNOWN"] += 1
    by_template = defaultdict(int)
    for e in executions:
        if e.template_id is not None:
            by_template[e.template_id] += 1
    tokens_in, tokens_out = spent(executions, "tokens_in"), spent(executions, "tokens_out")
    return {
        "totals": {
            "executions": len(executions),
            "completed": completed,
            "failed": failed,
            "processing": count(executions, "processing"),
            "distinct_users": len({e.user_id for e in executions}),
            "rows_returned": sum(values(executions, "rows_returned")),
            "success_rate": _rate(completed, failed),
        },
        "performance": {
            f"{name}_time_ms": {
                "avg": _avg(values(executions, field)),
                "p50": _percentile(values(executions, field), 0.5),
                "p95": _percentile(values(executions, field), 0.95),
            }
            for name, field in durations.items()
        },
        "usage": {
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "tokens_used": tokens_in + tokens_out,
            "cost": round(spent(executions, "cost"), 6),
        },
        "time_series": [
            {
                "bucket": _iso(day),
                "executions": len(by_day[day]),
                "completed": count(by_day[day], "completed"),
                "failed": count(by_day[day], "failed"),
                "success_rate": _rate(count(by_day[day], "completed"), count(by_day[day], "failed")),
                "avg_total_ms": _avg(values(by_day[day], "total_duration_ms")),
            }
            for day in bucket_starts(Window(START, END, "day", "custom"))
        ],
        "data_sources": sorted(
            (
                {
                    "data_source_id": source_id,
                    "name": names[source_id].name,
                    "alias": names[source_id].alias,
                    "executions": len(rows),
                    "success_rate": _rate(count(rows, "completed"), count(rows, "failed")),
                    "avg_query_time_ms": _avg(values(rows, "query_execution_duration_ms")),
                }
                for source_id, rows in by_source.items()
            ),
            key=lambda r: (-r["executions"], r["data_source_id"]),
        ),
        "models": sorted(
            (
                {
                    "model": model,
                    "executions": len(rows),
                    "tokens_used": spent(rows, "tokens_in") + spent(rows, "tokens_out"),
                    "cost": round(spent(rows, "cost"), 6),
                }
                for model, rows in by_model.items()
            ),
            key=lambda r: (-r["executions"], r["model"]),
        ),
        "top_prompts": sorted(
            (
                {
                    "prompt_text": text,
                    "executions": len(rows),
                    "completed": count(rows, "completed"),
                    "failed": count(rows, "failed"),
                    "success_rate": _rate(count(rows, "completed"), count(rows, "failed")),
                    "avg_total_ms": _avg(values(rows, "total_duration_ms")),
                }
                for text, rows in by_text.items()
            ),
            key=lambda r: (-r["executions"], r["prompt_text"]),
        )[:TOP_N],
        "failures_by_error_code": [
            {"error_code": code, "count": n} for code, n in sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "templates": [
            {"template_id": t, "name": PromptTemplate.objects.get(pk=t).name, "executions": n}
            for t, n in sorted(by_template.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
        ],
    }


def in_week(**filters: Any) -> list[PromptExecution]:
    return list(PromptExecution.objects.filter(created_at__gte=START, created_at__lte=END, **filters))


def assert_same(answer: dict[str, Any], expected: dict[str, Any]) -> None:
    for section, value in expected.items():
        assert answer[section] == value, section


# --- the comparisons ---------------------------------------------------------------------------------------


def test_the_workspace_as_an_admin_sees_it(world):
    admin = world["admin"]
    answer = ok(client_for(admin.user).get(URL, WEEK))
    expected = recompute(in_week(workspace_id=admin.workspace_id))
    assert expected["totals"]["executions"] > 200  # the seed is as varied as intended
    assert len(expected["data_sources"]) == 3
    assert len(expected["models"]) == 3
    assert_same(answer, expected)


def test_an_analysts_own_runs(world):
    member = world["member"]
    answer = ok(client_for(member.user).get(URL, WEEK))
    assert_same(answer, recompute(in_week(workspace_id=member.workspace_id, user_id=member.user_id)))


def test_an_admin_filtering_by_user(world):
    admin, colleague = world["admin"], world["colleague"]
    answer = ok(client_for(admin.user).get(URL, {**WEEK, "user_id": colleague.user_id}))
    assert_same(answer, recompute(in_week(workspace_id=admin.workspace_id, user_id=colleague.user_id)))


def test_an_admin_filtering_by_data_source(world):
    admin, source = world["admin"], world["sources"][1]
    answer = ok(client_for(admin.user).get(URL, {**WEEK, "data_source_id": source.pk}))
    assert_same(answer, recompute(in_week(workspace_id=admin.workspace_id, data_sources=source)))


def test_cleared_history_still_counts(world, member_client):
    member = world["member"]
    assert member_client.delete("/api/v1/prompts/history/clear").status_code == 200
    answer = ok(member_client.get(URL, WEEK))
    assert answer["totals"]["executions"] > 0
    assert_same(answer, recompute(in_week(workspace_id=member.workspace_id, user_id=member.user_id)))


def test_deleted_executions_no_longer_count(world):
    admin = world["admin"]
    PromptExecution.objects.filter(pk__in=[e.pk for e in in_week(workspace_id=admin.workspace_id)[::3]]).delete()
    answer = ok(client_for(admin.user).get(URL, WEEK))
    assert_same(answer, recompute(in_week(workspace_id=admin.workspace_id)))


# --- the database-kept keys -------------------------------------------------------------------------------


def test_the_analytics_key_reads_back_as_the_executions_dimensions(member):
    first, second = DataSourceFactory(workspace=member.workspace), DataSourceFactory(workspace=member.workspace)
    template = PromptTemplate.objects.create(organization=member.workspace.organization, name="T", template_text="x")
    execution = execution_for(
        member,
        status="failed",
        error_code="QUERY_TIMEOUT",
        template=template,
        sources=[second, first],
        ai_model="ollama/llama3|q4",
        prompt_text="sales by region",
    )
    stored = PromptExecution.objects.values("analytics_key", "prompt_hash").get(pk=execution.pk)
    assert split_analytics_key(stored["analytics_key"]) == Dimensions(
        status="failed",
        error_code="QUERY_TIMEOUT",
        template_id=template.pk,
        data_source_ids=(second.pk, first.pk),
        ai_model="ollama/llama3|q4",
    )
    assert stored["prompt_hash"] == uuid.UUID(hashlib.md5(b"sales by region").hexdigest())
    # Kept as the row changes.
    PromptExecution.objects.filter(pk=execution.pk).update(status="completed", error_code="", template=None)
    key = PromptExecution.objects.values_list("analytics_key", flat=True).get(pk=execution.pk)
    assert (split_analytics_key(key).status, split_analytics_key(key).template_id) == ("completed", None)


# --- top prompts' ties --------------------------------------------------------------------------------------


def test_prompts_tied_for_the_last_places_are_ordered_by_text(member):
    now = timezone.now()
    counts = {"zeta": 3, "eta": 2, "theta": 2, **{f"tie {c}": 1 for c in "qwertyuiopasd"}}
    for text, n in counts.items():
        for _ in range(n):
            execution_for(member, prompt_text=text, created_at=now)
    top = top_prompts(PromptExecution.objects.filter(workspace_id=member.workspace_id))
    expected = ["zeta", "eta", "theta", *sorted(t for t in counts if t.startswith("tie"))[:7]]
    assert [t["prompt_text"] for t in top] == expected


def test_top_prompts_of_a_window_of_one_off_prompts(member):
    # More prompts tied in the top places than are read one by one: the texts are grouped in the database.
    now = timezone.now()
    texts = [f"one-off question {i:04d}" for i in range(MAX_TOP_CANDIDATES + 1)]
    PromptExecution.objects.bulk_create(
        PromptExecution(
            workspace_id=member.workspace_id,
            user_id=member.user_id,
            prompt_text=text,
            ai_model="builtin",
            status="completed",
            total_duration_ms=i,
            created_at=now,
        )
        for i, text in enumerate(texts)
    )
    top = top_prompts(PromptExecution.objects.filter(workspace_id=member.workspace_id))
    assert [(t["prompt_text"], t["executions"], t["avg_total_ms"]) for t in top] == [
        (text, 1, float(i)) for i, text in enumerate(texts[:TOP_N])
    ]


def test_the_selector_alone_gives_the_same_as_the_view(world):
    admin = world["admin"]
    answer = query_analytics(
        PromptExecution.objects.filter(workspace_id=admin.workspace_id), Window(START, END, "day", "custom")
    )
    expected = recompute(in_week(workspace_id=admin.workspace_id))
    for point in answer["time_series"]:
        point["bucket"] = _iso(point["bucket"])
    assert_same(answer, expected)


@pytest.mark.django_db(transaction=True)  # committed rows: on PostgreSQL two scans run on other connections
def test_scans_beside_the_cube_give_the_same_answer(world):
    import threading

    from django.db import connection

    admin = world["admin"]
    answer = ok(client_for(admin.user).get(URL, WEEK))

    assert_same(answer, recompute(in_week(workspace_id=admin.workspace_id)))
    if connection.vendor == "postgresql":
        assert any(t.name.startswith("analytics-scan") for t in threading.enumerate())
