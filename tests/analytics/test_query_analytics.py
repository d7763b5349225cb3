"""GET /api/v1/prompts/analytics/query-analytics on a hand-made set of executions.

Every expected number below is worked out by hand from SEED; the same tests run on SQLite and,
in CI, on PostgreSQL (PERCENTILE_CONT there, interpolated ORDER BY/OFFSET on SQLite).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from prompts.models import PromptExecution
from templates_app.models import PromptTemplate
from tests.conftest import client_for
from tests.factories import DataSourceFactory, MembershipFactory
from tests.prompts.studio_support import assert_error, execution_for, ok

pytestmark = pytest.mark.django_db

URL = "/api/v1/prompts/analytics/query-analytics"
MARCH = {"period": "custom", "from": "2025-03-01", "to": "2025-03-07"}


def at(day: int, hour: int) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=UTC)


def run_for(membership, *, tokens=None, cost=0.0, **fields) -> PromptExecution:
    """An execution as the pipeline leaves it: with its generated query, whose tokens and cost the pipeline also
    adds to the execution's own spend columns (what query analytics sums)."""
    execution = execution_for(membership, tokens=tokens, cost=cost, **fields)
    if tokens is not None:
        PromptExecution.objects.filter(pk=execution.pk).update(tokens_in=tokens[0], tokens_out=tokens[1], cost=cost)
    return execution


@pytest.fixture
def colleague(member):
    return MembershipFactory(role="analyst", workspace=member.workspace)


@pytest.fixture
def seeded(member, admin_member, colleague, outsider):
    """Seven executions in the first week of March 2025 (A = member, B = admin, C = colleague)."""
    alpha = DataSourceFactory(workspace=member.workspace, name="alpha", alias="alpha")
    beta = DataSourceFactory(workspace=member.workspace, name="beta", alias="beta")
    template = PromptTemplate.objects.create(
        organization=member.workspace.organization, owner=member.user, name="T", template_text="sales by region"
    )
    a, b, c = member, admin_member, colleague
    done, failed = "completed", "failed"
    SALES, ORDERS, TOP = "sales by region", "orders by status", "top customers"
    TIMEOUT, AI_ERR = "QUERY_TIMEOUT", "AI_GENERATION_ERROR"
    both = [alpha, beta]
    # fmt: off
    rows = [
        # who, status, error, when, ai, query, total, rows, sources, model, tokens, cost, text, template
        (a, done, "", at(1, 10), 100, 10, 200, 5, [alpha], "builtin", (100, 10), 0.001, SALES, None),
        (a, done, "", at(1, 11), 200, 20, 300, 3, both, "builtin", (200, 20), 0.002, SALES, template),
        (a, failed, TIMEOUT, at(2, 9), 300, None, 1000, None, [beta], "gpt-4o", (300, 30), 0.03, ORDERS, None),
        (b, done, "", at(3, 12), 400, 40, 500, 10, [alpha], "gpt-4o", (400, 40), 0.04, SALES, template),
        (c, failed, AI_ERR, at(3, 13), 500, None, 600, None, [beta], "builtin", None, 0, TOP, None),
        (c, "processing", "", at(5, 8), None, None, None, None, [alpha], "builtin", None, 0, TOP, None),
        (b, failed, TIMEOUT, at(6, 10), 600, 60, 700, None, [alpha], "builtin", (600, 60), 0.006, ORDERS, None),
    ]
    # fmt: on
    for who, status, error, when, ai, query, total, returned, sources, model, tokens, cost, text, tmpl in rows:
        run_for(
            who,
            status=status,
            error_code=error,
            created_at=when,
            ai_response_time_ms=ai,
            query_execution_duration_ms=query,
            total_duration_ms=total,
            rows_returned=returned,
            sources=sources,
            ai_model=model,
            tokens=tokens,
            cost=cost,
            prompt_text=text,
            template=tmpl,
        )
    # Outside the week, and another tenant's: never counted.
    execution_for(a, created_at=at(1, 10) - timedelta(days=10), total_duration_ms=5, sources=[alpha])
    execution_for(outsider, created_at=at(2, 10), total_duration_ms=5)
    return {"alpha": alpha, "beta": beta, "template": template}


