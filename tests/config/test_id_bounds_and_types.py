"""Ids the database cannot hold, and loosely typed JSON, are the caller's error: a 400 naming the field or
a 404, never a 500.

Ids are 1..2^63-1 (a signed 64-bit column on PostgreSQL and SQLite). Path ids outside that range do not
resolve (404); body fields and query parameters outside it are 400s naming the field. Spec string and
boolean fields take JSON strings and JSON true/false only.
"""

from __future__ import annotations

import pytest

from prompts.models import Prompt, PromptExecution
from templates_app.models import PromptTemplate
from tests.conftest import client_for
from tests.factories import DataSourceFactory
from tests.prompts.studio_support import assert_error, execution_for, ok, prompt_for

pytestmark = pytest.mark.django_db

ID_MAX = 2**63 - 1
TOO_BIG = [2**63, 99999999999999999999]
OUT_OF_RANGE = [*TOO_BIG, 0, -1]


@pytest.fixture
def source(member):
    return DataSourceFactory(workspace=member.workspace)


@pytest.fixture
def template(member):
    return PromptTemplate.objects.create(
        organization_id=member.workspace.organization_id,
        owner=member.user,
        name="Mine",
        template_text="Total {{metric}} by region",
        parameters=[{"name": "metric", "type": "string", "required": True, "default": None, "description": ""}],
    )


def bad_request(response, field: str) -> dict:
    return assert_error(response, 400, "BAD_REQUEST", field)


def not_found(response) -> None:
    assert_error(response, 404, "NOT_FOUND")


# --- path ids: out of range never resolves ------------------------------------------------------------

PATH_ROUTES = [
    ("get", "/api/v1/prompt-executions/{}"),
    ("post", "/api/v1/prompt-executions/{}/cancel"),
    ("get", "/api/v1/prompts/{}"),
    ("patch", "/api/v1/prompts/{}"),
    ("delete", "/api/v1/prompts/{}"),
    ("get", "/api/v1/prompts/{}/executions"),
    ("get", "/api/v1/prompts/{}/analytics"),
    ("post", "/api/v1/prompts/{}/execute"),
    ("get", "/api/v1/data-sources/{}"),
    ("patch", "/api/v1/data-sources/{}"),
    ("delete", "/api/v1/data-sources/{}"),
    ("post", "/api/v1/data-sources/{}/test"),
    ("post", "/api/v1/data-sources/{}/discover"),
    ("get", "/api/v1/data-sources/{}/schema"),
    ("delete", "/api/v1/api-keys/{}"),
    ("get", "/api/v1/prompt-templates/{}"),
    ("patch", "/api/v1/prompt-templates/{}"),
    ("delete", "/api/v1/prompt-templates/{}"),
    ("post", "/api/v1/prompt-templates/{}/execute"),
]


@pytest.mark.parametrize(("method", "route"), PATH_ROUTES)
@pytest.mark.parametrize("bad_id", [*TOO_BIG, 0])
def test_it_answers_404_for_a_path_id_out_of_range(member_client, method, route, bad_id):
    response = getattr(member_client, method)(route.format(bad_id), {}, format="json")

    not_found(response)


@pytest.mark.parametrize("url", ["/api/v1/prompt-executions/{}", "/api/v1/prompt-executions/{}/"])
def test_it_still_resolves_the_largest_id_and_answers_404_for_an_unknown_one(member_client, url):
    not_found(member_client.get(url.format(ID_MAX)))


def test_it_still_resolves_a_path_id_in_range(member_client, member):
    execution = execution_for(member)

    data = ok(member_client.get(f"/api/v1/prompt-executions/{execution.pk}"))

    assert data["execution_id"] == execution.pk


# --- body ids -----------------------------------------------------------------------------------------


def execute(client, **overrides):
    payload = {"prompt_text": "total sales by region", "selected_data_source_ids": [1], **overrides}
    return client.post("/api/v1/prompts/execute", payload, format="json")


@pytest.mark.parametrize("bad_id", OUT_OF_RANGE)
def test_execute_rejects_a_data_source_id_out_of_range(member_client, bad_id):
    bad_request(execute(member_client, selected_data_source_ids=[bad_id]), "selected_data_source_ids")
    assert not PromptExecution.objects.exists()


