"""Saved prompts: list, create draft, get, patch, soft delete, executions, analytics, run."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from prompts import pipeline
from prompts.models import Prompt, PromptExecution, Stage
from tests.conftest import client_for
from tests.factories import DataSourceFactory
from tests.prompts.studio_support import assert_error, discovered_sales_source, execution_for, ok, prompt_for, sales_db

pytestmark = pytest.mark.django_db

PROMPTS = "/api/v1/prompts"


def detail(prompt: Prompt) -> str:
    return f"{PROMPTS}/{prompt.pk}"


@pytest.fixture(scope="module")
def sales_file(tmp_path_factory):
    return sales_db(tmp_path_factory.mktemp("saved-prompts"))


@pytest.fixture
def sales(member, sales_file, settings):
    settings.DATA_SOURCE_FILE_ROOTS = [*settings.DATA_SOURCE_FILE_ROOTS, sales_file.parent.resolve()]
    return discovered_sales_source(member, sales_file)


@pytest.fixture
def source(member):
    return DataSourceFactory(workspace=member.workspace)


def item_ids(data: dict) -> list[int]:
    return [item["id"] for item in data["items"]]


# --- list ---------------------------------------------------------------------------------------


def test_list_shows_own_and_shared_prompts_but_not_colleagues_private_ones(member, admin_member, member_client):
    mine = prompt_for(member)
    shared = prompt_for(admin_member, is_shared=True)
    prompt_for(admin_member, is_shared=False)
    data = ok(member_client.get(PROMPTS))
    assert sorted(item_ids(data)) == sorted([mine.pk, shared.pk])
    assert data["pagination"]["total"] == 2


def test_list_shows_an_admin_every_prompt_of_the_workspace(member, admin_member):
    theirs = prompt_for(member)
    own = prompt_for(admin_member)
    assert sorted(item_ids(ok(client_for(admin_member.user).get(PROMPTS)))) == sorted([theirs.pk, own.pk])


def test_list_hides_other_tenants_prompts(member, outsider, member_client):
    prompt_for(outsider, is_shared=True)
    assert ok(member_client.get(PROMPTS))["items"] == []


def test_list_paginates(member, member_client):
    now = timezone.now()
    made = [prompt_for(member, created_at=now - timedelta(minutes=i)) for i in range(3)]
    data = ok(member_client.get(PROMPTS, {"page": 2, "page_size": 2}))
    assert item_ids(data) == [made[2].pk]
    assert data["pagination"] == {"page": 2, "page_size": 2, "total": 3, "total_pages": 2}


@pytest.mark.parametrize(("params", "field"), [({"page": "-1"}, "page"), ({"page_size": "1000"}, "page_size")])
def test_list_rejects_bad_pagination(member_client, params, field):
    assert_error(member_client.get(PROMPTS, params), 400, "BAD_REQUEST", field)


def test_list_filters_by_tag_status_and_q(member, member_client):
    sales = prompt_for(member, tags=["sales"], status="completed", prompt_text="revenue by region")
    draft = prompt_for(member, tags=["ops"], status="draft", name="orders backlog")
    assert item_ids(ok(member_client.get(PROMPTS, {"tag": "sales"}))) == [sales.pk]
    assert item_ids(ok(member_client.get(PROMPTS, {"status": "draft"}))) == [draft.pk]
    assert item_ids(ok(member_client.get(PROMPTS, {"q": "BACKLOG"}))) == [draft.pk]


def test_list_orders_by_name_execution_count_and_last_run(member, member_client):
    now = timezone.now()
    b = prompt_for(member, name="b", execution_count=5, last_executed_at=now - timedelta(days=2))
    a = prompt_for(member, name="a", execution_count=1, last_executed_at=now)
    assert item_ids(ok(member_client.get(PROMPTS, {"ordering": "name"}))) == [a.pk, b.pk]
    assert item_ids(ok(member_client.get(PROMPTS, {"ordering": "-execution_count"}))) == [b.pk, a.pk]
    assert item_ids(ok(member_client.get(PROMPTS, {"ordering": "-last_executed_at"}))) == [a.pk, b.pk]
    assert item_ids(ok(member_client.get(PROMPTS, {"ordering": "created_at"}))) == [b.pk, a.pk]


@pytest.mark.parametrize(("name", "value"), [("status", "exploded"), ("ordering", "password")])
def test_list_rejects_invalid_filter_values_naming_the_filter(member_client, name, value):
    assert_error(member_client.get(PROMPTS, {name: value}), 400, "BAD_REQUEST", name)


# --- create (draft) -------------------------------------------------------------------------------


def test_create_saves_a_draft_without_running_it(member, member_client, source):
    body = {"prompt_text": "total sales by region", "data_source_ids": [source.pk], "tags": ["sales"], "name": "R"}
    data = ok(member_client.post(PROMPTS, body, format="json"), 201)
    assert data["status"] == "draft"
    assert data["owner_id"] == member.user_id
    assert data["data_source_ids"] == [source.pk]
    assert data["ai_model"] == "builtin"
    assert data["execution_count"] == 0
    assert Prompt.objects.get(pk=data["id"]).status == "draft"
    assert not PromptExecution.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"data_source_ids": [1]}, "prompt_text"),
        ({"prompt_text": "", "data_source_ids": [1]}, "prompt_text"),
        ({"prompt_text": "x" * 10_001, "data_source_ids": [1]}, "prompt_text"),
        ({"prompt_text": "q"}, "data_source_ids"),
        ({"prompt_text": "q", "data_source_ids": []}, "data_source_ids"),
        ({"prompt_text": "q", "data_source_ids": [1], "ai_model": "no-such-model"}, "ai_model"),
        ({"prompt_text": "q", "data_source_ids": [1], "tags": "sales"}, "tags"),
    ],
    ids=["missing-text", "empty-text", "text-too-long", "no-sources", "empty-sources", "unknown-model", "tags-str"],
)
def test_create_rejects_bad_input_naming_the_field(member_client, source, body, field):
    if body.get("data_source_ids") == [1]:
        body = {**body, "data_source_ids": [source.pk]}
    assert_error(member_client.post(PROMPTS, body, format="json"), 400, "BAD_REQUEST", field)


def test_create_rejects_another_tenants_data_source(member_client, outsider):
    theirs = DataSourceFactory(workspace=outsider.workspace)
    body = {"prompt_text": "q", "data_source_ids": [theirs.pk]}
    assert_error(member_client.post(PROMPTS, body, format="json"), 400, "BAD_REQUEST", "data_source_ids")


def test_create_rejects_an_unknown_schema(member_client, sales):
    body = {"prompt_text": "q", "data_source_ids": [sales.pk], "schema_names": ["nope"]}
    assert_error(member_client.post(PROMPTS, body, format="json"), 400, "BAD_REQUEST", "selected_schema_names")


def test_create_is_forbidden_to_a_viewer(viewer_member, member):
    source = DataSourceFactory(workspace=member.workspace)
    body = {"prompt_text": "q", "data_source_ids": [source.pk]}
    assert_error(client_for(viewer_member.user).post(PROMPTS, body, format="json"), 403, "FORBIDDEN")


# --- get ------------------------------------------------------------------------------------------


def test_get_returns_details_with_execution_count_success_rate_and_last_run(member, member_client):
    prompt = prompt_for(member)
    now = timezone.now()
    execution_for(member, prompt=prompt, status="completed", created_at=now - timedelta(hours=3))
    execution_for(member, prompt=prompt, status="completed", created_at=now - timedelta(hours=2))
    execution_for(member, prompt=prompt, status="completed", created_at=now - timedelta(hours=2))
    last = execution_for(member, prompt=prompt, status="failed", error_code="QUERY_TIMEOUT", created_at=now)
    data = ok(member_client.get(detail(prompt)))
    assert data["id"] == prompt.pk
    assert data["execution_count"] == 4
    assert data["success_rate"] == 0.75
    assert data["last_execution"]["execution_id"] == last.pk
    assert data["last_execution"]["error_code"] == "QUERY_TIMEOUT"


def test_get_of_a_never_run_draft_has_no_success_rate(member, member_client):
    prompt = prompt_for(member, status="draft")
    data = ok(member_client.get(detail(prompt) + "/"))
    assert data["success_rate"] is None
    assert data["last_execution"] is None


def test_get_answers_404_for_another_tenants_prompt(member_client, outsider):
    assert_error(member_client.get(detail(prompt_for(outsider, is_shared=True))), 404, "NOT_FOUND")


def test_get_answers_404_for_a_colleagues_private_prompt(member_client, admin_member):
    assert_error(member_client.get(detail(prompt_for(admin_member))), 404, "NOT_FOUND")


# --- patch ----------------------------------------------------------------------------------------


def test_owner_edits_name_tags_text_sources_and_model(member, member_client, source):
    prompt = prompt_for(member, data_source_ids=[source.pk])
    other = DataSourceFactory(workspace=member.workspace)
    changes = {
        "name": "renamed",
        "tags": ["a", "b"],
        "prompt_text": "orders by status",
        "data_source_ids": [other.pk],
        "ai_model": "builtin",
        "is_shared": True,
    }
    data = ok(member_client.patch(detail(prompt), changes, format="json"))
    prompt.refresh_from_db()
    assert (prompt.name, prompt.tags, prompt.prompt_text, prompt.data_source_ids) == (
        "renamed",
        ["a", "b"],
        "orders by status",
        [other.pk],
    )
    assert prompt.is_shared is True
    assert data["name"] == "renamed"


def test_admin_edits_a_members_prompt(member, admin_member):
    prompt = prompt_for(member)
    ok(client_for(admin_member.user).patch(detail(prompt), {"name": "by admin"}, format="json"))
    prompt.refresh_from_db()
    assert prompt.name == "by admin"


def test_a_viewer_may_not_edit_a_shared_prompt(member, viewer_member):
    prompt = prompt_for(member, is_shared=True)
    response = client_for(viewer_member.user).patch(detail(prompt), {"name": "x"}, format="json")
    assert_error(response, 403, "FORBIDDEN")
    prompt.refresh_from_db()
    assert prompt.name != "x"


def test_a_colleague_may_not_edit_a_shared_prompt(member, admin_member, viewer_member):
    analyst_colleague = viewer_member
    analyst_colleague.role = "analyst"
    analyst_colleague.save()
    prompt = prompt_for(member, is_shared=True)
    assert_error(
        client_for(analyst_colleague.user).patch(detail(prompt), {"name": "x"}, format="json"), 403, "FORBIDDEN"
    )


def test_patch_answers_404_for_another_tenants_prompt(member_client, outsider):
    assert_error(member_client.patch(detail(prompt_for(outsider)), {"name": "x"}, format="json"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"prompt_text": ""}, "prompt_text"),
        ({"data_source_ids": []}, "data_source_ids"),
        ({"data_source_ids": [999999]}, "data_source_ids"),
        ({"ai_model": "no-such-model"}, "ai_model"),
        ({"name": "n" * 201}, "name"),
    ],
)
def test_patch_rejects_bad_input_naming_the_field(member, member_client, changes, field):
    prompt = prompt_for(member)
    assert_error(member_client.patch(detail(prompt), changes, format="json"), 400, "BAD_REQUEST", field)


# --- soft delete ----------------------------------------------------------------------------------


def test_delete_hides_the_prompt_everywhere_but_keeps_the_row(member, member_client, source):
    prompt = prompt_for(member, data_source_ids=[source.pk])
    execution_for(member, prompt=prompt)
    assert ok(member_client.delete(detail(prompt))) == {"id": prompt.pk, "deleted": True}

    assert ok(member_client.get(PROMPTS))["items"] == []
    assert_error(member_client.get(detail(prompt)), 404, "NOT_FOUND")
    assert_error(member_client.get(detail(prompt) + "/executions"), 404, "NOT_FOUND")
    assert_error(member_client.get(detail(prompt) + "/analytics"), 404, "NOT_FOUND")
    assert_error(member_client.post(detail(prompt) + "/execute"), 404, "NOT_FOUND")
    assert_error(member_client.patch(detail(prompt), {"name": "x"}, format="json"), 404, "NOT_FOUND")
    assert_error(member_client.delete(detail(prompt)), 404, "NOT_FOUND")
    prompt.refresh_from_db()
    assert prompt.deleted_at is not None
    assert PromptExecution.objects.filter(prompt=prompt).count() == 1


def test_a_deleted_prompt_can_be_restored(member, member_client):
    from prompts.services import prompt_restore

    prompt = prompt_for(member)
    ok(member_client.delete(detail(prompt)))
    prompt.refresh_from_db()
    prompt_restore(prompt=prompt)
    assert ok(member_client.get(detail(prompt)))["id"] == prompt.pk


def test_a_viewer_may_not_delete_a_shared_prompt(member, viewer_member):
    prompt = prompt_for(member, is_shared=True)
    assert_error(client_for(viewer_member.user).delete(detail(prompt)), 403, "FORBIDDEN")
    prompt.refresh_from_db()
    assert prompt.deleted_at is None


def test_delete_answers_404_for_another_tenants_prompt(member_client, outsider):
    assert_error(member_client.delete(detail(prompt_for(outsider))), 404, "NOT_FOUND")


# --- executions -----------------------------------------------------------------------------------


def test_executions_lists_the_prompts_runs_newest_first_paginated(member, member_client):
    prompt = prompt_for(member)
    now = timezone.now()
    runs = [execution_for(member, prompt=prompt, created_at=now - timedelta(minutes=i)) for i in range(3)]
    execution_for(member)  # not this prompt's
    data = ok(member_client.get(detail(prompt) + "/executions", {"page_size": 2}))
    assert [i["execution_id"] for i in data["items"]] == [runs[0].pk, runs[1].pk]
    assert data["pagination"] == {"page": 1, "page_size": 2, "total": 3, "total_pages": 2}
    assert all(i["prompt_id"] == prompt.pk for i in data["items"])


def test_executions_rejects_a_bad_page(member, member_client):
    prompt = prompt_for(member)
    assert_error(member_client.get(detail(prompt) + "/executions", {"page": "abc"}), 400, "BAD_REQUEST", "page")


def test_executions_answers_404_for_another_tenants_prompt(member_client, outsider):
    assert_error(member_client.get(detail(prompt_for(outsider)) + "/executions"), 404, "NOT_FOUND")


# --- analytics ------------------------------------------------------------------------------------


def test_prompt_analytics_numbers(member, member_client):
    prompt = prompt_for(member)
    now = timezone.now()
    specs = [
        # status, ai ms, query ms, total ms, rows, tokens (in, out), cost, days ago
        ("completed", 100, 10, 200, 5, (100, 20), 0.01, 0),
        ("completed", 200, 20, 400, 7, (200, 40), 0.02, 1),
        ("completed", 300, 30, 600, 9, (300, 60), 0.03, 1),
        ("failed", 400, None, 500, None, (400, 80), 0.04, 2),
    ]
    for status, ai, query, total, rows, tokens, cost, days in specs:
        execution_for(
            member,
            prompt=prompt,
            status=status,
            error_code="QUERY_EXECUTION_ERROR" if status == "failed" else "",
            created_at=now - timedelta(days=days),
            ai_response_time_ms=ai,
            query_execution_duration_ms=query,
            total_duration_ms=total,
            rows_returned=rows,
            tokens=tokens,
            cost=cost,
        )
    # Outside the default 30 days, and another prompt's run: neither counts.
    execution_for(member, prompt=prompt, created_at=now - timedelta(days=40), total_duration_ms=9999)
    execution_for(member, total_duration_ms=9999)

    data = ok(member_client.get(detail(prompt) + "/analytics"))
    assert data["prompt_id"] == prompt.pk
    assert (data["executions"], data["completed"], data["failed"], data["success_rate"]) == (4, 3, 1, 0.75)
    assert data["rows_returned"] == {"total": 21, "avg": 7.0}
    perf = data["performance"]
    assert perf["ai_time_ms"] == {"avg": 250.0, "p50": 250.0, "p95": 385.0}
    assert perf["query_time_ms"] == {"avg": 20.0, "p50": 20.0, "p95": 29.0}
    assert perf["total_time_ms"] == {"avg": 425.0, "p50": 450.0, "p95": 585.0}
    assert data["usage"] == {"tokens_in": 1000, "tokens_out": 200, "tokens_used": 1200, "cost": 0.1}
    daily = data["daily"]
    assert [d["executions"] for d in daily][-3:] == [1, 2, 1]
    assert sum(d["executions"] for d in daily) == 4


def test_prompt_analytics_rejects_a_bad_period(member, member_client):
    prompt = prompt_for(member)
    assert_error(member_client.get(detail(prompt) + "/analytics", {"period": "1y"}), 400, "BAD_REQUEST", "period")


def test_prompt_analytics_custom_period_needs_from_and_to(member, member_client):
    prompt = prompt_for(member)
    response = member_client.get(detail(prompt) + "/analytics", {"period": "custom"})
    assert_error(response, 400, "BAD_REQUEST", "from", "to")


def test_prompt_analytics_answers_404_for_another_tenants_prompt(member_client, outsider):
    assert_error(member_client.get(detail(prompt_for(outsider)) + "/analytics"), 404, "NOT_FOUND")


# --- run a saved prompt ---------------------------------------------------------------------------


def test_running_a_draft_creates_a_linked_processing_execution(member, member_client, sales):
    created = ok(
        member_client.post(
            PROMPTS, {"prompt_text": "total sales by region", "data_source_ids": [sales.pk]}, format="json"
        ),
        201,
    )
    data = ok(member_client.post(f"{PROMPTS}/{created['id']}/execute"))
    assert data["status"] == "processing"
    assert data["prompt_id"] == created["id"]
    execution = PromptExecution.objects.get(pk=data["execution_id"])
    assert execution.prompt_id == created["id"]
    assert execution.prompt_text == "total sales by region"
    assert list(execution.data_sources.values_list("id", flat=True)) == [sales.pk]
    assert execution.stage == Stage.QUEUED_AI
    assert Prompt.objects.get(pk=created["id"]).status == "processing"


def test_a_completed_run_of_a_draft_updates_the_prompt(member, member_client, sales):
    prompt = prompt_for(member, status="draft", prompt_text="total sales by region", data_source_ids=[sales.pk])
    execution_id = ok(member_client.post(detail(prompt) + "/execute"))["execution_id"]

    assert pipeline.claim_stage(execution_id=execution_id, stage=Stage.AI, worker="test")
    pipeline.run_ai_stage(execution_id=execution_id)
    assert pipeline.claim_stage(execution_id=execution_id, stage=Stage.QUERY, worker="test")
    pipeline.run_query_stage(execution_id=execution_id)

    execution = PromptExecution.objects.get(pk=execution_id)
    assert execution.status == "completed", execution.error_message
    assert execution.rows_returned
    prompt.refresh_from_db()
    assert (prompt.status, prompt.execution_count) == ("completed", 1)
    assert prompt.last_executed_at is not None
    data = ok(member_client.get(detail(prompt)))
    assert data["last_execution"]["execution_id"] == execution_id
    assert data["success_rate"] == 1.0


def test_a_member_runs_a_shared_prompt_as_themselves(member, admin_member, sales):
    prompt = prompt_for(admin_member, is_shared=True, data_source_ids=[sales.pk])
    data = ok(client_for(member.user).post(detail(prompt) + "/execute"))
    execution = PromptExecution.objects.get(pk=data["execution_id"])
    assert (execution.user_id, execution.prompt_id) == (member.user_id, prompt.pk)


def test_running_answers_404_for_another_tenants_prompt(member_client, outsider):
    assert_error(member_client.post(detail(prompt_for(outsider, is_shared=True)) + "/execute"), 404, "NOT_FOUND")