def admin_view(admin_member, **params):
    return ok(client_for(admin_member.user).get(URL, {**MARCH, **params}))


def test_admin_totals_cover_the_whole_workspace(seeded, admin_member):
    totals = admin_view(admin_member)["totals"]
    assert totals == {
        "executions": 7,
        "completed": 3,
        "failed": 3,
        "processing": 1,
        "distinct_users": 3,
        "rows_returned": 18,
        "success_rate": 0.5,
    }


def test_performance_averages_and_percentiles(seeded, admin_member):
    perf = admin_view(admin_member)["performance"]
    assert perf["ai_time_ms"] == {"avg": 350.0, "p50": 350.0, "p95": 575.0}
    assert perf["query_time_ms"] == {"avg": 32.5, "p50": 30.0, "p95": 57.0}
    assert perf["total_time_ms"] == {"avg": 550.0, "p50": 550.0, "p95": 925.0}


def test_usage_sums_tokens_and_cost(seeded, admin_member):
    assert admin_view(admin_member)["usage"] == {
        "tokens_in": 1600,
        "tokens_out": 160,
        "tokens_used": 1760,
        "cost": 0.079,
    }


def test_custom_week_has_one_bucket_per_day_including_quiet_days(seeded, admin_member):
    data = admin_view(admin_member)
    assert data["period"]["bucket"] == "day"
    series = data["time_series"]
    assert [p["bucket"] for p in series] == [f"2025-03-0{d}T00:00:00Z" for d in range(1, 8)]
    assert [(p["executions"], p["completed"], p["failed"], p["success_rate"]) for p in series] == [
        (2, 2, 0, 1.0),
        (1, 0, 1, 0.0),
        (2, 1, 1, 0.5),
        (0, 0, 0, None),
        (1, 0, 0, None),
        (1, 0, 1, 0.0),
        (0, 0, 0, None),
    ]
    assert [p["avg_total_ms"] for p in series] == [250.0, 1000.0, 550.0, None, None, 700.0, None]


def test_data_source_usage(seeded, admin_member):
    alpha, beta = seeded["alpha"], seeded["beta"]
    assert admin_view(admin_member)["data_sources"] == [
        {
            "data_source_id": alpha.pk,
            "name": "alpha",
            "alias": "alpha",
            "executions": 5,
            "success_rate": 0.75,
            "avg_query_time_ms": 32.5,
        },
        {
            "data_source_id": beta.pk,
            "name": "beta",
            "alias": "beta",
            "executions": 3,
            "success_rate": 0.3333,
            "avg_query_time_ms": 20.0,
        },
    ]


def test_models_usage(seeded, admin_member):
    assert admin_view(admin_member)["models"] == [
        {"model": "builtin", "executions": 5, "tokens_used": 990, "cost": 0.009},
        {"model": "gpt-4o", "executions": 2, "tokens_used": 770, "cost": 0.07},
    ]


def test_top_prompts(seeded, admin_member):
    top = admin_view(admin_member)["top_prompts"]
    assert [(t["prompt_text"], t["executions"], t["success_rate"], t["avg_total_ms"]) for t in top] == [
        ("sales by region", 3, 1.0, 333.33),
        ("orders by status", 2, 0.0, 850.0),
        ("top customers", 2, 0.0, 600.0),
    ]


def test_failures_by_error_code(seeded, admin_member):
    assert admin_view(admin_member)["failures_by_error_code"] == [
        {"error_code": "QUERY_TIMEOUT", "count": 2},
        {"error_code": "AI_GENERATION_ERROR", "count": 1},
    ]


def test_templates_used(seeded, admin_member):
    template = seeded["template"]
    assert admin_view(admin_member)["templates"] == [{"template_id": template.pk, "name": "T", "executions": 2}]


def test_an_analyst_sees_only_own_executions(seeded, member):
    data = ok(client_for(member.user).get(URL, MARCH))
    assert (data["totals"]["executions"], data["totals"]["completed"], data["totals"]["failed"]) == (3, 2, 1)
    assert data["totals"]["distinct_users"] == 1
    assert data["usage"]["tokens_used"] == 110 + 220 + 330