@pytest.mark.parametrize("bad_id", OUT_OF_RANGE)
def test_execute_rejects_a_workspace_id_out_of_range(member_client, source, bad_id):
    response = execute(member_client, workspace_id=bad_id, selected_data_source_ids=[source.pk])

    bad_request(response, "workspace_id")
    assert not PromptExecution.objects.exists()


@pytest.mark.parametrize("bad_id", TOO_BIG)
def test_template_execute_rejects_ids_out_of_range(member_client, template, source, bad_id):
    url = f"/api/v1/prompt-templates/{template.pk}/execute"
    valid = {"selected_data_source_ids": [source.pk], "parameters": {"metric": "sales"}}

    bad_request(member_client.post(url, {**valid, "workspace_id": bad_id}, format="json"), "workspace_id")
    bad_request(
        member_client.post(url, {**valid, "selected_data_source_ids": [bad_id]}, format="json"),
        "selected_data_source_ids",
    )
    assert not PromptExecution.objects.exists()


@pytest.mark.parametrize("bad_id", TOO_BIG)
def test_data_source_create_rejects_a_workspace_id_out_of_range(member_client, bad_id):
    payload = {"name": "Big", "connector_type": "sqlite", "workspace_id": bad_id, "connection": {"path": "x.db"}}

    bad_request(member_client.post("/api/v1/data-sources", payload, format="json"), "workspace_id")


@pytest.mark.parametrize("bad_id", TOO_BIG)
def test_data_source_patch_rejects_a_workspace_id_out_of_range(member_client, source, bad_id):
    response = member_client.patch(f"/api/v1/data-sources/{source.pk}", {"workspace_id": bad_id}, format="json")

    bad_request(response, "workspace_id")


@pytest.mark.parametrize("bad_id", TOO_BIG)
def test_api_key_create_rejects_a_workspace_id_out_of_range(member_client, bad_id):
    response = member_client.post("/api/v1/api-keys", {"name": "k", "workspace_id": bad_id}, format="json")

    bad_request(response, "workspace_id")


@pytest.mark.parametrize("bad_id", TOO_BIG)
def test_saved_prompt_create_and_patch_reject_ids_out_of_range(member_client, member, source, bad_id):
    valid = {"prompt_text": "total sales", "data_source_ids": [source.pk]}

    bad_request(member_client.post("/api/v1/prompts", {**valid, "workspace_id": bad_id}, format="json"), "workspace_id")
    bad_request(
        member_client.post("/api/v1/prompts", {**valid, "data_source_ids": [bad_id]}, format="json"), "data_source_ids"
    )
    prompt = prompt_for(member)
    response = member_client.patch(f"/api/v1/prompts/{prompt.pk}", {"data_source_ids": [bad_id]}, format="json")
    bad_request(response, "data_source_ids")


@pytest.mark.parametrize("bad_id", TOO_BIG)
def test_template_create_rejects_a_workspace_id_out_of_range(member_client, bad_id):
    payload = {"name": "T", "template_text": "Total {{metric}}", "workspace_id": bad_id}

    bad_request(member_client.post("/api/v1/prompt-templates", payload, format="json"), "workspace_id")


# --- query parameter ids ------------------------------------------------------------------------------

QUERY_PARAMS = [
    ("get", "/api/v1/data-sources", "workspace_id"),
    ("delete", "/api/v1/prompts/history/clear", "workspace_id"),
    ("get", "/api/v1/prompts/history", "data_source_id"),
    ("get", "/api/v1/prompts/history", "template_id"),
    ("get", "/api/v1/prompt-templates", "workspace_id"),
    ("get", "/api/v1/prompts/analytics/query-analytics", "workspace_id"),
    ("get", "/api/v1/prompts/analytics/query-analytics", "data_source_id"),
    ("get", "/api/v1/prompts/analytics/query-analytics", "user_id"),
    ("get", "/api/v1/prompts", "page"),
    ("get", "/api/v1/prompts/history", "page_size"),
    ("get", "/api/v1/api-keys", "page"),
]


@pytest.mark.parametrize(("method", "url", "param"), QUERY_PARAMS)
@pytest.mark.parametrize("bad_id", [*OUT_OF_RANGE, "1.5", "abc", "9" * 5000])
def test_it_rejects_a_query_parameter_id_out_of_range_naming_it(member_client, method, url, param, bad_id):
    response = getattr(member_client, method)(f"{url}?{param}={bad_id}")

    bad_request(response, param)


