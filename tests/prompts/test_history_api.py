"""GET /api/v1/prompts/history and DELETE /api/v1/prompts/history/clear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from analytics.selectors import query_analytics, window_for
from prompts.models import PromptExecution
from tests.conftest import client_for
from tests.factories import DataSourceFactory, MembershipFactory
from tests.prompts.studio_support import assert_error, execution_for, ok, prompt_for

pytestmark = pytest.mark.django_db

HISTORY = "/api/v1/prompts/history"
CLEAR = "/api/v1/prompts/history/clear"


def ids(data: dict) -> list[int]:
    return [item["execution_id"] for item in data["items"]]


def test_history_lists_own_executions_newest_first(member, member_client):
    now = timezone.now()
    old = execution_for(member, created_at=now - timedelta(hours=2), prompt_text="old question")
    new = execution_for(member, created_at=now - timedelta(hours=1), prompt_text="new question")
    data = ok(member_client.get(HISTORY))
    assert ids(data) == [new.pk, old.pk]
    item = data["items"][0]
    assert item["prompt_text"] == "new question"
    assert item["status"] == "completed"
    assert item["saved"] is False
    assert data["pagination"] == {"page": 1, "page_size": 20, "total": 2, "total_pages": 1}


def test_history_answers_with_and_without_trailing_slash(member, member_client):
    execution_for(member)
    assert ok(member_client.get(HISTORY + "/"))["pagination"]["total"] == 1


def test_history_does_not_show_colleagues_executions_even_to_admins(member, admin_member):
    execution_for(member)
    data = ok(client_for(admin_member.user).get(HISTORY))
    assert data["items"] == []


def test_history_does_not_show_other_tenants_executions(member, outsider):
    execution_for(outsider)
    assert ok(client_for(member.user).get(HISTORY))["items"] == []


def test_history_paginates(member, member_client):
    now = timezone.now()
    made = [execution_for(member, created_at=now - timedelta(minutes=i)) for i in range(5)]
    page2 = ok(member_client.get(HISTORY, {"page": 2, "page_size": 2}))
    assert ids(page2) == [made[2].pk, made[3].pk]
    assert page2["pagination"] == {"page": 2, "page_size": 2, "total": 5, "total_pages": 3}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "x"}, "page"),
        ({"page": "0"}, "page"),
        ({"page": "9"}, "page"),
        ({"page_size": "101"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
    ],
    ids=["not-a-number", "zero", "past-the-end", "page-size-over-100", "page-size-zero"],
)
def test_history_rejects_bad_pagination_naming_the_parameter(member, member_client, params, field):
    execution_for(member)
    assert_error(member_client.get(HISTORY, params), 400, "BAD_REQUEST", field)


def test_history_accepts_page_size_100(member, member_client):
    execution_for(member)
    assert ok(member_client.get(HISTORY, {"page_size": 100}))["pagination"]["page_size"] == 100


def test_history_filters_by_status(member, member_client):
    execution_for(member, status="completed")
    failed = execution_for(member, status="failed", error_code="QUERY_TIMEOUT")
    processing = execution_for(member, status="processing")
    assert ids(ok(member_client.get(HISTORY, {"status": "failed"}))) == [failed.pk]
    assert ids(ok(member_client.get(HISTORY, {"status": "processing"}))) == [processing.pk]


def test_history_filters_by_data_source_without_duplicating_multi_source_runs(member, member_client):
    a = DataSourceFactory(workspace=member.workspace)
    b = DataSourceFactory(workspace=member.workspace)
    both = execution_for(member, sources=[a, b])
    only_b = execution_for(member, sources=[b])
    data = ok(member_client.get(HISTORY, {"data_source_id": a.pk}))
    assert ids(data) == [both.pk]
    data = ok(member_client.get(HISTORY, {"data_source_id": b.pk}))
    assert sorted(ids(data)) == sorted([both.pk, only_b.pk])
    assert data["pagination"]["total"] == 2


def test_history_filters_by_ai_model(member, member_client):
    execution_for(member, ai_model="builtin")
    other = execution_for(member, ai_model="gpt-4o")
    assert ids(ok(member_client.get(HISTORY, {"ai_model": "gpt-4o"}))) == [other.pk]


def test_history_filters_by_tag(member, member_client):
    tagged = execution_for(member, tags=["sales", "quarterly"])
    execution_for(member, tags=["salesforce"])
    execution_for(member, tags=[])
    assert ids(ok(member_client.get(HISTORY, {"tag": "sales"}))) == [tagged.pk]


def test_history_filters_by_date_range(member, member_client):
    day = datetime(2025, 3, 10, 12, tzinfo=UTC)
    execution_for(member, created_at=day - timedelta(days=2))
    inside = execution_for(member, created_at=day)
    execution_for(member, created_at=day + timedelta(days=2))
    params = {"from": "2025-03-09T00:00:00Z", "to": "2025-03-11T00:00:00Z"}
    assert ids(ok(member_client.get(HISTORY, params))) == [inside.pk]


def test_history_date_only_bounds_cover_whole_days(member, member_client):
    day = datetime(2025, 3, 10, 18, tzinfo=UTC)
    inside = execution_for(member, created_at=day)
    execution_for(member, created_at=day + timedelta(days=1))
    assert ids(ok(member_client.get(HISTORY, {"from": "2025-03-10", "to": "2025-03-10"}))) == [inside.pk]


def test_history_searches_prompt_text_and_name(member, member_client):
    by_text = execution_for(member, prompt_text="Revenue by Country")
    by_name = execution_for(member, prompt_text="something", name="country report")
    execution_for(member, prompt_text="orders by status")
    assert sorted(ids(ok(member_client.get(HISTORY, {"q": "country"})))) == sorted([by_text.pk, by_name.pk])


def test_history_filters_saved_and_unsaved(member, member_client):
    prompt = prompt_for(member)
    saved = execution_for(member, prompt=prompt)
    unsaved = execution_for(member)
    assert ids(ok(member_client.get(HISTORY, {"saved": "true"}))) == [saved.pk]
    assert ids(ok(member_client.get(HISTORY, {"saved": "false"}))) == [unsaved.pk]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status", "exploded"),
        ("data_source_id", "abc"),
        ("from", "yesterday-ish"),
        ("to", "2025-13-45"),
        ("saved", "maybe"),
        ("template_id", "x"),
    ],
)
def test_history_rejects_invalid_filter_values_naming_the_filter(member, member_client, name, value):
    assert_error(member_client.get(HISTORY, {name: value}), 400, "BAD_REQUEST", name)


def test_history_needs_authentication(api_client):
    assert_error(api_client.get(HISTORY), 401, "UNAUTHORIZED")


def test_clear_hides_all_own_history_and_answers_the_count(member, member_client, admin_member):
    mine = [execution_for(member) for _ in range(3)]
    colleague = execution_for(admin_member)
    data = ok(member_client.delete(CLEAR))
    assert data == {"cleared": 3}
    assert ok(member_client.get(HISTORY))["items"] == []
    # The rows stay (operators and analytics), only hidden from the owner's history.
    assert PromptExecution.objects.filter(pk__in=[e.pk for e in mine], hidden_from_history=True).count() == 3
    assert ok(client_for(admin_member.user).get(HISTORY))["items"][0]["execution_id"] == colleague.pk


def test_clear_twice_clears_nothing_the_second_time(member, member_client):
    execution_for(member)
    assert ok(member_client.delete(CLEAR)) == {"cleared": 1}
    assert ok(member_client.delete(CLEAR)) == {"cleared": 0}


def test_clear_before_a_datetime_keeps_newer_executions(member, member_client):
    cut = datetime(2025, 3, 10, 12, tzinfo=UTC)
    execution_for(member, created_at=cut - timedelta(hours=1))
    newer = execution_for(member, created_at=cut + timedelta(hours=1))
    assert ok(member_client.delete(CLEAR + "?before=2025-03-10T12:00:00Z")) == {"cleared": 1}
    assert ids(ok(member_client.get(HISTORY))) == [newer.pk]


def test_clear_before_a_date_keeps_that_day(member, member_client):
    execution_for(member, created_at=datetime(2025, 3, 9, 23, tzinfo=UTC))
    same_day = execution_for(member, created_at=datetime(2025, 3, 10, 1, tzinfo=UTC))
    assert ok(member_client.delete(CLEAR + "?before=2025-03-10")) == {"cleared": 1}
    assert ids(ok(member_client.get(HISTORY))) == [same_day.pk]


def test_clear_rejects_a_bad_before_naming_it(member, member_client):
    assert_error(member_client.delete(CLEAR + "?before=soon"), 400, "BAD_REQUEST", "before")


def test_clear_rejects_a_bad_workspace_id_naming_it(member, member_client):
    assert_error(member_client.delete(CLEAR + "?workspace_id=abc"), 400, "BAD_REQUEST", "workspace_id")


def test_clear_is_limited_to_the_given_workspace(member, member_client):
    other = MembershipFactory(user=member.user, role="analyst")
    execution_for(member)
    kept = execution_for(other)
    assert ok(member_client.delete(f"{CLEAR}?workspace_id={member.workspace_id}")) == {"cleared": 1}
    assert ids(ok(member_client.get(HISTORY))) == [kept.pk]


def test_cleared_executions_still_count_in_analytics(member, member_client):
    execution_for(member, status="completed")
    execution_for(member, status="failed", error_code="QUERY_TIMEOUT")
    ok(member_client.delete(CLEAR))
    analytics = ok(member_client.get("/api/v1/prompts/analytics/query-analytics", {"period": "24h"}))
    assert analytics["totals"]["executions"] == 2
    assert analytics["totals"]["failed"] == 1
    # And through the selector directly, the same.
    body = query_analytics(PromptExecution.objects.filter(user_id=member.user_id), window_for("24h", None, None))
    assert body["totals"]["executions"] == 2