def test_an_admin_filters_by_user(seeded, admin_member, colleague):
    data = admin_view(admin_member, user_id=colleague.user_id)
    assert data["totals"]["executions"] == 2
    assert data["filters"]["user_id"] == colleague.user_id


def test_a_non_admin_may_not_filter_by_user(seeded, member, colleague):
    response = client_for(member.user).get(URL, {**MARCH, "user_id": colleague.user_id})
    assert_error(response, 403, "FORBIDDEN")


def test_filter_by_data_source(seeded, admin_member):
    data = admin_view(admin_member, data_source_id=seeded["beta"].pk)
    assert data["totals"]["executions"] == 3
    # The runs that used beta; one of them also used alpha.
    assert [(d["data_source_id"], d["executions"]) for d in data["data_sources"]] == [
        (seeded["beta"].pk, 3),
        (seeded["alpha"].pk, 1),
    ]


def test_filter_by_workspace(seeded, admin_member):
    assert admin_view(admin_member, workspace_id=admin_member.workspace_id)["totals"]["executions"] == 7


def test_another_tenants_workspace_is_404(seeded, admin_member, outsider):
    response = client_for(admin_member.user).get(URL, {**MARCH, "workspace_id": outsider.workspace_id})
    assert_error(response, 404, "NOT_FOUND")


def test_another_tenant_sees_none_of_it(seeded, outsider):
    assert ok(client_for(outsider.user).get(URL, MARCH))["totals"]["executions"] == 1


def test_a_date_only_to_covers_the_whole_day(seeded, admin_member, member):
    execution_for(member, created_at=at(7, 23))
    assert admin_view(admin_member)["totals"]["executions"] == 8


def test_empty_window_has_no_rates_or_percentiles(admin_member):
    data = admin_view(admin_member)
    assert data["totals"]["executions"] == 0
    assert data["totals"]["success_rate"] is None
    assert data["performance"]["total_time_ms"] == {"avg": None, "p50": None, "p95": None}
    assert data["usage"]["tokens_used"] == 0
    assert len(data["time_series"]) == 7


def test_last_24h_is_bucketed_by_hour(member):
    now = timezone.now()
    for hours in (1, 1, 5):
        execution_for(member, created_at=now - timedelta(hours=hours))
    execution_for(member, created_at=now - timedelta(hours=30))
    data = ok(client_for(member.user).get(URL, {"period": "24h"}))
    assert data["period"]["bucket"] == "hour"
    assert data["totals"]["executions"] == 3
    series = data["time_series"]
    assert len(series) == 25
    # The last bucket is the current hour.
    assert [p["executions"] for p in series[-6:]] == [1, 0, 0, 0, 2, 0]


@pytest.mark.parametrize(("period", "days"), [("7d", 8), ("30d", 31)])
def test_longer_periods_are_bucketed_by_day(member, period, days):
    now = timezone.now()
    execution_for(member, created_at=now - timedelta(days=2))
    execution_for(member, created_at=now)
    data = ok(client_for(member.user).get(URL, {"period": period}))
    assert data["period"]["bucket"] == "day"
    series = data["time_series"]
    assert len(series) == days
    assert [p["executions"] for p in series[-3:]] == [1, 0, 1]


def test_the_default_period_is_seven_days(member):
    execution_for(member, created_at=timezone.now() - timedelta(days=8))
    data = ok(client_for(member.user).get(URL))
    assert data["period"]["name"] == "7d"
    assert data["totals"]["executions"] == 0


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"period": "1y"}, ["period"]),
        ({"period": "custom"}, ["from", "to"]),
        ({"period": "custom", "from": "2025-03-01"}, ["to"]),
        ({"period": "custom", "from": "March", "to": "2025-03-02"}, ["from"]),
        ({"period": "custom", "from": "2025-03-05", "to": "2025-03-01"}, ["from"]),
        ({"workspace_id": "x"}, ["workspace_id"]),
        ({"data_source_id": "x"}, ["data_source_id"]),
        ({"user_id": "x"}, ["user_id"]),
    ],
)
def test_bad_parameters_are_400_naming_them(member_client, params, fields):
    assert_error(member_client.get(URL, params), 400, "BAD_REQUEST", *fields)


def test_it_needs_authentication(api_client):
    assert_error(api_client.get(URL), 401, "UNAUTHORIZED")