def test_it_still_filters_history_by_a_data_source_id_in_range(member_client, member, source):
    other = DataSourceFactory(workspace=member.workspace)
    mine = execution_for(member, sources=[source])
    execution_for(member, sources=[other])

    data = ok(member_client.get(f"/api/v1/prompts/history?data_source_id={source.pk}"))

    assert [item["execution_id"] for item in data["items"]] == [mine.pk]


def test_an_unknown_id_in_range_keeps_its_old_answer(member_client, member):
    assert ok(member_client.get(f"/api/v1/data-sources?workspace_id={ID_MAX}"))["items"] == []
    assert ok(member_client.get(f"/api/v1/prompts/history?data_source_id={ID_MAX}"))["items"] == []
    assert ok(member_client.delete(f"/api/v1/prompts/history/clear?workspace_id={ID_MAX}")) == {"cleared": 0}
    not_found(member_client.get(f"/api/v1/prompt-templates?workspace_id={ID_MAX}"))


def test_the_query_editor_rejects_a_page_out_of_range(member):
    response = client_for(member.user).get(f"/api/v1/spaces/{member.workspace.slug}/query/history?page={2**63}")

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "BAD_REQUEST"
    assert "page" in response.json()["detail"]


# --- strict JSON types (spec 001 / 003) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prompt_text", 123),
        ("prompt_text", 1.5),
        ("name", 5),
        ("ai_model", 4),
        ("tags", [1, 2]),
        ("tags", ["ok", True]),
        ("selected_schema_names", [7]),
        ("save_prompt", "yes"),
        ("save_prompt", "true"),
        ("save_prompt", 1),
        ("save_prompt", 0),
    ],
)
def test_execute_rejects_a_value_of_the_wrong_json_type(member_client, source, field, value):
    response = execute(member_client, selected_data_source_ids=[source.pk], **{field: value})

    bad_request(response, field)
    assert not PromptExecution.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("save_prompt", "yes"), ("save_prompt", 1), ("ai_model", 3), ("selected_schema_names", [1])],
)
def test_template_execute_rejects_a_value_of_the_wrong_json_type(member_client, template, source, field, value):
    payload = {"selected_data_source_ids": [source.pk], "parameters": {"metric": "sales"}, field: value}

    response = member_client.post(f"/api/v1/prompt-templates/{template.pk}/execute", payload, format="json")

    bad_request(response, field)
    assert not PromptExecution.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("prompt_text", 123), ("name", 5), ("tags", [1]), ("ai_model", 2), ("schema_names", [3]), ("is_shared", "yes")],
)
def test_saved_prompt_create_rejects_a_value_of_the_wrong_json_type(member_client, source, field, value):
    payload = {"prompt_text": "total sales", "data_source_ids": [source.pk], field: value}

    bad_request(member_client.post("/api/v1/prompts", payload, format="json"), field)
    assert not Prompt.objects.exists()


@pytest.mark.parametrize(("field", "value"), [("prompt_text", 123), ("name", 5), ("tags", [1]), ("is_shared", 1)])
def test_saved_prompt_patch_rejects_a_value_of_the_wrong_json_type(member_client, member, field, value):
    prompt = prompt_for(member)

    bad_request(member_client.patch(f"/api/v1/prompts/{prompt.pk}", {field: value}, format="json"), field)


@pytest.mark.parametrize(
    ("field", "value"), [("name", 5), ("template_text", 9), ("description", 1), ("is_public", "yes")]
)
def test_template_create_rejects_a_value_of_the_wrong_json_type(member_client, field, value):
    payload = {"name": "T", "template_text": "Total {{metric}}", field: value}

    bad_request(member_client.post("/api/v1/prompt-templates", payload, format="json"), field)


def test_strict_fields_still_take_json_strings_and_booleans(member_client, source):
    payload = {
        "prompt_text": "total sales",
        "data_source_ids": [source.pk],
        "name": "Sales",
        "tags": ["a", "b"],
        "ai_model": "builtin",
        "is_shared": True,
    }

    data = ok(member_client.post("/api/v1/prompts", payload, format="json"), 201)

    assert (data["name"], data["tags"], data["is_shared"]) == ("Sales", ["a", "b"], True)
    prompt_id = data["id"]
    data = ok(member_client.patch(f"/api/v1/prompts/{prompt_id}", {"is_shared": False}, format="json"))
    assert data["is_shared"] is False
