"""History review in the admin: execution filters and search, the read-only detail page, retry / cancel,
and prompts including soft-deleted ones."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone

from prompts.models import ErrorCode, ExecutionStatus, Prompt, PromptExecution
from tests.admin.support import Tenant, execution_row, make_tenant, staff_client

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:prompts_promptexecution_changelist")


@pytest.fixture
def org(data_root) -> Tenant:
    return make_tenant("a", data_root)


@pytest.fixture
def other_org(data_root) -> Tenant:
    return make_tenant("b", data_root)


@pytest.fixture
def history(org):
    """A small history: the tenant's completed run plus failures, a running one, another model, an old one."""
    return {
        "completed": org.execution,
        "failed_sql": execution_row(
            org.analyst,
            prompt_text="orders by week",
            status=ExecutionStatus.FAILED,
            error_code=ErrorCode.SQL_VALIDATION_ERROR,
            sources=[org.source],
            sql="SELECT week FROM nowhere_table",
        ),
        "failed_ai": execution_row(
            org.operator,
            prompt_text="revenue by planet",
            status=ExecutionStatus.FAILED,
            error_code=ErrorCode.AI_GENERATION_ERROR,
            ai_model="gpt-4o",
            sources=[org.source],
        ),
        "running": execution_row(org.analyst, prompt_text="customers per region", status=ExecutionStatus.PROCESSING),
        "old": execution_row(
            org.analyst, prompt_text="last year's totals", started_at=timezone.now() - timedelta(days=400)
        ),
    }


def listed(client, query: str = "") -> set[int]:
    response = client.get(CHANGELIST + query)
    assert response.status_code == 200
    return {e.pk for e in response.context["cl"].result_list}


def ids(history, *names: str) -> set[int]:
    return {history[name].pk for name in names}


def test_execution_list_filters_by_status_error_code_and_model(org, history):
    client = staff_client(org.operator.user)
    assert listed(client, "?status__exact=failed") == ids(history, "failed_sql", "failed_ai")
    assert listed(client, "?status__exact=processing") == ids(history, "running")
    assert listed(client, "?error_code__exact=SQL_VALIDATION_ERROR") == ids(history, "failed_sql")
    assert listed(client, "?ai_model__exact=gpt-4o") == ids(history, "failed_ai")


def test_execution_list_filters_by_data_source_user_and_date(org, history):
    client = staff_client(org.operator.user)
    assert listed(client, f"?data_sources__id__exact={org.source.pk}") == ids(
        history, "completed", "failed_sql", "failed_ai"
    )
    assert listed(client, f"?user__id__exact={org.operator.user.pk}") == ids(history, "failed_ai")
    since = (timezone.now() - timedelta(days=7)).replace(microsecond=0).isoformat()
    recent = listed(client, "?" + urlencode({"started_at__gte": since}))
    assert history["old"].pk not in recent
    assert history["running"].pk in recent


def test_filter_sidebar_offers_status_error_code_model_source_and_user(org, history):
    body = staff_client(org.operator.user).get(CHANGELIST).content.decode()
    for link in (
        "status__exact=failed",
        "error_code__exact=AI_GENERATION_ERROR",
        "ai_model=gpt-4o",
        f"data_sources__id__exact={org.source.pk}",
        f"user__id__exact={org.analyst.user.pk}",
    ):
        assert link in body, link


def test_execution_search_matches_prompt_text_and_sql(org, history):
    client = staff_client(org.operator.user)
    assert listed(client, "?q=planet") == ids(history, "failed_ai")
    assert listed(client, "?q=nowhere_table") == ids(history, "failed_sql")


def test_execution_detail_shows_timeline_sql_as_generated_and_as_run_and_preview(org):
    client = staff_client(org.operator.user)
    response = client.get(reverse("admin:prompts_promptexecution_change", args=[org.execution.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'class="timeline"' in body
    for stage in ("Accepted", "SQL generation finished", "Query finished", "400 ms", "50 ms", "480 ms"):
        assert stage in body, stage
    assert "SELECT COUNT(*) FROM customers" in body
    assert "SQL actually run" in body
    assert "WHERE region_id = 1" in body
    assert 'class="preview"' in body
    assert "<td>4</td>" in body
    # Read-only: no save buttons.
    assert 'name="_save"' not in body


def test_retry_failed_starts_a_new_execution_as_the_original_user(org, history, django_capture_on_commit_callbacks):
    client = staff_client(org.operator.user)
    before = set(PromptExecution.objects.values_list("pk", flat=True))
    selected = [history["failed_sql"].pk, history["completed"].pk]  # only the failed one is retried
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            CHANGELIST, {"action": "retry_failed", "_selected_action": selected, "index": "0"}, follow=True
        )
    assert response.status_code == 200
    new = PromptExecution.objects.exclude(pk__in=before)
    assert new.count() == 1
    retry = new.get()
    assert retry.prompt_text == "orders by week"
    assert retry.user_id == org.analyst.user_id
    assert retry.data_source_ids == [org.source.pk]
    assert retry.status == ExecutionStatus.PROCESSING
    assert "Started 1 new execution" in response.content.decode()


def test_retry_ignores_another_organizations_executions(org, other_org):
    failed_b = execution_row(
        other_org.analyst,
        prompt_text="b failure",
        status=ExecutionStatus.FAILED,
        error_code=ErrorCode.QUERY_EXECUTION_ERROR,
        sources=[other_org.source],
    )
    client = staff_client(org.operator.user)
    count = PromptExecution.objects.count()
    client.post(CHANGELIST, {"action": "retry_failed", "_selected_action": [failed_b.pk], "index": "0"})
    assert PromptExecution.objects.count() == count


def test_cancel_running_fails_it_with_cancelled(org, history):
    client = staff_client(org.operator.user)
    selected = [history["running"].pk, history["completed"].pk]
    response = client.post(
        CHANGELIST, {"action": "cancel_running", "_selected_action": selected, "index": "0"}, follow=True
    )
    assert "Cancelled 1 execution" in response.content.decode()
    running = PromptExecution.objects.get(pk=history["running"].pk)
    assert running.status == ExecutionStatus.FAILED
    assert running.error_code == ErrorCode.CANCELLED
    assert running.completed_at is not None
    completed = PromptExecution.objects.get(pk=history["completed"].pk)
    assert completed.status == ExecutionStatus.COMPLETED


def test_soft_deleted_prompts_are_listed_and_can_be_restored(org):
    org.prompt.deleted_at = timezone.now()
    org.prompt.save(update_fields=["deleted_at"])
    live = Prompt.objects.create(workspace=org.operator.workspace, owner=org.analyst.user, prompt_text="live one")
    client = staff_client(org.operator.user)
    changelist = reverse("admin:prompts_prompt_changelist")
    deleted = {p.pk for p in client.get(changelist + "?deleted=yes").context["cl"].result_list}
    assert deleted == {org.prompt.pk}
    assert live.pk not in deleted

    response = client.post(
        changelist, {"action": "restore", "_selected_action": [org.prompt.pk, live.pk], "index": "0"}, follow=True
    )
    assert "Restored 1 prompt" in response.content.decode()
    org.prompt.refresh_from_db()
    assert org.prompt.deleted_at is None
